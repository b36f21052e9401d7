"""The fast path for the biggest exchanges: COCO 1.0 and YOLO 1.1 written straight from
the objects' stored JSON, and COCO 1.0 read straight into labelyard's objects, a chunk of
frames at a time, without Datumaro's object model (attrs objects, validated, per box) or
every object decoded at once.

It writes the files Datumaro would write for the same input (``mapping.to_dataset`` +
``dataset.export``) and reads a file into the objects ``mapping.from_dataset`` would make
of it; ``tests/formats/test_streaming.py`` holds the two paths to that. What it cannot
reproduce exactly it declines, raising NotStreamable, and the caller goes through
Datumaro unchanged. ``plan_export`` and ``plan_import`` are where that is decided."""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelyard.collector import paused_collector
from labelyard.formats import coco_writer, yolo_writer
from labelyard.formats.coco_reader import Chunks, CocoReader, FileObjects
from labelyard.formats.items import (
    Items,
    NotStreamable,
    Objects,
    Progress,
    StoredShape,
    decoded,
    read_stored_shape,
)
from labelyard.formats.mapping import FrameInfo, LabelInfo, _mask_image, _track_shapes
from labelyard.formats.registry import Format

__all__ = [
    "Chunks", "ExportPlan", "FileObjects", "NotStreamable", "Objects",
    "plan_export", "plan_import",
]  # fmt: skip

COCO = "COCO 1.0"
YOLO = "YOLO 1.1"
Writer = Callable[[Items, zipfile.ZipFile, Mapping[int, Path] | None, Progress], None]
WRITERS: dict[str, Writer] = {
    COCO: coco_writer.write_coco,
    YOLO: yolo_writer.write_yolo,
}
# Attribute names Datumaro's COCO and YOLO exporters give a meaning of their own.
DATUMARO_ATTRIBUTES = frozenset({"is_crowd", "score"})
# obj.data's keys: Datumaro refuses a YOLO subset named so.
YOLO_RESERVED = frozenset({"backup", "classes", "names"})


@dataclass
class ExportPlan:
    writer: Writer
    items: Items

    def write(
        self,
        bundle: zipfile.ZipFile,
        images: Mapping[int, Path] | None,
        progress: Progress = lambda _: None,
    ) -> None:
        """Write the export's files into ``bundle``; ``images``: each frame's image
        file, when the export holds them. Raises NotStreamable, before writing anything,
        when an image's size cannot be read (which only shows once they are made)."""
        with paused_collector():
            self.writer(self.items, bundle, images, progress)


def plan_export(
    chosen: Format,
    labels: Sequence[LabelInfo],
    parts: Sequence[tuple[str, list[FrameInfo], Objects]],
) -> ExportPlan:
    """How the fast path writes ``parts`` (each: subset, frames, objects) in ``chosen``,
    or NotStreamable saying why it would not write what Datumaro writes."""
    writer = WRITERS.get(chosen.display_name)
    if writer is None:
        raise NotStreamable(f"{chosen.display_name} has no fast writer")
    if len(parts) != 1:
        raise NotStreamable("several tasks (a project's) are exported together")
    (subset, frames, objects), coco = parts[0], chosen.display_name == COCO
    if not subset or "/" in subset or "\\" in subset or (not coco and subset in YOLO_RESERVED):
        raise NotStreamable(f"the subset {subset!r} is no plain name, or is a YOLO key")
    names = [label.name for label in labels]
    if len(set(names)) != len(names):
        raise NotStreamable("two labels have one name")
    if any(spec.name in DATUMARO_ATTRIBUTES for label in labels for spec in label.specs):
        raise NotStreamable("an attribute is named is_crowd or score")
    item_ids = [frame.item_id for frame in frames]
    if len(set(item_ids)) != len(item_ids):
        raise NotStreamable("two frames have one name but for the extension")
    # Datumaro normalises the paths in places (YOLO's list of images): plain ones only.
    if any(posixpath.normpath(i) != i or i.startswith(("/", "..")) for i in item_ids):
        raise NotStreamable("a frame's name is not a plain relative path")
    if any(frame.width <= 0 or frame.height <= 0 for frame in frames):
        raise NotStreamable("a frame has no size")
    known = {label.id for label in labels}
    sizes = {frame.number: (frame.height, frame.width) for frame in frames}
    shapes = objects.get("shapes", [])
    shape_frames = np.empty(len(shapes), dtype=np.int64)
    for position, item in enumerate(shapes):
        stored = (
            read_stored_shape(item)
            if isinstance(item, str)
            else StoredShape(item["frame"], item["label_id"], item["type"], item.get("group", 0))
        )
        if stored.label_id not in known:
            raise NotStreamable(f"a shape has label {stored.label_id}, not the task's")
        if coco and (stored.group or stored.type == "mask"):
            _check_instance(decoded(item), stored.group, sizes)
        shape_frames[position] = stored.frame
    tracks = [decoded(track) for track in objects.get("tracks", [])]
    last_frame = frames[-1].number if frames else 0
    for track in tracks:
        if track["label_id"] not in known:
            raise NotStreamable(f"a track has label {track['label_id']}, not the task's")
        kinds = {shape["type"] for shape in track["shapes"]}
        if coco and (
            (track.get("group") and kinds & coco_writer.INSTANCE_KINDS) or "mask" in kinds
        ):
            # A mask track's masks are held from frame to frame, each frame its own size.
            for shape in _track_shapes(track, last_frame):
                _check_instance(shape, track.get("group", 0), sizes)
    order = np.argsort(shape_frames, kind="stable")
    items = Items(list(labels), frames, subset, shapes, order, shape_frames[order], tracks)
    return ExportPlan(writer, items)


def _check_instance(shape: dict[str, Any], group: int, sizes: dict[int, tuple[int, int]]) -> None:
    """Declines a shape the COCO writer would not write as Datumaro does: one of a group
    (Datumaro makes one instance of a group's shapes, as it reckons them), or a mask with
    no pixel in its frame (on which Datumaro's export fails, saying so)."""
    kind = shape["type"]
    if group and kind in coco_writer.INSTANCE_KINDS:
        raise NotStreamable("shapes are grouped")
    size = sizes.get(shape["frame"])
    if kind == "mask" and size is not None and not _mask_image(shape["points"], size)().any():
        raise NotStreamable("a mask has no pixel in its frame")


def plan_import(chosen: Format, source: Path) -> CocoReader:
    """The reader of ``source`` (an upload, extracted) for the fast path, or
    NotStreamable saying why it would not read what Datumaro reads there."""
    if chosen.display_name != COCO:
        raise NotStreamable(f"{chosen.display_name} has no fast reader")
    return CocoReader.open(source)

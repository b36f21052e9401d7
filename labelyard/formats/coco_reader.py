"""COCO 1.0 instances read straight into labelyard's objects: what Datumaro's
``coco_instances`` importer and ``mapping.from_dataset`` (``boxes_of_shapes``) make of a
file, in the same order (Datumaro's importer takes the images, and each image's
annotations, from the end of the file).

An annotation gives a shape per polygon of its segmentation, or a mask for an RLE, and a
rectangle for its box unless it has a polygon or a mask (that box is theirs). Attributes
come from its ``attributes`` (``occluded``, ``rotation`` and the labels' own),
``iscrowd`` and ``score``.

``CocoReader.open`` reads the file and checks everything that could make the two paths
differ, declining (NotStreamable) what it does not read as Datumaro does: one instances
file at ``annotations/instances_<subset>.json``; no keypoints; no tracks (``track_id``);
no category 0; unique ids and names; polygons of 3 points or more; RLEs (uncompressed,
or compressed) of the image's size."""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import datumaro as dm
import msgspec
import numpy as np
import orjson
import pycocotools.mask as mask_utils
from msgspec import UNSET, UnsetType

from labelyard.collector import paused_collector
from labelyard.formats.items import CHUNK, NotStreamable
from labelyard.formats.mapping import (
    FrameInfo,
    Imported,
    LabelInfo,
    _attribute_values,
    _flag,
    _frame_for,
    _frame_lookup,
    _mask_points,
)

Chunks = Iterator[tuple[str, list[dict[str, Any]]]]


class Category(msgspec.Struct, gc=False):
    id: int
    name: str


class Image(msgspec.Struct, gc=False):
    id: int
    file_name: str
    width: int | None = None
    height: int | None = None


class Rle(msgspec.Struct, gc=False):
    counts: list[int] | str
    size: list[int]


class Annotation(msgspec.Struct, gc=False):
    id: int
    image_id: int
    category_id: int
    iscrowd: int
    # Moved into an array once checked (_checked): 500,000 boxes take 90 MB as lists of
    # floats, 16 MB so.
    bbox: list[float]
    segmentation: list[list[float]] | Rle | UnsetType = UNSET
    attributes: msgspec.Raw | UnsetType = UNSET
    score: int | float | UnsetType = UNSET
    keypoints: msgspec.Raw | UnsetType = UNSET


class CocoFile(msgspec.Struct, gc=False):
    images: list[Image]
    annotations: list[Annotation]
    categories: list[Category]


_read_file = msgspec.json.Decoder(CocoFile).decode
_NO_BOX: list[float] = []


@dataclass
class FileObjects:
    """What an imported file holds in a task's terms: the labels and images it names that
    the task lacks, and ``chunks()``: its objects, a kind and a list of them at a time."""

    unknown_labels: set[str]
    unknown_items: set[str]
    chunks: Callable[[], Chunks]

    @classmethod
    def of(cls, imported: Imported) -> FileObjects:
        return cls(
            imported.unknown_labels, imported.unknown_items, lambda: iter(imported.objects.items())
        )


@dataclass
class _Checked:
    """Per annotation (by place in the file): its attributes as in the file (shared by
    the annotations that have the same), and its box when it has one."""

    attributes: list[dict[str, Any]]
    boxes: np.ndarray
    boxed: np.ndarray


class CocoReader:
    def __init__(self, content: CocoFile, checked: _Checked) -> None:
        self.content = content
        self.checked = checked
        categories = sorted(content.categories, key=lambda c: c.id)
        self.names = {c.id: c.name for c in categories}
        # Each image's annotations (places in the file), last first, as Datumaro's
        # importer adds them; it skips those of an image the file lacks.
        self.on_image: dict[int, list[int]] = {image.id: [] for image in content.images}
        for position in range(len(content.annotations) - 1, -1, -1):
            found = self.on_image.get(content.annotations[position].image_id)
            if found is not None:
                found.append(position)

    @classmethod
    def open(cls, source: Path) -> CocoReader:
        path = _instances_file(source)
        try:
            with paused_collector():
                content = _read_file(path.read_bytes())
                return cls(content, _checked(content))
        except msgspec.MsgspecError as error:
            raise NotStreamable(f"not a COCO file read as Datumaro reads it: {error}") from None

    def read(self, labels: list[LabelInfo], frames: list[FrameInfo]) -> FileObjects:
        """The file's objects in ``labels`` (by name) and ``frames`` (by image name)."""
        by_name = {label.name: label for label in labels}
        lookup = _frame_lookup(frames)
        unknown_items: set[str] = set()
        unknown_labels: set[str] = set()
        framed: list[tuple[int, Image]] = []
        annotations, boxed = self.content.annotations, self.checked.boxed
        for image in reversed(self.content.images):
            # The item Datumaro's importer makes of the image, to be found as it is.
            item = dm.DatasetItem(id=_item_id(image.file_name), attributes={"id": image.id})
            frame = _frame_for(item, lookup)
            if frame is None:
                unknown_items.add(item.id)
                continue
            framed.append((frame, image))
            for position in self.on_image[image.id]:
                annotation = annotations[position]
                name = self.names[annotation.category_id]
                # An annotation with neither a segmentation nor a box is no object.
                if name not in by_name and (_shaped(annotation) or boxed[position]):
                    unknown_labels.add(name)

        def chunks() -> Chunks:
            return _Objects(self, by_name).chunks(framed)

        return FileObjects(unknown_labels, unknown_items, chunks)


def _instances_file(source: Path) -> Path:
    files = [p for p in source.rglob("*") if p.is_file() and p.suffix.lower() == ".json"]
    if len(files) != 1:
        raise NotStreamable(f"{len(files)} JSON files, not one")
    (path,) = files
    # Where Datumaro finds it, next to the images folder made for it (_import_needs).
    entries = list(source.iterdir())
    roots = [source] + [e for e in entries if len(entries) == 1 and e.is_dir()]
    if path.parent.name != "annotations" or path.parent.parent not in roots:
        raise NotStreamable("the file is not at annotations/ in the archive's root")
    if not path.name.startswith("instances_") or path.suffix != ".json":
        raise NotStreamable(f"{path.name} is not COCO's instances_<subset>.json")
    return path


def _checked(content: CocoFile) -> _Checked:
    """Whatever Datumaro would read otherwise, or refuse, is declined here."""
    ids = [c.id for c in content.categories]
    names = [c.name for c in content.categories]
    if 0 in ids or len(set(ids)) != len(ids):
        raise NotStreamable("a category has id 0, or two have one id")
    if "" in names or len(set(names)) != len(names):
        raise NotStreamable("a category has no name, or two have one name")
    sizes = {}
    item_ids = set()
    for image in content.images:
        name = PurePosixPath(image.file_name)
        if image.id in sizes or name.is_absolute() or ".." in name.parts or not name.parts:
            raise NotStreamable(f"image {image.id} is given twice, or named outside the folder")
        item_ids.add(_item_id(image.file_name))
        sizes[image.id] = (image.height, image.width) if image.height and image.width else None
    if len(item_ids) != len(content.images):
        raise NotStreamable("two images have one name but for the extension")
    known = set(ids)
    seen: set[int] = set()
    shared: dict[bytes, dict[str, Any]] = {}
    attributes = []
    corners: list[float] = []
    boxed = np.zeros(len(content.annotations), dtype=bool)
    for position, annotation in enumerate(content.annotations):
        if annotation.id in seen or annotation.category_id not in known:
            raise NotStreamable(f"annotation {annotation.id} is given twice, or of no category")
        if annotation.keypoints is not UNSET:
            raise NotStreamable("the file has keypoints")
        seen.add(annotation.id)
        attributes.append(_attributes(annotation, shared))
        box = annotation.bbox
        if box:
            if len(box) != 4:
                raise NotStreamable(f"annotation {annotation.id}'s bbox has not 4 numbers")
            corners += box
            boxed[position] = True
            annotation.bbox = _NO_BOX
        if annotation.segmentation:
            _check_segmentation(annotation, sizes.get(annotation.image_id))
    boxes = np.zeros((len(content.annotations), 4))
    boxes[boxed] = np.array(corners, dtype=np.float64).reshape(-1, 4)
    return _Checked(attributes, boxes, boxed)


def _attributes(annotation: Annotation, shared: dict[bytes, dict[str, Any]]) -> dict[str, Any]:
    text = bytes(annotation.attributes) if annotation.attributes is not UNSET else b"{}"
    values = shared.get(text)
    if values is None:
        values = orjson.loads(text)
        if not isinstance(values, dict):
            raise NotStreamable("an annotation's attributes are not an object")
        rotation = values.get("rotation", 0.0)
        if type(rotation) not in (int, float) or not math.isfinite(rotation):
            raise NotStreamable("an annotation's rotation is not a number")
        if values.get("track_id") is not None:
            # mapping makes tracks again of the shapes a file has of them, frame by frame.
            raise NotStreamable("the file has tracks (track_id)")
        shared[text] = values
    return values


def _check_segmentation(annotation: Annotation, size: tuple[int, int] | None) -> None:
    segmentation = annotation.segmentation
    if isinstance(segmentation, list):
        if segmentation != [[]] and any(len(p) < 6 or len(p) % 2 for p in segmentation):
            raise NotStreamable(f"annotation {annotation.id} has a polygon of < 3 points")
    elif isinstance(segmentation, Rle):
        if size is None or segmentation.size != list(size):
            raise NotStreamable(f"annotation {annotation.id}'s RLE is not of its image's size")
        counts = segmentation.counts
        if isinstance(counts, str):
            counts = _compressed_counts(counts)
        if sum(counts) != size[0] * size[1] or min(counts, default=0) < 0:
            raise NotStreamable(f"annotation {annotation.id}'s RLE does not cover its image")


def _compressed_counts(text: str) -> list[int]:
    """The run lengths of COCO's compressed RLE (pycocotools' rleFrString): 5 bits a
    character from "0", a 6th bit for more to come; from the fourth on, each is added
    to the one two before."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position == len(text) or not 48 <= ord(text[position]) < 112:
                raise NotStreamable("an RLE's counts are not pycocotools' characters")
            bits = ord(text[position]) - 48
            value |= (bits & 0x1F) << shift
            more = bool(bits & 0x20)
            position += 1
            shift += 5
            if not more and bits & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _shaped(annotation: Annotation) -> bool:
    """Whether the annotation has a polygon or a mask (which its box belongs to)."""
    segmentation = annotation.segmentation
    return bool(segmentation) and segmentation != [[]]


def _item_id(file_name: str) -> str:
    return posixpath.splitext(file_name)[0].replace("\\", "/")


class _Objects:
    """The shapes and tracks ``mapping._add`` makes of the file's annotations."""

    def __init__(self, reader: CocoReader, by_name: dict[str, LabelInfo]) -> None:
        self.reader = reader
        self.by_name = by_name
        # What mapping._add reads of an attributes dict, and the values a label takes
        # from it: worked out once per dict (annotations share them).
        self.facts: dict[int, tuple[bool, float]] = {}
        self.values: dict[tuple[int, int], list[dict[str, Any]]] = {}
        # Labels with an attribute that Datumaro's importer sets: is_crowd, score.
        self.crowded = {
            label.id
            for label in by_name.values()
            if any(spec.name in ("is_crowd", "score") for spec in label.specs)
        }

    def chunks(self, framed: list[tuple[int, Image]]) -> Chunks:
        annotations, names = self.reader.content.annotations, self.reader.names
        batch: list[tuple[int, int, LabelInfo]] = []
        for frame, image in framed:
            for position in self.reader.on_image[image.id]:
                label = self.by_name.get(names[annotations[position].category_id])
                if label is not None:
                    batch.append((frame, position, label))
            if len(batch) >= CHUNK:
                yield "shapes", self._shapes(batch)
                batch = []
        if batch:
            yield "shapes", self._shapes(batch)

    def _shapes(self, batch: list[tuple[int, int, LabelInfo]]) -> list[dict[str, Any]]:
        with paused_collector():
            return self._made(batch)

    def _made(self, batch: list[tuple[int, int, LabelInfo]]) -> list[dict[str, Any]]:
        # Each annotation's Datumaro objects, in order: its polygons (or mask), then its
        # box unless it is shaped.
        annotations, boxed = self.reader.content.annotations, self.reader.checked.boxed
        parts: list[tuple[int, int, LabelInfo, str, int]] = []
        raw: list[float] = []
        boxes: list[int] = []
        for frame, position, label in batch:
            annotation = annotations[position]
            segmentation = annotation.segmentation
            if isinstance(segmentation, Rle):
                parts.append((frame, position, label, "mask", 0))
            elif segmentation and segmentation != [[]]:
                for polygon in segmentation:
                    parts.append((frame, position, label, "polygon", len(polygon)))
                    raw += polygon
            if boxed[position] and not (annotation.id and _shaped(annotation)):
                parts.append((frame, position, label, "rectangle", 4))
                boxes.append(position)
        # Coordinates rounded as Datumaro's shapes keep them, twice: made, then copied
        # without their group by from_dataset.
        polygons = np.array(raw, dtype=np.float32).round(2).round(2).tolist()
        rectangles = iter(_rectangles(self.reader.checked.boxes[boxes]))
        shapes: list[dict[str, Any]] = []
        at = 0
        for frame, position, label, kind, count in parts:
            if kind == "rectangle":
                points = next(rectangles)
            elif kind == "polygon":
                points = polygons[at : at + count]
                at += count
            else:
                segmentation = annotations[position].segmentation
                assert isinstance(segmentation, Rle)
                geometry = _mask_points(_decoded_mask(segmentation))
                if geometry is None:
                    continue
                kind, points = geometry
            self._add(shapes, kind, points, frame, label, position)
        return shapes

    def _add(
        self,
        shapes: list[dict[str, Any]],
        kind: str,
        points: list[float],
        frame: int,
        label: LabelInfo,
        position: int,
    ) -> None:
        # As mapping._add does it (for shapes: the file has no tracks).
        attributes = self.reader.checked.attributes[position]
        facts = self.facts.get(id(attributes))
        if facts is None:
            facts = self.facts[id(attributes)] = (
                _flag(attributes.get("occluded", False)),
                float(attributes.get("rotation", 0.0)) % 360,
            )
        occluded, rotation = facts
        shapes.append(
            {"type": kind, "frame": frame, "points": points, "occluded": occluded, "z_order": 0,
             "rotation": rotation if kind == "rectangle" else 0.0, "label_id": label.id,
             "attributes": self._values(label, position, attributes), "group": 0,
             "source": "file"}
        )  # fmt: skip

    def _values(
        self, label: LabelInfo, position: int, attributes: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if label.id in self.crowded:
            # Datumaro's importer adds these two to an annotation's attributes.
            annotation = self.reader.content.annotations[position]
            score = {} if annotation.score is UNSET else {"score": annotation.score}
            return _attribute_values(
                label, attributes | score | {"is_crowd": bool(annotation.iscrowd)}
            )
        key = (label.id, id(attributes))
        values = self.values.get(key)
        if values is None:
            values = self.values[key] = _attribute_values(label, attributes)
        return values


def _rectangles(boxes: np.ndarray) -> list[list[float]]:
    """Rectangles' points as from_dataset makes them of COCO's boxes (x, y, w, h rows):
    Datumaro's Bbox holds [x, y, x + w, y + h] float32-rounded, copied once more the
    same way; its get_bbox gives x, y, w, h again."""
    x, y, w, h = boxes.T
    made = _kept(np.stack([x, y, x + w, y + h], axis=1))
    return _corners(_kept(_corners(made))).tolist()


def _kept(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32).round(2).astype(np.float64)


def _corners(boxes: np.ndarray) -> np.ndarray:
    """Bboxes' points made again from their x, y, w, h."""
    x, y, right, bottom = boxes.T
    return np.stack([x, y, x + (right - x), y + (bottom - y)], axis=1)


def _decoded_mask(rle: Rle) -> Any:
    """The mask's image, decoded as Datumaro's RleMask decodes it."""
    height, width = rle.size
    if isinstance(rle.counts, str):
        return mask_utils.decode({"counts": rle.counts, "size": [height, width]})
    uncompressed = {"counts": rle.counts, "size": [height, width]}
    rles = mask_utils.frPyObjects([uncompressed], height, width)
    return mask_utils.decode(mask_utils.merge(rles))

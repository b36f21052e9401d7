"""An export's frames with their shapes as Datumaro's dataset items would hold them (what
``mapping.to_dataset`` makes), produced a few thousand shapes at a time from the
objects' stored JSON: what the fast writers (``coco_writer``, ``yolo_writer``) write."""

from __future__ import annotations

import heapq
import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import imagesize
import msgspec
import numpy as np
import orjson

from labelyard.formats.mapping import (
    FrameInfo,
    LabelInfo,
    SpecInfo,
    _attributes,
    _track_shapes,
    _typed,
)

# A part's objects by kind ("tags", "shapes", "tracks"): each the JSON text it is stored
# as, or already a dict.
Objects = Mapping[str, Sequence[str | dict[str, Any]]]
Progress = Callable[[float], None]
# How many shapes (and frames) are decoded and converted together.
CHUNK = 20_000


class NotStreamable(Exception):
    """The fast path cannot reproduce what Datumaro would make of this: use Datumaro."""


class ItemShape(msgspec.Struct, gc=False):
    """A shape on an item: ``label`` is the label's position, ``attributes`` the
    annotation's as ``mapping`` gives them (shared between shapes: not to be changed)."""

    kind: str
    label: int
    points: list[float]
    attributes: dict[str, Any]


# The attributes of a shape with none of its own, by ``occluded``: most shapes'.
_PLAIN: dict[bool, dict[str, Any]] = {False: {"occluded": False}, True: {"occluded": True}}


class StoredShape(msgspec.Struct, gc=False):
    """What is looked at before a stored shape is decoded in full."""

    frame: int
    label_id: int
    type: str
    group: int = 0


class _Value(msgspec.Struct, gc=False):
    spec_id: int
    value: str


class _Shape(msgspec.Struct, gc=False):
    """A stored shape, in full: what the services store (annotations.Shape)."""

    frame: int
    label_id: int
    type: str
    points: list[float]
    occluded: bool = False
    rotation: float = 0.0
    attributes: list[_Value] = []


read_stored_shape = msgspec.json.Decoder(StoredShape).decode
_read_shape = msgspec.json.Decoder(_Shape).decode


def decoded(item: str | dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(item) if isinstance(item, str) else item


@dataclass
class Items:
    """``shapes`` stay as given (texts); ``order`` lists their positions by frame
    (stably, so by id within a frame as to_dataset puts them) and ``shape_frames`` their
    frames in that order."""

    labels: list[LabelInfo]
    frames: list[FrameInfo]
    subset: str
    shapes: Sequence[str | dict[str, Any]]
    order: np.ndarray
    shape_frames: np.ndarray
    tracks: list[dict[str, Any]]

    def chunks(self) -> Iterator[list[tuple[FrameInfo, list[ItemShape]]]]:
        """The frames in order, each with its shapes: those stored as shapes, then the
        tracks' (interpolated, as to_dataset makes them); tags are no COCO or YOLO
        object and are left out."""
        index = {label.id: position for position, label in enumerate(self.labels)}
        specs = {spec.id: spec for label in self.labels for spec in label.specs}
        last_frame = self.frames[-1].number if self.frames else 0
        tracked = heapq.merge(
            *(
                _numbered(number, track, last_frame)
                for number, track in enumerate(self.tracks, start=1)
            ),
            key=lambda entry: entry[:2],
        )
        pending = next(tracked, None)
        order, shape_frames = self.order.tolist(), self.shape_frames.tolist()
        shapes, cursor, count = self.shapes, 0, len(order)
        chunk: list[tuple[FrameInfo, list[ItemShape]]] = []
        size = 0
        for frame in self.frames:
            number = frame.number
            on_frame: list[ItemShape] = []
            # Shapes on frames the export lacks have no item to go on.
            while cursor < count and shape_frames[cursor] < number:
                cursor += 1
            while cursor < count and shape_frames[cursor] == number:
                on_frame.append(_stored_item_shape(shapes[order[cursor]], index, specs))
                cursor += 1
            while pending is not None and pending[0] <= number:
                shape_frame, track_number, shape, track = pending
                if shape_frame == number:
                    extra = {"track_id": track_number, "keyframe": shape.pop("keyframe")}
                    on_frame.append(
                        _tracked_item_shape(shape, index[track["label_id"]], specs, extra, track)
                    )
                pending = next(tracked, None)
            chunk.append((frame, on_frame))
            size += len(on_frame) + 1
            if size >= CHUNK:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk


def _numbered(
    number: int, track: dict[str, Any], last_frame: int
) -> Iterator[tuple[int, int, dict[str, Any], dict[str, Any]]]:
    for shape in _track_shapes(track, last_frame):
        yield shape["frame"], number, shape, track


def _stored_item_shape(
    item: str | dict[str, Any], index: dict[int, int], specs: dict[int, SpecInfo]
) -> ItemShape:
    """A stored shape as mapping._shape makes it (decoded into a struct: the common
    case, and faster than into a dict)."""
    shape = _read_shape(item) if isinstance(item, str) else msgspec.convert(item, _Shape)
    rotated = shape.rotation and shape.type == "rectangle"
    if not shape.attributes and not rotated:
        return ItemShape(shape.type, index[shape.label_id], shape.points, _PLAIN[shape.occluded])
    attributes: dict[str, Any] = {}
    for value in shape.attributes:
        spec = specs.get(value.spec_id)
        if spec is not None:
            attributes[spec.name] = _typed(spec, value.value)
    attributes["occluded"] = shape.occluded
    if rotated:
        attributes["rotation"] = shape.rotation
    return ItemShape(shape.type, index[shape.label_id], shape.points, attributes)


def _tracked_item_shape(
    shape: dict[str, Any],
    label: int,
    specs: dict[int, SpecInfo],
    extra: dict[str, Any],
    track: dict[str, Any],
) -> ItemShape:
    # The attributes as mapping._shape gives them, in its order.
    attributes = _attributes(track, specs)
    attributes |= _attributes(shape, specs) | {"occluded": bool(shape.get("occluded"))}
    attributes |= extra
    if shape["type"] == "rectangle" and shape.get("rotation"):
        attributes["rotation"] = shape["rotation"]
    return ItemShape(shape["type"], label, shape["points"], attributes)


def rounded(values: list[float]) -> list[float]:
    """Coordinates as Datumaro keeps a shape's (its Shape.points converter): float32,
    rounded to 2 decimals; done for many shapes in one call."""
    return np.array(values, dtype=np.float32).round(2).tolist()


def box_corners(boxes: list[list[float]]) -> np.ndarray:
    """Rectangles' corners (x1, y1, x2, y2 rows) as Datumaro keeps them: made into the
    Bbox(x1, y1, x2 - x1, y2 - y1) mapping gives it, which holds x1 + (x2 - x1) and
    rounds them as its shapes' points (float32, 2 decimals)."""
    flat = np.fromiter(chain.from_iterable(boxes), dtype=np.float64, count=4 * len(boxes))
    x1, y1, x2, y2 = flat.reshape(-1, 4).T
    made = np.stack([x1, y1, x1 + (x2 - x1), y1 + (y2 - y1)], axis=1)
    return made.astype(np.float32).round(2).astype(np.float64)


def round2(values: np.ndarray) -> list[Any]:
    """``round(v, 2)`` of each value (float64, any shape), as Python rounds: correctly,
    half to even, on the value's exact binary expansion; for many values at once.

    ``rint(v * 100) / 100`` is that, unless ``v * 100`` lands so near a half that the
    product's own rounding may have moved it across; Python rounds those few."""
    scaled = values * 100.0
    result = np.rint(scaled) / 100.0
    with np.errstate(invalid="ignore"):
        doubtful = ~(np.abs(scaled) < 2.0**52) | (
            np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) <= 4 * np.abs(np.spacing(scaled))
        )
    for at in zip(*np.nonzero(doubtful), strict=True):
        result[at] = round(float(values[at]), 2)
    return result.tolist()


def image_file_name(frame: FrameInfo, images: Mapping[int, Path] | None) -> str:
    """The frame's image in the export: the item's id and its media's extension (the
    written JPEG's, when the export holds images), .jpg when it has none."""
    source = str(images[frame.number]) if images is not None else frame.file_name
    return frame.item_id + (posixpath.splitext(posixpath.basename(source))[1] or ".jpg")


def image_sizes(
    frames: list[FrameInfo], images: Mapping[int, Path] | None
) -> list[tuple[int, int]]:
    """Each frame's (width, height): the frame's, or its written image's, read from the
    file's header as Datumaro reads it."""
    if images is None:
        return [(frame.width, frame.height) for frame in frames]
    sizes = []
    for frame in frames:
        width, height = imagesize.get(str(images[frame.number]))
        if width <= 0 or height <= 0:
            raise NotStreamable(f"the size of frame {frame.number}'s image cannot be read")
        sizes.append((int(width), int(height)))
    return sizes

"""labelyard's annotations and Datumaro's model, both ways, in one place.

Export: a task's frames become dataset items (id: the frame's name without its
extension), labels and their attributes become categories, tags become Labels, shapes
become Bbox / Polygon / PolyLine / Points / Ellipse / Cuboid2D / Mask, and tracks become
one shape per frame they cover (interpolated between keyframes, as CVAT exports them)
with ``track_id`` and ``keyframe`` attributes. ``occluded`` and a rectangle's
``rotation`` travel as attributes.

Import: the reverse; shapes that carry a ``track_id`` become tracks again."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import datumaro as dm
import numpy as np
from datumaro.components.annotation import (
    AnnotationType,
    Bbox,
    Caption,
    Cuboid2D,
    Ellipse,
    Label,
    LabelCategories,
    Mask,
    Points,
    Polygon,
    PolyLine,
)
from datumaro.components.transformer import ItemTransform

from labelyard.domain import InputType


class BinaryMasks(ItemTransform):
    """Masks as booleans. Datumaro draws boxes and polygons into uint8 masks, which its
    MOTS writer multiplies by instance numbers past 255 (an overflow under NumPy 2)."""

    def transform_item(self, item: dm.DatasetItem) -> dm.DatasetItem:
        annotations = [
            Mask(image=_as_bool(a), label=a.label, id=a.id, attributes=a.attributes,
                 group=a.group, z_order=a.z_order) if isinstance(a, Mask) else a
            for a in item.annotations
        ]  # fmt: skip
        return item.wrap(annotations=annotations)


class TextCaptions(ItemTransform):
    """ICDAR word recognition holds a transcription per image: every annotation with a
    ``text`` attribute becomes a Caption of that text, as CVAT writes the format."""

    def transform_item(self, item: dm.DatasetItem) -> dm.DatasetItem:
        captions = [
            Caption(str(a.attributes["text"]))
            for a in item.annotations
            if str(a.attributes.get("text") or "")
        ]
        return item.wrap(annotations=captions)


def _as_bool(mask: Mask) -> Callable[[], np.ndarray]:
    return lambda: np.asarray(mask.image).astype(bool)


RESERVED = {"occluded", "rotation", "track_id", "keyframe", "outside", "frame"}


@dataclass(frozen=True)
class SpecInfo:
    id: int
    name: str
    input_type: str
    # An immutable attribute of a track is the track's, not its shapes'.
    mutable: bool = True


@dataclass(frozen=True)
class LabelInfo:
    id: int
    name: str
    specs: tuple[SpecInfo, ...] = ()


@dataclass(frozen=True)
class FrameInfo:
    number: int
    name: str
    width: int
    height: int

    @property
    def item_id(self) -> str:
        """The image's name without its extension; a video's frames are frame_000123,
        as CVAT names them."""
        if "#" in self.name:
            return f"frame_{self.number:06d}"
        return str(PurePosixPath(self.name).with_suffix(""))

    @property
    def file_name(self) -> str:
        return f"{self.item_id}.jpg" if "#" in self.name else self.name


@dataclass
class Imported:
    """What a file holds, in labelyard's terms, and what of it does not fit the task."""

    objects: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"tags": [], "shapes": [], "tracks": []}
    )
    unknown_labels: set[str] = field(default_factory=set)
    unknown_items: set[str] = field(default_factory=set)


# --- export ---------------------------------------------------------------------------


def to_dataset(
    labels: list[LabelInfo],
    frames: list[FrameInfo],
    objects: dict[str, list[dict[str, Any]]],
    image_path: Callable[[FrameInfo], Path | None] = lambda _: None,
    *,
    numbered: bool = False,
    tracks_only: bool = False,
    subset: str = "default",
    id_prefix: str = "",
    cvat_tracks: bool = False,
) -> dm.Dataset:
    """``numbered``: items are the frame numbers counted from 1 (MOT's way);
    ``tracks_only``: tags and shapes are left out (tracking formats); ``cvat_tracks``:
    as CVAT for video writes tracks: every shape a track of one frame, and where a
    track ends an outside shape."""
    index = {label.id: position for position, label in enumerate(labels)}
    specs = {spec.id: spec for label in labels for spec in label.specs}
    per_frame: dict[int, list[Any]] = defaultdict(list)
    if tracks_only:
        objects = {"tracks": objects.get("tracks", []),
                   "shapes": objects.get("shapes", []) if cvat_tracks else []}  # fmt: skip
    for tag in objects.get("tags", []):
        per_frame[tag["frame"]].append(
            Label(index[tag["label_id"]], attributes=_attributes(tag, specs),
                  group=tag.get("group", 0))
        )  # fmt: skip
    sizes = {frame.number: (frame.height, frame.width) for frame in frames}
    for shape in objects.get("shapes", []):
        per_frame[shape["frame"]].append(
            _shape(shape, index[shape["label_id"]], specs, size=sizes.get(shape["frame"]))
        )
    last_frame = frames[-1].number if frames else 0
    tracks = list(objects.get("tracks", []))
    if cvat_tracks:
        tracks += [_one_frame_track(shape, last_frame) for shape in objects.get("shapes", [])]
        # Datumaro's CVAT reader cannot read a mask in a track (it fails the whole file).
        tracks = [t for t in tracks if all(s["type"] != "mask" for s in t["shapes"])]
    for track_id, track in enumerate(tracks, start=1):
        for shape in _track_shapes(track, last_frame, with_outside=cvat_tracks):
            extra = {"track_id": track_id, "keyframe": shape.pop("keyframe")}
            if cvat_tracks:
                extra["outside"] = bool(shape.get("outside"))
            per_frame[shape["frame"]].append(
                _shape(shape, index[track["label_id"]], specs, extra, track,
                       size=sizes.get(shape["frame"]))
            )  # fmt: skip
    # Exporters write only the attributes a label declares: the reserved ones too.
    reserved = RESERVED - {"frame"}
    categories = LabelCategories(attributes=reserved)
    for label in labels:
        categories.add(label.name, attributes={spec.name for spec in label.specs} | reserved)
    items = []
    for frame in frames:
        path = image_path(frame)
        media = (
            dm.Image.from_file(path=str(path))
            if path is not None
            else dm.Image.from_file(path=frame.file_name, size=(frame.height, frame.width))
        )
        items.append(
            dm.DatasetItem(
                id=str(frame.number + 1) if numbered else id_prefix + frame.item_id,
                subset=subset, media=media,
                annotations=per_frame.get(frame.number, []), attributes={"frame": frame.number},
            )
        )  # fmt: skip
    return dm.Dataset.from_iterable(
        items, categories={AnnotationType.label: categories},
        ann_types={AnnotationType.label, AnnotationType.bbox, AnnotationType.polygon,
                   AnnotationType.polyline, AnnotationType.points, AnnotationType.ellipse,
                   AnnotationType.cuboid_2d, AnnotationType.mask},
    )  # fmt: skip


def _attributes(obj: dict[str, Any], specs: dict[int, SpecInfo]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for value in obj.get("attributes", []):
        spec = specs.get(value["spec_id"])
        if spec is not None:
            values[spec.name] = _typed(spec, value["value"])
    return values


def _typed(spec: SpecInfo, value: str) -> Any:
    if spec.input_type == InputType.CHECKBOX:
        return value == "true"
    if spec.input_type == InputType.NUMBER:
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def _shape(
    shape: dict[str, Any],
    label: int,
    specs: dict[int, SpecInfo],
    extra: dict[str, Any] | None = None,
    track: dict[str, Any] | None = None,
    *,
    size: tuple[int, int] | None = None,
) -> Any:
    attributes = _attributes(track, specs) if track else {}
    attributes |= _attributes(shape, specs) | {"occluded": bool(shape.get("occluded"))}
    attributes |= extra or {}
    common = {
        "label": label,
        "attributes": attributes,
        "group": (track or shape).get("group", 0),
        "z_order": shape.get("z_order", 0),
    }
    points = shape["points"]
    kind = shape["type"]
    if kind == "rectangle":
        if shape.get("rotation"):
            attributes["rotation"] = shape["rotation"]
        x1, y1, x2, y2 = points
        return Bbox(x1, y1, x2 - x1, y2 - y1, **common)
    if kind == "polygon":
        return Polygon(points, **common)
    if kind == "polyline":
        return PolyLine(points, **common)
    if kind == "points":
        return Points(points, **common)
    if kind == "ellipse":
        cx, cy, right, top = points
        rx, ry = abs(right - cx), abs(cy - top)
        return Ellipse(cx - rx, cy - ry, cx + rx, cy + ry, **common)
    if kind == "cuboid":
        return Cuboid2D(list(zip(points[0::2], points[1::2], strict=True)), **common)
    return Mask(image=_mask_image(points, size), **common)


def _mask_image(
    points: list[float], size: tuple[int, int] | None = None
) -> Callable[[], np.ndarray]:
    """CVAT's mask: run lengths over the box (alternating off and on, row by row), then
    the box's left, top, right, bottom. Datumaro wants the whole frame (``size``: its
    height and width; without it, as large as the box reaches); it is drawn when asked
    for, and what lies outside the frame is cut off."""

    def draw() -> np.ndarray:
        counts = [int(c) for c in points[:-4]]
        left, top, right, bottom = (int(v) for v in points[-4:])
        width, height = right - left + 1, bottom - top + 1
        values = np.zeros(len(counts), dtype=bool)
        values[1::2] = True
        box = np.repeat(values, counts)[: width * height]
        box = np.pad(box, (0, width * height - box.size)).reshape(height, width)
        # A box reaching past the frame's top or left edge loses what lies beyond.
        box, top, left = box[max(-top, 0) :, max(-left, 0) :], max(top, 0), max(left, 0)
        frame_height, frame_width = size if size is not None else (bottom + 1, right + 1)
        image = np.zeros((frame_height, frame_width), dtype=bool)
        visible = box[: max(frame_height - top, 0), : max(frame_width - left, 0)]
        image[top : top + visible.shape[0], left : left + visible.shape[1]] = visible
        return image

    return draw


def _one_frame_track(shape: dict[str, Any], last_frame: int) -> dict[str, Any]:
    """A shape as a track (CVAT for video's way): there on its frame, outside after."""
    shapes = [shape]
    if shape["frame"] < last_frame:
        shapes.append(dict(shape, frame=shape["frame"] + 1, outside=True))
    return {"label_id": shape["label_id"], "group": shape.get("group", 0), "attributes": [],
            "frame": shape["frame"], "shapes": shapes}  # fmt: skip


def _track_shapes(
    track: dict[str, Any], last_frame: int, *, with_outside: bool = False
) -> Iterable[dict[str, Any]]:
    """The shapes a track has on each frame it is visible on: its keyframes, and between
    them shapes interpolated linearly (when both ends have the same type and number of
    points; else the earlier one held). A track lasts until an outside keyframe, which
    ``with_outside`` includes."""
    keyframes = sorted(track["shapes"], key=lambda s: s["frame"])
    for index, shape in enumerate(keyframes):
        if not shape.get("outside") or (with_outside and shape["frame"] <= last_frame):
            yield dict(shape, keyframe=True)
        following = keyframes[index + 1] if index + 1 < len(keyframes) else None
        if shape.get("outside"):
            continue
        end = following["frame"] if following else last_frame + 1
        for frame in range(shape["frame"] + 1, end):
            points = shape["points"]
            if (
                following is not None
                and following["type"] == shape["type"]
                and len(following["points"]) == len(points)
                and shape["type"] != "mask"
            ):
                t = (frame - shape["frame"]) / (following["frame"] - shape["frame"])
                points = [a + (b - a) * t for a, b in zip(points, following["points"], strict=True)]
            yield dict(shape, frame=frame, points=points, keyframe=False)


# --- import ---------------------------------------------------------------------------


def from_dataset(
    dataset: dm.Dataset,
    labels: list[LabelInfo],
    frames: list[FrameInfo],
    *,
    numbered: bool = False,
    boxes_of_shapes: bool = False,
) -> Imported:
    """``boxes_of_shapes``: a box grouped with a polygon or mask is that shape's box, and
    groups are the file's bookkeeping (COCO's), not the annotator's."""
    if len(dataset) == 0:
        # Some importers (ICDAR's) read a file of another format as an empty dataset.
        raise ValueError("no items were found in it")
    imported = Imported()
    categories = dataset.categories().get(AnnotationType.label)
    names = [c.name for c in categories.items] if categories else []
    by_name = {label.name: label for label in labels}
    frame_of = _frame_lookup(frames)
    if numbered:
        frame_of = {str(frame.number + 1): frame.number for frame in frames}
    # Formats without labels (ICDAR's) use CVAT's convention: the task's label "icdar".
    unlabeled = by_name.get("icdar")
    tracks: dict[tuple[int, Any], dict[str, Any]] = {}
    for item in dataset:
        frame = _frame_for(item, frame_of)
        if frame is None:
            imported.unknown_items.add(item.id)
            continue
        annotations = list(item.annotations)
        if boxes_of_shapes:
            annotations = _without_shape_boxes(annotations)
        for annotation in annotations:
            if getattr(annotation, "label", None) is None:
                if unlabeled is None:
                    imported.unknown_labels.add("icdar")
                    continue
                label = unlabeled
            else:
                name = names[annotation.label]
                found = by_name.get(name)
                if found is None:
                    imported.unknown_labels.add(name)
                    continue
                label = found
            _add(imported, tracks, annotation, label, frame)
    last_frame = max((frame.number for frame in frames), default=0)
    for track in tracks.values():
        imported.objects["tracks"].append(_track_of(track, last_frame))
    return imported


def _track_of(track: dict[str, Any], last_frame: int) -> dict[str, Any]:
    """A track from the shapes a file has of it, frame by frame: its keyframes, the first
    shape after each gap (a keyframe too), and an outside shape where it stops being
    seen (the frame after a gap begins, or after its last frame), since most formats
    write only the frames an object is visible on."""
    seen = track.pop("seen")
    shapes: list[dict[str, Any]] = []
    previous = None  # the frame the track was last visible on, while it is
    for frame in sorted(seen):
        shape = seen[frame]
        if shape["outside"]:
            shapes.append(shape)
            previous = None
            continue
        if previous is not None and frame != previous + 1:
            shapes.append(seen[previous] | {"frame": previous + 1, "outside": True})
            previous = None
        if shape.pop("keyframe") or previous is None:
            shapes.append(shape)
        previous = frame
    if previous is not None and previous < last_frame:
        shapes.append(seen[previous] | {"frame": previous + 1, "outside": True})
    for shape in shapes:
        shape["keyframe"] = True
    return track | {"frame": shapes[0]["frame"], "shapes": shapes}


def _without_shape_boxes(annotations: list[Any]) -> list[Any]:
    shaped = {a.group for a in annotations if isinstance(a, Polygon | Mask) and a.group}
    kept = [a for a in annotations if not (isinstance(a, Bbox) and a.group in shaped)]
    return [a.wrap(group=0) for a in kept]


def _frame_lookup(frames: list[FrameInfo]) -> dict[str, int]:
    lookup: dict[str, int] = {}
    for frame in frames:
        lookup.setdefault(PurePosixPath(frame.name).stem, frame.number)
        lookup.setdefault(f"frame_{frame.number:06d}", frame.number)
    for frame in frames:
        lookup[frame.item_id] = frame.number
    return lookup


def _frame_for(item: dm.DatasetItem, frame_of: dict[str, int]) -> int | None:
    # ImageNet's items are "<label>:<image>".
    unlabeled = item.id.split(":", 1)[-1]
    for key in (item.id, PurePosixPath(item.id).name, PurePosixPath(item.id).stem, unlabeled):
        if key in frame_of:
            return frame_of[key]
    frame = item.attributes.get("frame")
    return frame if isinstance(frame, int) and frame in frame_of.values() else None


def _add(
    imported: Imported,
    tracks: dict[tuple[int, Any], dict[str, Any]],
    annotation: Any,
    label: LabelInfo,
    frame: int,
) -> None:
    attributes = dict(annotation.attributes)
    if isinstance(annotation, Caption):
        # CVAT's convention: a caption is a tag of the label "icdar" with its text.
        attributes["text"] = annotation.caption
    values = _attribute_values(label, attributes)
    if isinstance(annotation, Label | Caption):
        imported.objects["tags"].append(
            {"frame": frame, "label_id": label.id, "attributes": values,
             "group": annotation.group or 0, "source": "file"}
        )  # fmt: skip
        return
    geometry = _geometry(annotation)
    if geometry is None:
        return
    kind, points = geometry
    shape = {
        "type": kind, "frame": frame, "points": points,
        "occluded": _flag(attributes.get("occluded", False)),
        "z_order": int(annotation.z_order or 0),
        "rotation": float(attributes.get("rotation", 0.0)) % 360 if kind == "rectangle" else 0.0,
    }  # fmt: skip
    track_id = attributes.get("track_id")
    if track_id is None:
        imported.objects["shapes"].append(
            shape | {"label_id": label.id, "attributes": values,
                     "group": annotation.group or 0, "source": "file"}
        )  # fmt: skip
        return
    track = tracks.setdefault(
        (label.id, track_id),
        {"label_id": label.id, "group": annotation.group or 0, "source": "file",
         "attributes": [], "seen": {}},
    )  # fmt: skip
    # Immutable attributes are the track's; the shapes have the others.
    immutable = {spec.id for spec in label.specs if not spec.mutable}
    if not track["seen"]:
        track["attributes"] = [v for v in values if v["spec_id"] in immutable]
    # Every frame is kept until the track is whole (see _track_of): interpolated ones
    # show where the track is visible, and only keyframes are stored.
    track["seen"].setdefault(
        frame,
        shape | {
            "attributes": [v for v in values if v["spec_id"] not in immutable],
            "keyframe": _flag(attributes.get("keyframe", True)),
            "outside": _flag(attributes.get("outside", False)),
        },
    )  # fmt: skip


def _flag(value: Any) -> bool:
    """A yes/no attribute as formats give it: a boolean, a number, or text (VOC writes
    'False')."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _attribute_values(label: LabelInfo, attributes: dict[str, Any]) -> list[dict[str, Any]]:
    values = []
    for spec in label.specs:
        if spec.name in attributes:
            value = attributes[spec.name]
            if spec.input_type == InputType.CHECKBOX:
                text = "true" if _flag(value) else "false"
            elif isinstance(value, float) and value.is_integer():
                text = str(int(value))
            else:
                text = str(value)
            values.append({"spec_id": spec.id, "value": text})
    return values


def _geometry(annotation: Any) -> tuple[str, list[float]] | None:
    if isinstance(annotation, Bbox):
        x, y, w, h = annotation.get_bbox()
        return "rectangle", [x, y, x + w, y + h]
    if isinstance(annotation, Polygon):
        return "polygon", [float(p) for p in annotation.points]
    if isinstance(annotation, PolyLine):
        return "polyline", [float(p) for p in annotation.points]
    if isinstance(annotation, Ellipse):
        cx, cy = (annotation.x1 + annotation.x2) / 2, (annotation.y1 + annotation.y2) / 2
        return "ellipse", [cx, cy, annotation.x2, annotation.y1]
    if isinstance(annotation, Cuboid2D):
        return "cuboid", [float(v) for point in annotation.points for v in point]
    if isinstance(annotation, Points):
        return "points", [float(p) for p in annotation.points]
    if isinstance(annotation, Mask):
        return _mask_points(annotation.image)
    return None


def _mask_points(image: np.ndarray) -> tuple[str, list[float]] | None:
    rows, columns = np.nonzero(image)
    if rows.size == 0:
        return None
    top, bottom, left, right = rows.min(), rows.max(), columns.min(), columns.max()
    flat = image[top : bottom + 1, left : right + 1].astype(bool).ravel()
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return "mask", [float(c) for c in counts] + [float(left), float(top), float(right),
                                                  float(bottom)]  # fmt: skip

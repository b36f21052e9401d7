"""CVAT's own XML (``annotations.xml``), written and read here rather than by Datumaro,
whose CVAT writer has no ellipses or cuboids and leaves a track's attributes and groups
out, and whose reader cannot read a mask inside a track.

CVAT for images: an ``<image>`` per frame holding its tags and shapes (a track's shapes
on each frame it is visible on, as CVAT dumps them). CVAT for video: a ``<track>`` per
track, its shapes frame by frame with ``keyframe`` and ``outside``; every plain shape is
a track of one frame, ended by an outside shape (CVAT's way too). Coordinates have two
decimals, as CVAT writes them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelyard.formats.mapping import (
    FrameInfo,
    Imported,
    LabelInfo,
    SpecInfo,
    _attribute_values,
    _flag,
    _frame_lookup,
    _one_frame_track,
    _track_of,
    _track_shapes,
)

FILE = "annotations.xml"
# XML element of each shape type; a cuboid's corners by name, in labelyard's order.
ELEMENTS = {
    "rectangle": "box", "polygon": "polygon", "polyline": "polyline", "points": "points",
    "ellipse": "ellipse", "cuboid": "cuboid", "mask": "mask",
}  # fmt: skip
TYPES = {element: kind for kind, element in ELEMENTS.items()}
CUBOID = ("xtl1", "ytl1", "xbl1", "ybl1", "xtr1", "ytr1", "xbr1", "ybr1",
          "xtl2", "ytl2", "xbl2", "ybl2", "xtr2", "ytr2", "xbr2", "ybr2")  # fmt: skip


def _number(value: float) -> str:
    return f"{value:.2f}"


# --- writing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One task's share of a file: its frames and objects; ``subset`` and ``prefix``
    (put before the images' names to keep two tasks' apart) for a project's."""

    frames: list[FrameInfo]
    objects: dict[str, list[dict[str, Any]]]
    subset: str = ""
    prefix: str = ""


def write(path: Path, labels: list[LabelInfo], parts: list[Part], *, video: bool) -> None:
    """``annotations.xml`` at ``path``: for video, of one part (a task's or a job's);
    for images, of one or several (a project's tasks, each image with its subset)."""
    if video and len(parts) != 1:
        raise ValueError("CVAT for video holds one task")
    frames = [frame for part in parts for frame in part.frames]
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    root.append(_meta(labels, frames, video))
    names = {label.id: label.name for label in labels}
    specs = {spec.id: spec for label in labels for spec in label.specs}
    if video:
        (part,) = parts
        last_frame = part.frames[-1].number if part.frames else 0
        tracks = list(part.objects.get("tracks", []))
        tracks += [_one_frame_track(shape, last_frame) for shape in part.objects.get("shapes", [])]
        for number, track in enumerate(tracks):
            root.append(_track(number, track, names, specs, last_frame))
    else:
        first_id = 0
        for part in parts:
            subset = part.subset if len(parts) > 1 else None
            root.extend(_images(part, names, specs, first_id, subset))
            first_id += len(part.frames)
    ET.indent(root, space="  ")
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _meta(labels: list[LabelInfo], frames: list[FrameInfo], video: bool) -> ET.Element:
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "size").text = str(len(frames))
    ET.SubElement(task, "mode").text = "interpolation" if video else "annotation"
    ET.SubElement(task, "start_frame").text = str(frames[0].number if frames else 0)
    ET.SubElement(task, "stop_frame").text = str(frames[-1].number if frames else 0)
    declared = ET.SubElement(task, "labels")
    for label in labels:
        element = ET.SubElement(declared, "label")
        ET.SubElement(element, "name").text = label.name
        attributes = ET.SubElement(element, "attributes")
        for spec in label.specs:
            attribute = ET.SubElement(attributes, "attribute")
            ET.SubElement(attribute, "name").text = spec.name
            ET.SubElement(attribute, "mutable").text = str(spec.mutable)
            ET.SubElement(attribute, "input_type").text = spec.input_type
    if video and frames:
        size = ET.SubElement(task, "original_size")
        ET.SubElement(size, "width").text = str(frames[0].width)
        ET.SubElement(size, "height").text = str(frames[0].height)
    # No <dumped> date: the same annotations make the same file (a git push of
    # unchanged annotations commits nothing).
    return meta


def _images(
    part: Part,
    names: dict[int, str],
    specs: dict[int, SpecInfo],
    first_id: int,
    subset: str | None,
) -> Iterator[ET.Element]:
    frames, objects = part.frames, part.objects
    last_frame = frames[-1].number if frames else 0
    on_frame: dict[int, list[ET.Element]] = {}
    for tag in objects.get("tags", []):
        element = ET.Element("tag", label=names[tag["label_id"]], source="manual")
        _group(element, tag)
        _attributes(element, tag["attributes"], specs)
        on_frame.setdefault(tag["frame"], []).append(element)
    for shape in objects.get("shapes", []):
        element = _shape(shape, shape["attributes"], specs, label=names[shape["label_id"]])
        _group(element, shape)
        on_frame.setdefault(shape["frame"], []).append(element)
    for track in objects.get("tracks", []):
        for shape in _track_shapes(track, last_frame):
            values = [*track.get("attributes", []), *shape.get("attributes", [])]
            element = _shape(shape, values, specs, label=names[track["label_id"]])
            _group(element, track)
            on_frame.setdefault(shape["frame"], []).append(element)
    for index, frame in enumerate(frames, start=first_id):
        image = ET.Element(
            "image", id=str(index), name=part.prefix + frame.file_name,
            width=str(frame.width), height=str(frame.height),
        )  # fmt: skip
        if subset is not None:
            image.set("subset", subset)
        image.extend(on_frame.get(frame.number, []))
        yield image


def _track(
    number: int,
    track: dict[str, Any],
    names: dict[int, str],
    specs: dict[int, SpecInfo],
    last_frame: int,
) -> ET.Element:
    element = ET.Element("track", id=str(number), label=names[track["label_id"]],
                         source="manual")  # fmt: skip
    _group(element, track)
    for shape in _track_shapes(track, last_frame, with_outside=True):
        values = [*track.get("attributes", []), *shape.get("attributes", [])]
        child = _shape(shape, values, specs, frame=shape["frame"])
        child.set("keyframe", str(int(bool(shape["keyframe"]))))
        child.set("outside", str(int(bool(shape.get("outside")))))
        element.append(child)
    return element


def _shape(
    shape: dict[str, Any],
    values: Iterable[dict[str, Any]],
    specs: dict[int, SpecInfo],
    *,
    label: str | None = None,
    frame: int | None = None,
) -> ET.Element:
    kind, points = shape["type"], shape["points"]
    element = ET.Element(ELEMENTS[kind])
    if label is not None:
        element.set("label", label)
        element.set("source", "manual")
    if frame is not None:
        element.set("frame", str(frame))
    element.set("occluded", str(int(bool(shape.get("occluded")))))
    if kind == "rectangle":
        for name, value in zip(("xtl", "ytl", "xbr", "ybr"), points, strict=True):
            element.set(name, _number(value))
    elif kind == "ellipse":
        cx, cy, right, top = points
        element.set("cx", _number(cx))
        element.set("cy", _number(cy))
        element.set("rx", _number(abs(right - cx)))
        element.set("ry", _number(abs(cy - top)))
    elif kind == "cuboid":
        for name, value in zip(CUBOID, points, strict=True):
            element.set(name, _number(value))
    elif kind == "mask":
        left, top, right, bottom = (int(v) for v in points[-4:])
        element.set("rle", ", ".join(str(int(c)) for c in points[:-4]))
        element.set("left", str(left))
        element.set("top", str(top))
        element.set("width", str(right - left + 1))
        element.set("height", str(bottom - top + 1))
    else:
        pairs = zip(points[0::2], points[1::2], strict=True)
        element.set("points", ";".join(f"{_number(x)},{_number(y)}" for x, y in pairs))
    if kind in ("rectangle", "ellipse") and shape.get("rotation"):
        element.set("rotation", _number(shape["rotation"]))
    element.set("z_order", str(int(shape.get("z_order", 0))))
    _attributes(element, values, specs)
    return element


def _group(element: ET.Element, obj: dict[str, Any]) -> None:
    if obj.get("group"):
        element.set("group_id", str(obj["group"]))


def _attributes(
    element: ET.Element, values: Iterable[dict[str, Any]], specs: dict[int, SpecInfo]
) -> None:
    for value in values:
        spec = specs.get(value["spec_id"])
        if spec is not None:
            ET.SubElement(element, "attribute", name=spec.name).text = str(value["value"])


# --- reading ----------------------------------------------------------------------------


def read(source: Path, labels: list[LabelInfo], frames: list[FrameInfo]) -> Imported:
    """The objects of the CVAT XML file in ``source`` (the upload, extracted), in the
    task's labels and frames. ValueError when there is no such file or it does not parse."""
    found = sorted(source.rglob("*.xml"))
    if len(found) != 1:
        raise ValueError(f"expected one XML file, found {len(found)}")
    try:
        root = ET.parse(found[0]).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{found[0].name}: {exc}") from None
    if root.tag != "annotations":
        raise ValueError(f"{found[0].name} holds no <annotations>")
    imported = Imported()
    by_name = {label.name: label for label in labels}
    numbers = {frame.number for frame in frames}
    frame_of = _frame_lookup(frames)
    tracks: dict[int, dict[str, Any]] = {}
    for image in root.iter("image"):
        frame = _image_frame(image, frame_of)
        if frame is None:
            imported.unknown_items.add(image.get("name", image.get("id", "?")))
            continue
        for element in image:
            label = _label(element, by_name, imported)
            if label is None:
                continue
            if element.tag == "tag":
                imported.objects["tags"].append({
                    "frame": frame, "label_id": label.id, "group": _int(element, "group_id"),
                    "attributes": _values(element, label), "source": "file",
                })  # fmt: skip
            elif element.tag in TYPES:
                imported.objects["shapes"].append(
                    _read_shape(element, frame) | {
                        "label_id": label.id, "group": _int(element, "group_id"),
                        "attributes": _values(element, label), "source": "file",
                    }
                )  # fmt: skip
    for index, element in enumerate(root.iter("track")):
        label = _label(element, by_name, imported)
        if label is None:
            continue
        immutable = {spec.id for spec in label.specs if not spec.mutable}
        track = tracks.setdefault(index, {
            "label_id": label.id, "group": _int(element, "group_id"), "source": "file",
            "attributes": [], "seen": {},
        })  # fmt: skip
        for child in element:
            if child.tag not in TYPES:
                continue
            frame = _int(child, "frame")
            if frame not in numbers:
                imported.unknown_items.add(f"frame {frame}")
                continue
            values = _values(child, label)
            if not track["seen"]:
                track["attributes"] = [v for v in values if v["spec_id"] in immutable]
            track["seen"].setdefault(frame, _read_shape(child, frame) | {
                "attributes": [v for v in values if v["spec_id"] not in immutable],
                "keyframe": _flag(child.get("keyframe", "1")),
                "outside": _flag(child.get("outside", "0")),
            })  # fmt: skip
    last_frame = max(numbers, default=0)
    for track in tracks.values():
        if track["seen"]:
            imported.objects["tracks"].append(_track_of(track, last_frame))
    return imported


def _image_frame(image: ET.Element, frame_of: dict[str, int]) -> int | None:
    name = image.get("name", "")
    stem = name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name
    for key in (name, stem, stem.rsplit("/", 1)[-1]):
        if key in frame_of:
            return frame_of[key]
    return None


def _label(
    element: ET.Element, by_name: dict[str, LabelInfo], imported: Imported
) -> LabelInfo | None:
    name = element.get("label")
    if name is None:
        return None
    label = by_name.get(name)
    if label is None:
        imported.unknown_labels.add(name)
    return label


def _values(element: ET.Element, label: LabelInfo) -> list[dict[str, Any]]:
    given = {a.get("name", ""): a.text or "" for a in element.findall("attribute")}
    return _attribute_values(label, given)


def _int(element: ET.Element, name: str) -> int:
    try:
        return int(float(element.get(name, "0")))
    except ValueError:
        raise ValueError(f"<{element.tag}> has {name}={element.get(name)!r}") from None


def _float(element: ET.Element, name: str) -> float:
    try:
        return float(element.attrib[name])
    except (KeyError, ValueError):
        raise ValueError(f"<{element.tag}> needs a number {name}") from None


def _read_shape(element: ET.Element, frame: int) -> dict[str, Any]:
    kind = TYPES[element.tag]
    if kind == "rectangle":
        points = [_float(element, n) for n in ("xtl", "ytl", "xbr", "ybr")]
    elif kind == "ellipse":
        cx, cy = _float(element, "cx"), _float(element, "cy")
        points = [cx, cy, cx + _float(element, "rx"), cy - _float(element, "ry")]
    elif kind == "cuboid":
        points = [_float(element, n) for n in CUBOID]
    elif kind == "mask":
        left, top = _int(element, "left"), _int(element, "top")
        right, bottom = left + _int(element, "width") - 1, top + _int(element, "height") - 1
        counts = [float(c) for c in (element.get("rle") or "").replace(" ", "").split(",") if c]
        points = [*counts, float(left), float(top), float(right), float(bottom)]
    else:
        try:
            points = [float(v) for pair in (element.get("points") or "").split(";")
                      for v in pair.split(",") if v]  # fmt: skip
        except ValueError:
            raise ValueError(f"<{element.tag}> has points that are not numbers") from None
    rotation = (
        float(element.get("rotation", "0")) % 360 if kind in ("rectangle", "ellipse") else 0.0
    )
    return {
        "type": kind, "frame": frame, "points": points,
        "occluded": _flag(element.get("occluded", "0")), "z_order": _int(element, "z_order"),
        "rotation": rotation,
    }  # fmt: skip

"""The source of every format's contract, and how the contract compares annotations.

One scene per feature a format may carry (a tag, a rectangle, an occluded box, a
track...), each on a frame or in a corner of its own so that one scene cannot blur into
another, even when a format draws shapes into masks. Annotations are compared as
``Seen`` objects (labels and attributes by name, coordinates rounded), and a feature is
what ``facts`` says about the objects found where its scene's objects are."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT, FRAMES = 80, 60, 5
# How far (in pixels) a shape's box may move and still be the same object: a box drawn
# into a mask covers pixels x1..x2-1.
NEAR = 1.0

LABELS: list[dict[str, Any]] = [
    {"name": "car", "attributes": [
        {"name": "model", "mutable": False, "input_type": "select", "default_value": "BMW",
         "values": ["BMW", "Audi"]},
        {"name": "color", "mutable": True, "input_type": "radio", "default_value": "red",
         "values": ["red", "blue"]},
        {"name": "parked", "mutable": True, "input_type": "checkbox", "default_value": "false",
         "values": ["false", "true"]},
        {"name": "doors", "mutable": False, "input_type": "number", "default_value": "2",
         "values": ["2", "5", "1"]},
        {"name": "plate", "mutable": True, "input_type": "text", "default_value": ""},
    ]},
    {"name": "person"},
    # ICDAR files have no labels: what they hold takes the task's label "icdar", whose
    # attribute "text" is the transcription (CVAT's convention).
    {"name": "icdar", "attributes": [
        {"name": "text", "mutable": True, "input_type": "text", "default_value": ""},
    ]},
]  # fmt: skip


# --- the scenes -------------------------------------------------------------------------


def _tag(frame: int, label: str, **attributes: str) -> dict[str, Any]:
    return {"frame": frame, "label": label, "attributes": attributes}


def _shape(kind: str, frame: int, label: str, points: list[float], **fields: Any) -> dict[str, Any]:
    return {"type": kind, "frame": frame, "label": label, "points": points,
            "attributes": fields.pop("attributes", {}), **fields}  # fmt: skip


def _box(frame: int, label: str, *points: float, **fields: Any) -> dict[str, Any]:
    return _shape("rectangle", frame, label, list(points), **fields)


# A car that moves down (interpolated on frame 1) and leaves after frame 2.
_TRACK = {"label": "car", "attributes": {}, "shapes": [
    _box(0, "car", 60, 2, 76, 14), _box(2, "car", 60, 22, 76, 34),
    _box(3, "car", 60, 22, 76, 34, outside=True),
]}  # fmt: skip
# A person whose mask is drawn anew on each frame (masks are not interpolated).
_MASK_TRACK = {"label": "person", "attributes": {}, "shapes": [
    _shape("mask", 3, "person", [0, 100, 2, 2, 11, 11]),
    _shape("mask", 4, "person", [0, 60, 10, 30, 6, 6, 15, 15]),
]}  # fmt: skip
_TRACK_ATTRIBUTES = {"label": "car", "attributes": {"model": "Audi"}, "shapes": [
    _box(3, "car", 60, 40, 76, 56, attributes={"parked": "true"}),
]}  # fmt: skip
# One of each input type.
_ATTRIBUTES = {"model": "Audi", "color": "blue", "parked": "true", "doors": "4",
               "plate": "AB 123"}  # fmt: skip

# Each feature's scene: what shows it, by label and attribute names. Frame 0 holds the
# box scenes in a grid, frames 1 and 2 the other kinds, 3 and 4 the mask track; the other
# tracks keep to x >= 60.
SCENES: dict[str, dict[str, list[dict[str, Any]]]] = {
    "tag": {"tags": [_tag(0, "person")]},
    "tag attributes": {"tags": [_tag(1, "car", model="Audi")]},
    "caption": {"tags": [_tag(2, "icdar", text="HELLO")]},
    "rectangle": {"shapes": [_box(0, "person", 2, 2, 18, 14)]},
    "polygon": {"shapes": [_shape("polygon", 0, "person",
                                  [22, 2, 38, 2, 38, 10, 30, 14, 22, 10])]},
    "rotation": {"shapes": [_box(0, "person", 42, 2, 56, 14, rotation=30.0)]},
    "attributes": {"shapes": [_box(0, "car", 2, 18, 18, 30, attributes=_ATTRIBUTES)]},
    "occluded": {"shapes": [_box(0, "person", 22, 18, 38, 30, occluded=True)]},
    "z_order": {"shapes": [_box(0, "person", 42, 18, 56, 30, z_order=3)]},
    "group": {"shapes": [_box(0, "car", 2, 34, 18, 46, group=1),
                         _box(0, "person", 22, 34, 38, 46, group=1)]},
    "transcription": {"shapes": [_box(0, "icdar", 42, 34, 56, 46, attributes={"text": "WORLD"})]},
    "polyline": {"shapes": [_shape("polyline", 1, "person", [2, 2, 10, 14, 18, 2])]},
    "points": {"shapes": [_shape("points", 1, "person", [22, 2, 38, 14])]},
    "ellipse": {"shapes": [_shape("ellipse", 1, "person", [50, 8, 56, 3])]},
    "label": {"shapes": [_box(1, "car", 2, 18, 18, 30)]},
    "cuboid": {"shapes": [_shape("cuboid", 2, "person",
                                 [2, 6, 2, 14, 12, 6, 12, 14, 16, 2, 16, 10, 6, 2, 6, 10])]},
    # CVAT's mask: run lengths (off, on, ...) over its box, then left, top, right, bottom.
    "mask": {"shapes": [_shape("mask", 2, "person", [0, 50, 10, 40, 22, 2, 31, 11])]},
    "track": {"tracks": [_TRACK]},
    "keyframes": {"tracks": [_TRACK]},
    "outside": {"tracks": [_TRACK]},
    "track attributes": {"tracks": [_TRACK_ATTRIBUTES]},
    "mask track": {"tracks": [_MASK_TRACK]},
}  # fmt: skip
FEATURES = tuple(SCENES)
SHAPE_KINDS = ("rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask")


def source_objects(features: frozenset[str]) -> dict[str, list[dict[str, Any]]]:
    """The scenes of ``features`` together (a scene shared by features, once)."""
    objects: dict[str, list[dict[str, Any]]] = {"tags": [], "shapes": [], "tracks": []}
    for feature in FEATURES:
        if feature in features:
            for kind, items in SCENES[feature].items():
                objects[kind] += [item for item in items if item not in objects[kind]]
    return objects


# --- annotations as the contract compares them ------------------------------------------


@dataclass(frozen=True)
class Seen:
    """A tag, a shape, or a track's shape on one frame it is visible on, with labels and
    attributes by name and coordinates rounded to what the format keeps."""

    kind: str
    frame: int
    label: str
    points: tuple[float, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()
    occluded: bool = False
    z_order: int = 0
    group: int = 0
    rotation: float = 0.0
    keyframe: bool = True

    @property
    def box(self) -> tuple[float, ...]:
        p = self.points
        if self.kind == "ellipse":
            rx, ry = abs(p[2] - p[0]), abs(p[1] - p[3])
            return (p[0] - rx, p[1] - ry, p[0] + rx, p[1] + ry)
        if self.kind == "mask":
            return p[-4:]
        return (min(p[0::2]), min(p[1::2]), max(p[0::2]), max(p[1::2]))

    def near(self, other: Seen) -> bool:
        """The same object, as far as where it is goes."""
        if self.kind == "tag" or other.kind == "tag":
            return (self.kind, self.frame, self.label) == (other.kind, other.frame, other.label)
        return self.frame == other.frame and all(
            abs(a - b) <= NEAR + 1e-6 for a, b in zip(self.box, other.box, strict=True)
        )

    @property
    def geometry(self) -> tuple[Any, ...]:
        return (self.frame, self.kind, self.points)


@dataclass(frozen=True)
class Path:
    """A track: its shape on every frame it is visible on (interpolated between
    keyframes, as CVAT does)."""

    label: str
    attributes: tuple[tuple[str, str], ...]
    shapes: tuple[Seen, ...]


@dataclass
class View:
    tags: list[Seen] = field(default_factory=list)
    shapes: list[Seen] = field(default_factory=list)
    tracks: list[Path] = field(default_factory=list)

    def every_shape(self) -> list[Seen]:
        return self.shapes + [shape for path in self.tracks for shape in path.shapes]


def view(
    objects: dict[str, Any],
    labels: dict[int, str],
    specs: dict[int, str],
    *,
    digits: int,
    frames: int = FRAMES,
) -> View:
    """Annotations as the API answers them (or as sent), as the contract compares them."""

    def seen(obj: dict[str, Any], kind: str, frame: int, label: int, **extra: Any) -> Seen:
        values = sorted((specs[a["spec_id"]], a["value"]) for a in obj.get("attributes", []))
        return Seen(
            kind, frame, labels[label],
            tuple(round(float(p), digits) for p in obj.get("points", [])), tuple(values),
            bool(obj.get("occluded")), int(obj.get("z_order", 0)), int(obj.get("group", 0)),
            round(float(obj.get("rotation", 0.0)), digits), **extra,
        )  # fmt: skip

    result = View()
    for tag in objects.get("tags", []):
        result.tags.append(seen(tag, "tag", tag["frame"], tag["label_id"]))
    for shape in objects.get("shapes", []):
        result.shapes.append(seen(shape, shape["type"], shape["frame"], shape["label_id"]))
    for track in objects.get("tracks", []):
        keyframes = sorted(track["shapes"], key=lambda s: s["frame"])
        visible = []
        for index, key in enumerate(keyframes):
            following = keyframes[index + 1] if index + 1 < len(keyframes) else None
            if key.get("outside"):
                continue
            for frame in range(key["frame"], following["frame"] if following else frames):
                points = key["points"]
                if (
                    following is not None
                    and following["type"] == key["type"] != "mask"
                    and len(following["points"]) == len(points)
                ):
                    t = (frame - key["frame"]) / (following["frame"] - key["frame"])
                    points = [a + (b - a) * t for a, b in zip(points, following["points"],
                                                              strict=True)]  # fmt: skip
                # What an object has on a frame: its track's attributes and its own.
                shape = dict(
                    key,
                    points=points,
                    group=track.get("group", 0),
                    attributes=[*track["attributes"], *key.get("attributes", [])],
                )
                visible.append(seen(shape, key["type"], frame, track["label_id"],
                                    keyframe=frame == key["frame"]))  # fmt: skip
        attributes = tuple(sorted((specs[a["spec_id"]], a["value"]) for a in track["attributes"]))
        result.tracks.append(Path(labels[track["label_id"]], attributes, tuple(visible)))
    return result


# --- what each feature is, in a view ------------------------------------------------------


def _counterparts(scene: list[Seen], found: list[Seen]) -> list[tuple[Seen, Seen]]:
    return [(wanted, got) for wanted in scene for got in found if got.near(wanted)]


def _key(seen: Seen) -> tuple[Any, ...]:
    return (seen.frame, seen.kind, seen.label) if seen.kind == "tag" else (seen.frame, seen.box)


def _track_facts(feature: str, scene: View, found: View) -> list[Any]:
    facts: list[Any] = []
    for wanted in scene.tracks:
        span = {shape.frame for shape in wanted.shapes}
        for path in found.tracks:
            if not (path.shapes and path.shapes[0].near(wanted.shapes[0])):
                continue
            inside = [shape for shape in path.shapes if shape.frame in span]
            if feature in ("track", "mask track"):
                facts.append((path.label, tuple(shape.geometry for shape in inside)))
            elif feature == "keyframes":
                facts.append(tuple(shape.frame for shape in inside if shape.keyframe))
            elif feature == "outside":
                # Where the track is still seen after it left.
                facts.append(tuple(s.frame for s in path.shapes if s.frame not in span))
            else:
                keyed = tuple((s.frame, s.attributes) for s in inside if s.keyframe)
                facts.append((path.attributes, keyed))
    return facts


PROPERTIES: dict[str, Callable[[Seen], Any]] = {
    "attributes": lambda seen: seen.attributes,
    "transcription": lambda seen: seen.attributes,
    "label": lambda seen: seen.label,
    "rotation": lambda seen: seen.rotation,
    "occluded": lambda seen: seen.occluded,
    "z_order": lambda seen: seen.z_order,
}


def facts(feature: str, scene: View, found: View) -> list[Any]:
    """What ``found`` says about ``feature``, looking only at the objects of the
    feature's ``scene`` (found again by where they are): equal for the source and
    the imported annotations when the feature is carried."""
    if scene.tracks:
        result = _track_facts(feature, scene, found)
    elif scene.tags:
        result = [(got.frame, got.label, got.attributes) for _, got in
                 _counterparts(scene.tags, found.tags)]  # fmt: skip
    elif feature in SHAPE_KINDS:
        pairs = _counterparts(scene.shapes, found.every_shape())
        result = [got.geometry for _, got in pairs if got.kind == feature]
    elif feature == "group":
        groups: dict[int, set[Any]] = defaultdict(set)
        for wanted, got in _counterparts(scene.shapes, found.every_shape()):
            if got.group:
                groups[got.group].add(_key(wanted))
        result = [sorted(members) for members in groups.values() if len(members) > 1]
    else:
        result = [(_key(wanted), PROPERTIES[feature](got)) for wanted, got in
                 _counterparts(scene.shapes, found.every_shape())]  # fmt: skip
    return sorted(result, key=repr)


def scene(feature: str, *, digits: int) -> View:
    """``feature``'s scene, as the contract compares annotations."""
    label_ids = {label["name"]: number for number, label in enumerate(LABELS, start=1)}
    spec_ids = {(label["name"], spec["name"]): number for number, (label, spec) in enumerate(
        ((label, spec) for label in LABELS for spec in label.get("attributes", [])), start=1
    )}  # fmt: skip
    body = as_body(SCENES[feature], label_ids, spec_ids)
    names = {number: name for name, number in label_ids.items()}
    specs = {number: name for (_, name), number in spec_ids.items()}
    return view(body, names, specs, digits=digits)


def as_body(
    objects: dict[str, list[dict[str, Any]]],
    label_ids: dict[str, int],
    spec_ids: dict[tuple[str, str], int],
) -> dict[str, Any]:
    """Scene objects (labels and attributes by name) as an annotations body."""

    def ided(obj: dict[str, Any], label: str) -> dict[str, Any]:
        values = [{"spec_id": spec_ids[label, name], "value": value}
                  for name, value in obj["attributes"].items()]  # fmt: skip
        rest = {k: v for k, v in obj.items() if k not in ("label", "attributes", "shapes")}
        return rest | {"attributes": values}

    body: dict[str, Any] = {"tags": [], "shapes": [], "tracks": []}
    for kind in ("tags", "shapes"):
        for obj in objects.get(kind, []):
            body[kind].append(ided(obj, obj["label"]) | {"label_id": label_ids[obj["label"]]})
    for track in objects.get("tracks", []):
        shapes = [ided(shape, track["label"]) for shape in track["shapes"]]
        body["tracks"].append(
            ided(track, track["label"])
            | {"label_id": label_ids[track["label"]], "frame": shapes[0]["frame"],
               "shapes": shapes}
        )  # fmt: skip
    return body

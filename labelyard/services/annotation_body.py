"""The annotations' wire model: what a body of tags, shapes and tracks is, decoded and
type-checked in one pass by msgspec into objects the garbage collector does not track
(10x faster than pydantic models on 100,000 shapes), and the errors that name the field
a bad one got wrong. What the objects mean (labels, frames, attribute values) is checked
by ``annotations``."""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from labelyard.domain.annotations import ShapeType, Source
from labelyard.services.errors import InvalidInput
from labelyard.services.fields import MAX_INT

KINDS = ("tags", "shapes", "tracks")
TEXT_MAX = 4096
# Bounds that only infinity and NaN (strings "inf", "nan") fall outside.
MAX_COORDINATE = sys.float_info.max
MAX_POINTS = 1_000_000


# --- the wire model ---------------------------------------------------------------

Id = Annotated[int, Meta(ge=1, le=MAX_INT)]
Count = Annotated[int, Meta(ge=0, le=MAX_INT)]
ZOrder = Annotated[int, Meta(ge=-MAX_INT, le=MAX_INT)]
Rotation = Annotated[float, Meta(ge=0, le=360)]
Coordinate = Annotated[float, Meta(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]
Points = Annotated[list[Coordinate], Meta(max_length=MAX_POINTS)]
Version = Annotated[int, Meta(ge=0, le=2**62)]


class AttributeValue(Struct, gc=False):
    spec_id: Id
    value: Annotated[str, Meta(max_length=TEXT_MAX)]


class Tag(Struct, kw_only=True, gc=False):
    # Set to the object's id before it is encoded (the id the client sent counts only
    # for update and delete).
    id: Id | UnsetType | None = UNSET
    frame: Count
    label_id: Id
    group: Count = 0
    source: Source = Source.MANUAL
    attributes: list[AttributeValue] = []


class Shape(Tag, kw_only=True, gc=False):
    type: ShapeType
    occluded: bool = False
    outside: bool = False
    z_order: ZOrder = 0
    rotation: Rotation = 0.0
    points: Points = []


class TrackedShape(Struct, kw_only=True, gc=False):
    type: ShapeType
    frame: Count
    occluded: bool = False
    outside: bool = False
    z_order: ZOrder = 0
    rotation: Rotation = 0.0
    points: Points = []
    keyframe: bool = True
    attributes: list[AttributeValue] = []


class Track(Tag, kw_only=True, gc=False):
    shapes: Annotated[list[TrackedShape], Meta(min_length=1)]


class AnnotationsIn(Struct, kw_only=True, gc=False, forbid_unknown_fields=True):
    """A body of annotations. A kind left out is not sent (UNSET), which a replacement
    tells apart from an empty list; a key of no kind is refused, never ignored: a
    misspelt ``"shape"`` would otherwise replace the job's work with nothing."""

    version: Version | None = None
    tags: list[Tag] | UnsetType = UNSET
    shapes: list[Shape] | UnsetType = UNSET
    tracks: list[Track] | UnsetType = UNSET

    @classmethod
    def nothing(cls) -> AnnotationsIn:
        """A replacement by no objects: what clears a job or a task."""
        return cls(tags=[], shapes=[], tracks=[])

    def objects(self) -> dict[str, list[Any]]:
        return {kind: [] if value is UNSET else value for kind, value in self._kinds()}

    def sends_any(self) -> bool:
        """Whether the body names at least one kind of object (an empty list counts)."""
        return any(value is not UNSET for _, value in self._kinds())

    def _kinds(self) -> list[tuple[str, Any]]:
        return [("tags", self.tags), ("shapes", self.shapes), ("tracks", self.tracks)]


def require_kinds(body: AnnotationsIn) -> None:
    """A replacement must say what it replaces: ``{}`` is a mistake, not "delete all"."""
    if not body.sends_any():
        raise InvalidInput.on(
            "non_field_errors",
            "A PUT replaces all the annotations: send at least one of shapes, tracks or "
            "tags (an empty list clears them).",
        )


# Lax: numbers and booleans sent as strings are read as DRF reads them.
_decoder = msgspec.json.Decoder(AnnotationsIn, strict=False)
encode = msgspec.json.Encoder().encode
_ERROR_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def decode(body: bytes) -> AnnotationsIn:
    """The annotations in a request body, or InvalidInput naming the offending field."""
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as error:
        raise _invalid(str(error), body) from None
    except msgspec.DecodeError as error:
        malformed = error
    # Not JSON to the letter. Python's reader also takes NaN and Infinity, which some
    # clients write: read that way, the object and field that hold one can be named.
    try:
        lenient = json.loads(body)
    except (ValueError, RecursionError):
        reason = str(malformed).removeprefix("JSON is malformed: ")
        raise InvalidInput.on("non_field_errors", f"JSON parse error - {reason}") from None
    try:
        return msgspec.convert(lenient, AnnotationsIn, strict=False)
    except msgspec.ValidationError as error:
        raise _invalid(str(error), body) from None


def _unknown_keys(body: bytes) -> InvalidInput:
    """Every top-level key of ``body`` that is no part of an annotations body, named."""
    known = set(AnnotationsIn.__struct_fields__)
    unknown = sorted(set(json.loads(body)) - known)
    return InvalidInput(
        {key: ["Unknown field: send version, tags, shapes and tracks only."] for key in unknown},
        f"Unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: an annotations "
        "body has version, tags, shapes and tracks.",
    )


def convert(objects: dict[str, Any]) -> AnnotationsIn:
    """Annotations given as Python objects (an import's), checked as a body would be."""
    try:
        return msgspec.convert(objects, AnnotationsIn, strict=False)
    except msgspec.ValidationError as error:
        raise _invalid(str(error)) from None


def _invalid(text: str, body: bytes | None = None) -> InvalidInput:
    match = _ERROR_AT.match(text)
    message, path = (match["message"], match["path"] or "") if match else (text, "")
    if not path and message.startswith("Object contains unknown field") and body is not None:
        return _unknown_keys(body)
    path = re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")
    missing = _MISSING.match(message)
    if "Number out of range" in message or repr(MAX_COORDINATE) in message:
        message = "Expected a finite number."
    elif missing:
        path = f"{path}.{missing['field']}".lstrip(".")
        message = "This field is required."
    elif not path and message.startswith("Expected `object`"):
        message = "Expected a JSON object sent with Content-Type: application/json."
    return InvalidInput.on(path or "non_field_errors", message)


def body_schemas(ref_template: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """JSON schema of a request body, and the schemas it refers to (for OpenAPI)."""
    (schema,), components = msgspec.json.schema_components(
        [AnnotationsIn], ref_template=ref_template
    )
    return schema, components

"""labelyard's task backup format, version 1.0: what the archive holds and how it reads.

A backup is a zip in CVAT 1.5's layout, with CVAT's field names where they fit::

    task.json         the manifest: ``format`` and ``version``; the task's name, bug
                      tracker, subset, segment size, overlap, labels with their attribute
                      specs; ``data``: how its media was given (image quality, chunk size,
                      start and stop frame, frame filter, sorting method, chunk type) and
                      ``media``, the files in the order they are given; ``frames``: each
                      frame's name and size; ``jobs``: each job's frame range, status,
                      assignee and reviewer (by username)
    annotations.json  one entry per job, in the order of ``jobs``: its tags, shapes and
                      tracks as the API answers them, with labels and attributes named
                      (``"label": "car"``, ``{"name": "model", "value": "Audi"}``)
                      instead of numbered, so that they survive a restore
    data/...          the media files as they were uploaded (images, or the video)

CVAT's own backups have no ``format`` and no ``frames``: they are refused as foreign."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labelyard.domain import JobStatus, Label, TaskState
from labelyard.services import annotation_body
from labelyard.services.errors import InvalidInput
from labelyard.services.fields import MAX_INT, Count
from labelyard.services.labels import LabelIn
from labelyard.services.operations import UserFacingError

FORMAT = "labelyard task backup"
VERSION = "1.0"
MANIFEST = "task.json"
ANNOTATIONS = "annotations.json"
DATA = "data"
# What extract_archive skips (hidden files, macOS and Windows junk): media named so
# are kept under another path in the archive.
_SKIPPED_PARTS = ("__MACOSX",)
_SKIPPED_NAMES = ("thumbs.db", "desktop.ini")


class _Part(BaseModel):
    # Fields a later 1.x writer adds are ignored, as CVAT's importer ignores them.
    model_config = ConfigDict(extra="ignore")


class MediaFile(_Part):
    name: str = Field(min_length=1, max_length=1024)  # the asset's name: its frames' names
    file: str = Field(min_length=1, max_length=1100)  # where it is in the archive


class DataPart(_Part):
    image_quality: int = Field(default=70, ge=1, le=100)
    chunk_size: int | None = Field(default=None, ge=1, le=1000)
    start_frame: int = Field(default=0, ge=0, le=MAX_INT)
    stop_frame: int | None = Field(default=None, ge=0, le=MAX_INT)
    frame_filter: str = Field(default="", max_length=32)
    # How the task's media was first sorted; a restore gives ``media`` in this order.
    sorting_method: str = Field(default="predefined", max_length=32)
    chunk_type: Literal["imageset", "video"] = "imageset"
    use_cache: bool = True
    media: list[MediaFile] = Field(default_factory=list)


class FramePart(_Part):
    name: str = Field(max_length=1024)
    width: int = Field(ge=1, le=MAX_INT)
    height: int = Field(ge=1, le=MAX_INT)


class JobPart(_Part):
    start_frame: Count
    stop_frame: Count
    status: JobStatus = JobStatus.ANNOTATION
    assignee: str | None = Field(default=None, max_length=150)
    reviewer: str | None = Field(default=None, max_length=150)


class Manifest(_Part):
    format: str
    version: str
    name: str
    bug_tracker: str = ""
    subset: str = ""
    status: str = ""
    state: TaskState = TaskState.IN_PROGRESS
    mode: Literal["", "annotation", "interpolation"] = ""
    segment_size: Count = 0
    overlap: Count | None = None
    z_order: bool = False
    image_quality: int = Field(default=70, ge=0, le=100)
    labels: list[LabelIn] = Field(default_factory=list)
    data: DataPart | None = None
    frames: list[FramePart] = Field(default_factory=list)
    jobs: list[JobPart] = Field(default_factory=list)


def archived_path(name: str, taken: set[str]) -> str:
    """Where the medium named ``name`` goes in the archive: ``data/<name>``, unless the
    restore's unpacking would skip that path (a hidden file), or it is taken."""
    parts = PurePosixPath(name).parts
    kept = tuple(_kept(part) for part in parts)
    if kept[-1].lower() in _SKIPPED_NAMES:
        kept = (*kept[:-1], "_" + kept[-1])
    path = "/".join((DATA, *parts)) if kept == parts else "/".join((DATA, "renamed", *kept))
    number = 1
    while path in taken:
        path = "/".join((DATA, "renamed", str(number), *kept))
        number += 1
    taken.add(path)
    return path


def _kept(part: str) -> str:
    if part.startswith("."):
        return part.lstrip(".") or "_"
    return "_" + part if part in _SKIPPED_PARTS else part


def read_manifest(raw: Any) -> Manifest:
    """The manifest, or UserFacingError saying what in it is wrong: a foreign file and a
    version this server does not read are told apart from a damaged one."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise UserFacingError(f"{MANIFEST} is not a labelyard task backup's manifest.")
    if raw.get("version") != VERSION:
        raise UserFacingError(
            f"This backup is of version {raw.get('version')!r}; this server reads {VERSION}."
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the manifest"
        raise UserFacingError(f"{MANIFEST}: {where}: {error['msg']}") from None
    _check_consistent(manifest)
    return manifest


def _check_consistent(manifest: Manifest) -> None:
    size = len(manifest.frames)
    if size and manifest.data is None:
        raise UserFacingError(f"{MANIFEST}: the task has frames but no data part.")
    if manifest.data is not None and not manifest.data.media:
        raise UserFacingError(f"{MANIFEST}: data.media lists no files.")
    for index, job in enumerate(manifest.jobs):
        if not job.start_frame <= job.stop_frame < size:
            raise UserFacingError(
                f"{MANIFEST}: jobs.{index}: frames {job.start_frame}-{job.stop_frame} are not "
                f"frames of the task (it has {size})."
            )
    if size and not manifest.jobs:
        raise UserFacingError(f"{MANIFEST}: the task has frames but no jobs.")


# --- annotations: labels and attributes by name -----------------------------------

# A label's id and its attribute specs' ids by name (or the reverse, by id).
LabelsByName = dict[str, tuple[int, dict[str, int]]]
LabelsById = dict[int, tuple[str, dict[int, str]]]


def labels_by_id(labels: list[Label]) -> LabelsById:
    return {
        label.id: (label.name, {spec.id: spec.name for spec in label.attributes})
        for label in labels
    }


def labels_by_name(labels: list[Label]) -> LabelsByName:
    return {
        label.name: (label.id, {spec.name: spec.id for spec in label.attributes})
        for label in labels
    }


def numbered_provisionally(labels: list[LabelIn]) -> LabelsByName:
    """Stand-in ids for the backup's labels (their places, counted from 1), so that its
    annotations are checked before the task that gives the real ids exists."""
    numbered: LabelsByName = {}
    spec_id = 0
    for index, label in enumerate(labels):
        specs = {}
        for attribute in label.attributes:
            spec_id += 1
            specs[attribute.name] = spec_id
        numbered[label.name] = (index + 1, specs)
    return numbered


def stand_in_ids(
    backup: list[LabelIn], restored: list[Label]
) -> tuple[dict[int, int], dict[int, int]]:
    """The restored task's label ids and attribute spec ids by the stand-ins of
    ``numbered_provisionally``."""
    real = labels_by_name(restored)
    labels, specs = {}, {}
    for name, (stand_in, stand_in_specs) in numbered_provisionally(backup).items():
        label_id, spec_ids = real[name]
        labels[stand_in] = label_id
        for spec_name, spec_stand_in in stand_in_specs.items():
            specs[spec_stand_in] = spec_ids[spec_name]
    return labels, specs


def named(item: dict[str, Any], labels: LabelsById) -> dict[str, Any]:
    """A stored object (tag, shape, track) as a backup holds it."""
    label_id = item.pop("label_id")
    item.pop("id", None)
    if label_id not in labels:
        raise UserFacingError(f"An annotation has label {label_id}, which the task lacks.")
    name, specs = labels[label_id]
    item["label"] = name

    def by_name(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Values of an attribute deleted since are no longer shown: they are not kept.
        return [{"name": specs[value["spec_id"]], "value": value["value"]}
                for value in values if value["spec_id"] in specs]  # fmt: skip

    item["attributes"] = by_name(item.get("attributes", []))
    for shape in item.get("shapes", ()):
        shape["attributes"] = by_name(shape.get("attributes", []))
    return item


def read_annotations(raw: Any, manifest: Manifest) -> list[annotation_body.AnnotationsIn]:
    """annotations.json as each job's checked annotations, with stand-in label and
    attribute ids (see ``numbered_provisionally``; ``renumber`` gives the real ones)."""
    if not isinstance(raw, list) or len(raw) != len(manifest.jobs):
        raise UserFacingError(
            f"{ANNOTATIONS} must list the annotations of each of the {len(manifest.jobs)} jobs."
        )
    labels = numbered_provisionally(manifest.labels)
    checked = []
    for index, job in enumerate(raw):
        where = f"{ANNOTATIONS}: job {index + 1}"
        if not isinstance(job, dict):
            raise UserFacingError(f"{where}: expected an object with tags, shapes and tracks.")
        objects = {kind: _numbered(job.get(kind, []), labels, f"{where}: {kind}")
                   for kind in annotation_body.KINDS}  # fmt: skip
        try:
            checked.append(annotation_body.convert(objects))
        except InvalidInput as exc:
            raise UserFacingError(f"{where}: {exc.detail}") from None
    return checked


def _numbered(items: Any, labels: LabelsByName, where: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UserFacingError(f"{where}: expected a list of objects.")
    numbered = []
    for index, item in enumerate(items):
        name = item.get("label")
        entry = labels.get(name) if isinstance(name, str) else None
        if entry is None:
            raise UserFacingError(
                f"{where}.{index}: label {item.get('label')!r} is not among the backup's labels."
            )
        label_id, specs = entry
        by_id = _spec_ids(specs, f"{where}.{index}")
        converted = {k: v for k, v in item.items() if k != "label"} | {"label_id": label_id}
        converted["attributes"] = by_id(item.get("attributes", []))
        if isinstance(item.get("shapes"), list):
            converted["shapes"] = [
                {**shape, "attributes": by_id(shape.get("attributes", []))}
                if isinstance(shape, dict)
                else shape
                for shape in item["shapes"]
            ]
        numbered.append(converted)
    return numbered


def _spec_ids(specs: dict[str, int], where: str) -> Callable[[Any], list[dict[str, Any]]]:
    def by_id(values: Any) -> list[dict[str, Any]]:
        if not isinstance(values, list):
            raise UserFacingError(f"{where}: attributes must be a list.")
        numbered = []
        for value in values:
            name = value.get("name") if isinstance(value, dict) else None
            if not isinstance(name, str) or name not in specs:
                raise UserFacingError(f"{where}: the label has no attribute {name!r}.")
            numbered.append({"spec_id": specs[name], "value": value.get("value")})
        return numbered

    return by_id


def renumber(
    body: annotation_body.AnnotationsIn, labels: dict[int, int], specs: dict[int, int]
) -> None:
    """Give ``body``'s objects the restored task's label and attribute ids in place of
    the stand-ins they were checked with."""
    for items in body.objects().values():
        for item in items:
            item.label_id = labels[item.label_id]
            for value in item.attributes:
                value.spec_id = specs[value.spec_id]
            for shape in getattr(item, "shapes", ()):
                for value in shape.attributes:
                    value.spec_id = specs[value.spec_id]

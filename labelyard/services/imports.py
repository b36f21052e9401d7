"""Annotation files into a task or a job, as background operations (CVAT's flow).

``PUT .../annotations?format=F`` with a multipart ``annotation_file`` starts an import
and answers 202. CVAT's clients poll by sending the same request again: CVAT 1.x's
command line re-sends the file every time, its web client an empty form. So while an
import of that target and format by that user runs, the same file (or none) polls it:
202 until it ends, then its outcome once (201, or 400 with the reason); only a file
sent after that starts another import. A poll never starts work, and a different file
sent while one runs is refused (409) rather than dropped.

A file that does not parse, or that names labels or images the task lacks, fails the
operation with the reason and leaves the annotations as they were; a good one replaces
them in one transaction."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any

import datumaro as dm
from sqlalchemy import select

from labelyard.adapters.media.archives import extract_archive
from labelyard.adapters.media.errors import MediaError
from labelyard.collector import paused_collector
from labelyard.domain import Operation, OperationStatus, utcnow
from labelyard.formats import cvat_xml, mapping, streaming
from labelyard.formats.registry import Format, find
from labelyard.services import access, annotation_body, operations, task_annotations
from labelyard.services import annotations as job_annotations
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, InvalidInput, NotFound
from labelyard.services.exchange import (
    Scope,
    resolve_target,
    short_reason,
    take_snapshot,
    use_datumaro_here,
)
from labelyard.services.labels import LabelIn, apply_labels
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.uow import UnitOfWork

log = logging.getLogger(__name__)

IMPORT = "annotations.import"
# How long after an import ended the same file, sent again, is still a poll of it (the
# file's client went on polling); a file sent later is imported again.
POLL_WINDOW = timedelta(minutes=10)
# How long a poll waits for a running import to end before it answers 202: a client
# that polls in a tight loop (CVAT 1.x's command line) gets the outcome on its first
# poll, and sends its file a few times rather than thousands.
POLL_WAIT_SECONDS = 2.0
RUNNING = (OperationStatus.QUEUED, OperationStatus.STARTED)


@dataclass(frozen=True)
class ReceivedFile:
    """An uploaded annotation file: what it holds (its SHA-256), and how to keep it for
    the operation, which is done only when it starts one."""

    digest: str
    stage: Callable[[], dict[str, Any]]


def file_digest(file: IO[bytes]) -> str:
    """The SHA-256 of ``file``'s content, read from its start; left at its start."""
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def receive(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    scope: Scope,
    object_id: int,
    format_name: str,
    received: ReceivedFile | None,
    *,
    create_labels: bool = False,
) -> Operation:
    """The import this request is about: a new one for a new file (``create_labels``:
    add the labels the file has and the task lacks, instead of refusing it), or the one
    the request polls, waited for a moment. Without a file: the actor's newest import of
    the target (404 when there is none)."""
    target = f"{scope}:{object_id}"
    if received is None:
        resolve_target(uow, actor, scope, object_id)  # visible to the actor, or 404
        latest = _latest(uow, actor, target, None)
        if latest is None:
            raise NotFound("No annotation file was sent to this target: send annotation_file.")
        return _polled(uow, latest)
    chosen = find(format_name, exporting=False)
    # The right to write, checked before the file is kept; the target's rows stay locked
    # until the commit, so two copies of one request start one import.
    task, job = resolve_target(uow, actor, scope, object_id)
    if job is not None:
        job_annotations.lock_job(uow, actor, job.id)
    else:
        task_annotations.check_can_write(uow, actor, task)
    latest = _latest(uow, actor, target, chosen.display_name)
    if latest is not None and latest.params.get("digest") == received.digest:
        if latest.status in RUNNING:
            return _polled(uow, latest)
        ended = latest.finished or latest.created
        if not latest.params.get("reported") and utcnow() - ended < POLL_WINDOW:
            return _polled(uow, latest)
    elif latest is not None and latest.status in RUNNING:
        raise Conflict(
            f"An import of another {chosen.display_name} file into this {scope} is running "
            f"(rq_id {latest.id}): poll it, or send this file when it has ended."
        )
    operation = operations.create(
        uow,
        kind=IMPORT,
        params={"scope": scope, "id": object_id, "format": chosen.display_name,
                "file": received.stage(), "digest": received.digest,
                "create_labels": create_labels},
        owner_id=actor.id,
        target=target,
    )  # fmt: skip
    uow.commit()
    runner.submit(operation.id)
    return operation


def _latest(
    uow: UnitOfWork, actor: Actor, target: str, format_name: str | None
) -> Operation | None:
    """The actor's newest import into ``target`` (of that format, when one is named)."""
    for operation in uow.session.scalars(
        select(Operation)
        .where(Operation.target == target, Operation.kind == IMPORT,
               Operation.owner_id == actor.id)
        .order_by(Operation.created.desc())
        .limit(20)
    ):  # fmt: skip
        if format_name is None or operation.params.get("format") == format_name:
            return operation
    return None


def _polled(uow: UnitOfWork, operation: Operation) -> Operation:
    """``operation`` once it has ended, or as it is after POLL_WAIT_SECONDS; an ended one
    is marked as answered, so that the next file sent starts a new import."""
    uow.commit()  # nothing is held while it waits: the import itself has to write
    deadline = time.monotonic() + POLL_WAIT_SECONDS
    while operation.status in RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
        uow.session.refresh(operation)
        uow.commit()
    if operation.status not in RUNNING and not operation.params.get("reported"):
        uow.start_writing()
        uow.session.refresh(operation)
        operation.params = operation.params | {"reported": True}
        uow.commit()
    return operation


# --- the operation ------------------------------------------------------------------


def run_import(context: OperationContext) -> dict[str, Any]:
    use_datumaro_here()
    runtime = context.deps
    params = context.params
    chosen = find(params["format"], exporting=False)
    snapshot = take_snapshot(context, params["scope"], params["id"], objects="none")
    frames = snapshot.parts[0].frames
    staged = params["file"]
    with tempfile.TemporaryDirectory(prefix="labelyard-import-") as scratch_name:
        scratch = Path(scratch_name)
        received = scratch / staged["name"]
        runtime.storage.download(staged["key"], received)
        source = scratch / "source"
        source.mkdir()
        if zipfile.is_zipfile(received) or received.suffix.lower() in (".tar", ".gz", ".tgz"):
            try:
                extract_archive(received, source)
            except MediaError as exc:
                raise UserFacingError(str(exc)) from None
        else:
            shutil.copy(received, source / received.name)
        context.progress(0.2, "Reading the file", force=True)
        try:
            read = _file_reader(chosen, source, frames)
            imported = read(snapshot.labels)
        except Exception as exc:
            raise UserFacingError(
                f"The file is not {chosen.display_name} that can be read: {short_reason(exc)}"
            ) from None
        missing = sorted(imported.unknown_labels)
        if missing and not params.get("create_labels"):
            raise UserFacingError(
                "The file has labels this task lacks: " + ", ".join(missing)
                + ". Add them to the task (or project), or import with create_labels=true."
            )  # fmt: skip
        if imported.unknown_items:
            shown = sorted(imported.unknown_items)
            raise UserFacingError(
                f"The file has {len(shown)} images this task lacks: "
                + ", ".join(shown[:10])
                + (" ..." if len(shown) > 10 else "")
            )
        context.progress(0.7, "Saving the annotations", force=True)
        # One transaction: the labels the file brings (when asked for) and the annotations.
        with UnitOfWork(context.session_factory) as uow:
            try:
                if missing:
                    labels = _add_labels(
                        uow, snapshot.actor, params["scope"], params["id"], missing
                    )
                    imported = read(labels)
                body = _converted(imported.chunks())
                # The file's objects are all in ``body`` now: let them go before the write.
                del read, imported
                if params["scope"] == "job":
                    written = job_annotations.write(
                        uow, snapshot.actor, params["id"], body, action=None
                    )
                else:
                    written = task_annotations.write(
                        uow, snapshot.actor, params["id"], body, action=None
                    )
            except InvalidInput as exc:
                raise UserFacingError(
                    f"The file's annotations do not fit the task: {exc.detail}"
                ) from None
    runtime.storage.delete(staged["key"])
    counts = {kind: len(items) for kind, items in written.objects.items()}
    return {"version": written.version, **counts}


def _file_reader(
    chosen: Format, source: Path, frames: list[mapping.FrameInfo]
) -> Callable[[list[mapping.LabelInfo]], streaming.FileObjects]:
    """How the file's objects are read, in a task's labels: straight from the file on the
    fast path (formats/streaming.py) when it reads the file as Datumaro does, else
    through Datumaro."""
    _check_detected(chosen, source)
    if chosen.cvat_xml is not None:
        return lambda labels: streaming.FileObjects.of(cvat_xml.read(source, labels, frames))
    try:
        reader = streaming.plan_import(chosen, source)
    except streaming.NotStreamable as reason:
        log.info("%s import through Datumaro: %s", chosen.display_name, reason)
    else:
        return lambda labels: reader.read(labels, frames)
    options = _import_needs(chosen, source, frames)
    dataset = dm.Dataset.import_from(str(source), chosen.importer, **options)
    return lambda labels: streaming.FileObjects.of(
        mapping.from_dataset(
            dataset, labels, frames,
            numbered=chosen.numbered_items, boxes_of_shapes=chosen.boxes_of_shapes,
        )
    )  # fmt: skip


def _check_detected(chosen: Format, source: Path) -> None:
    """Refuse a file that Datumaro recognises as other formats only: some importers
    (ICDAR's) read a file of another format as items without annotations, which would
    replace the task's annotations with nothing."""
    try:
        detected = dm.Environment().detect_dataset(str(source))
    except Exception:  # detection is a courtesy: the importer has the last word
        return
    if detected and chosen.importer not in detected:
        raise ValueError(f"it looks like {', '.join(sorted(detected))}")


def _converted(chunks: streaming.Chunks) -> annotation_body.AnnotationsIn:
    """The objects checked as ``annotation_body.convert`` checks them, a chunk at a time:
    an import of 500,000 boxes would otherwise hold every one as a dict and as a checked
    object at once. An error names the object by its place among all of its kind."""
    checked: dict[str, list[Any]] = {kind: [] for kind in annotation_body.KINDS}
    with paused_collector():
        for kind, chunk in chunks:
            try:
                converted = annotation_body.convert({kind: chunk})
            except InvalidInput as exc:
                raise _placed(exc, kind, len(checked[kind])) from None
            checked[kind] += converted.objects()[kind]
    return annotation_body.AnnotationsIn(
        tags=checked["tags"], shapes=checked["shapes"], tracks=checked["tracks"]
    )


def _placed(error: InvalidInput, kind: str, offset: int) -> InvalidInput:
    """``error`` about a chunk of ``kind`` that starts at ``offset``, with the paths
    (``shapes.3.points``) counted among all of them."""
    fields = {}
    for path, messages in error.fields.items():
        head, _, rest = path.partition(".")
        index, _, tail = rest.partition(".")
        if head == kind and index.isdigit():
            path = ".".join([kind, str(int(index) + offset), *([tail] if tail else [])])
        fields[path] = messages
    return InvalidInput(fields)


def _add_labels(
    uow: UnitOfWork, actor: Actor, scope: Scope, object_id: int, names: list[str]
) -> list[mapping.LabelInfo]:
    """Add labels named ``names`` to the task (or its project); its labels after."""
    task, _ = resolve_target(uow, actor, scope, object_id)
    if task.project is not None:
        if not access.can_change_project(actor, task.project):
            raise UserFacingError("Only who may change the project may add labels to it.")
        apply_labels(uow, task.project.labels, [LabelIn(name=name) for name in names])
    else:
        if not access.can_change_task(actor, task):
            raise UserFacingError("Only who may change the task may add labels to it.")
        apply_labels(uow, task.own_labels, [LabelIn(name=name) for name in names])
    uow.flush()
    return [
        mapping.LabelInfo(
            label.id, label.name,
            tuple(mapping.SpecInfo(s.id, s.name, s.input_type, s.mutable)
                  for s in label.attributes),
        )
        for label in task.labels
    ]  # fmt: skip


def _import_needs(chosen: Format, source: Path, frames: list[mapping.FrameInfo]) -> dict[str, Any]:
    """What Datumaro's importer of ``chosen`` needs besides the file: the frames as empty
    files where it looks for images (it checks they exist), or their sizes."""
    if chosen.import_needs == "image_info":
        sizes = {}
        for frame in frames:
            sizes[PurePosixPath(frame.name).stem] = (frame.height, frame.width)
            sizes[frame.item_id] = (frame.height, frame.width)
        return {"image_info": sizes}
    if chosen.import_needs == "image_files":
        # Where the file's own folder is: the root, or the one folder the archive holds.
        entries = list(source.iterdir())
        roots = [source] + [e for e in entries if len(entries) == 1 and e.is_dir()]
        for root in roots:
            for frame in frames:
                placeholder = root / "images" / frame.file_name
                placeholder.parent.mkdir(parents=True, exist_ok=True)
                placeholder.touch()
    return {}


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(IMPORT)(run_import)

"""Task backups, as CVAT 1.5+ clients make them: a task with its media, labels, jobs and
annotations in one zip (labelyard's own format: see ``layout``), restored on any
labelyard server into a new task that equals it.

Export: ``GET tasks/{id}?action=export`` starts an operation (202), answers 202 while it
runs and 201 when the file is ready; ``action=download`` sends it. A backup is reused
while the task has not changed and it is younger than the exports' time to live.

Import: ``POST tasks?action=import`` with the file starts an operation (202 with its id,
CVAT's ``rq_id``); the same call with that ``rq_id`` polls it: 202, 201 with the new
task's id, or 400 with the reason a backup that cannot be restored was refused."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from typing import IO, Any

from labelyard.adapters.storage import Storage
from labelyard.domain import Operation
from labelyard.services import access, exchange, operations
from labelyard.services.access import Actor
from labelyard.services.backups import building, layout, restoring
from labelyard.services.errors import InvalidInput, NotFound, PermissionDenied
from labelyard.services.exchange import ExportState
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork

EXPORT = "task.backup.export"
IMPORT = "task.backup.import"


def export(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    task_id: int,
    *,
    ttl: timedelta,
    storage: Storage,
) -> ExportState:
    """The state of the task's newest backup, starting one when none is fresh. Whoever
    may export the task's annotations may back it up: whoever sees the task."""
    task = get_task(uow, actor, task_id)
    exchange.sweep_expired(uow, storage, ttl, kind=EXPORT)
    params = {"task_id": task.id, "stamp": task.updated_date.isoformat()}
    return exchange.fresh_or_started(
        uow, runner, actor, kind=EXPORT, target=f"task:{task.id}", params=params, same=(),
        ttl=ttl, what="backup",
    )  # fmt: skip


def check_can_import(actor: Actor) -> None:
    """Refuse before the file is received: restoring creates a task."""
    if not access.can_create_task(actor):
        raise PermissionDenied()


def check_archive(file: IO[bytes]) -> None:
    """Refuse at once what is no backup at all: a file that is not a zip, or a zip
    without the manifest. What is inside is checked by the restore."""
    try:
        if not zipfile.is_zipfile(file):
            raise InvalidInput.on("task_file", "The file is not a zip archive: not a backup.")
        file.seek(0)
        with zipfile.ZipFile(file) as bundle:
            names = set(bundle.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InvalidInput.on("task_file", f"The zip archive is corrupted ({exc}).") from None
    finally:
        file.seek(0)
    if layout.MANIFEST not in names:
        raise InvalidInput.on(
            "task_file", f"The archive has no {layout.MANIFEST}: it is not a labelyard task backup."
        )


def restore(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    staged: dict[str, Any],
) -> Operation:
    """Start restoring the backup ``staged`` (an uploaded file, in storage) into a new
    task of ``actor``'s."""
    check_can_import(actor)
    uow.start_writing()
    operation = operations.create(
        uow, kind=IMPORT, params={"file": staged}, owner_id=actor.id, target=f"user:{actor.id}"
    )
    uow.commit()
    runner.submit(operation.id)
    return operation


def restore_state(uow: UnitOfWork, actor: Actor, rq_id: str) -> Operation:
    """The actor's restore with this id, to poll (404 for any other)."""
    try:
        operation = operations.get_operation(uow, actor, rq_id)
    except NotFound:
        operation = None
    if operation is None or operation.kind != IMPORT:
        raise NotFound("No backup is being restored with this rq_id.")
    return operation


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(EXPORT)(building.run_export)
    registry.register(IMPORT)(restoring.run_restore)

"""``/projects/{projectID}/work-items``: items, their labels and COCO annotations, their
signals (one, a bulk, the pull queue's ``next``) and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy import select

from labelyard.api.deps import ActorDep, SettingsDep, UowDep
from labelyard.api.errors import STATUS
from labelyard.api.platform_v1.wire import (
    PageQueryDep,
    dialect,
    iso,
    page_json,
    signal_json,
    work_item_json,
)
from labelyard.api.routing import GatedRouter
from labelyard.domain import Outcome, Project, Signal, WorkItem, WorkSignal, WorkStatus
from labelyard.services import access, keyset
from labelyard.services.errors import InvalidInput
from labelyard.services.uow import UnitOfWork
from labelyard.services.workflow import items, labels, signalling
from labelyard.services.workflow.items import MAX_FILTER_IDS, CamelWrite, ItemFilter
from labelyard.services.workflow.projects import canonical_uuid, get_project, member_by_email
from labelyard.services.workflow.signals import SENT_SIGNALS, SignalRequest

router = GatedRouter(prefix="/projects/{project_id}/work-items", tags=["work: items"])


def _labels_of(uow: UnitOfWork, project: Project, item: WorkItem) -> list[dict[str, Any]]:
    return labels.read(uow, project, item)


@router.post("", status_code=201)
def create_work_item(
    request: Request,
    project_id: str,
    body: items.WorkItemCreate,
    actor: ActorDep,
    uow: UowDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """A work item on an asset (``assetId``, or ``assetUrl`` as an upload URL's path),
    in ``batchId`` or the Default batch, at the first stage of the project's workflow.
    ``labels`` given here are its first labels."""
    project = get_project(uow.session, actor, project_id)
    item = items.create(uow.session, request.app.state.storage, actor, project, body)
    if body.labels:
        given = labels.parse(body.labels)
        uow.flush()
        labels.write(
            uow, actor, project, item, given, manages=True, lease_seconds=settings.lease_seconds
        )
    else:
        uow.commit()
    return work_item_json(item, project, _labels_of(uow, project, item))


def _ids(values: list[str], name: str) -> list[str]:
    found = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if len(found) > MAX_FILTER_IDS:
        raise InvalidInput.on(name, f"Up to {MAX_FILTER_IDS}.")
    return found


def item_filter(
    work_item_ids: Annotated[list[str], Query(alias="workItemIDs")] = [],  # noqa: B006
    batch_ids: Annotated[list[str], Query(alias="batchIds")] = [],  # noqa: B006
    status: WorkStatus | None = None,
    created_from: Annotated[datetime | None, Query(alias="createdAtFrom")] = None,
    created_to: Annotated[datetime | None, Query(alias="createdAtTo")] = None,
    updated_from: Annotated[datetime | None, Query(alias="updatedAtFrom")] = None,
    updated_to: Annotated[datetime | None, Query(alias="updatedAtTo")] = None,
) -> ItemFilter:
    uuids = []
    for text in _ids(work_item_ids, "workItemIDs"):
        key = canonical_uuid(text)
        if key is None:
            raise InvalidInput.on("workItemIDs", f'"{text}" is not a UUID.')
        uuids.append(key)
    numbers = []
    for text in _ids(batch_ids, "batchIds"):
        if not (text.isascii() and text.isdigit() and len(text) < 10):
            raise InvalidInput.on("batchIds", f'"{text}" is not a batch id.')
        numbers.append(int(text))
    for name, moment in (
        ("createdAtFrom", created_from),
        ("createdAtTo", created_to),
        ("updatedAtFrom", updated_from),
        ("updatedAtTo", updated_to),
    ):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput.on(name, "Give a time zone (Z for UTC).")
    return ItemFilter(
        work_item_ids=uuids,
        batch_ids=numbers,
        status=status,
        created_from=created_from,
        created_to=created_to,
        updated_from=updated_from,
        updated_to=updated_to,
    )


@router.get("")
def list_work_items(
    project_id: str,
    actor: ActorDep,
    uow: UowDep,
    paging: PageQueryDep,
    filters: Annotated[ItemFilter, Depends(item_filter)],
) -> dict[str, Any]:
    """A keyset page of the items the caller may see, oldest first, with their labels."""
    project = get_project(uow.session, actor, project_id)
    result = keyset.page(
        uow.session,
        items.listing(actor, project, filters),
        WorkItem.id,
        codec=paging.codec,
        scope=f"work-items:{project.uuid}",
        limit=paging.limit,
        cursor=paging.cursor,
        direction=paging.direction,
    )
    return page_json(
        result,
        "workItem",
        lambda item: work_item_json(item, project, _labels_of(uow, project, item)),
    )


@router.get("/{work_item_id}")
def read_work_item(
    project_id: str, work_item_id: str, actor: ActorDep, uow: UowDep
) -> dict[str, Any]:
    project = get_project(uow.session, actor, project_id)
    item = items.get(uow.session, actor, project, work_item_id)
    return work_item_json(item, project, _labels_of(uow, project, item))


class LabelsBody(CamelWrite):
    labels: list[dict[str, Any]] = Field(max_length=labels.MAX_LABELS)


@router.put("/{work_item_id}/labels")
def write_labels(
    project_id: str,
    work_item_id: str,
    body: LabelsBody,
    actor: ActorDep,
    uow: UowDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Replace the item's labels. They are annotations of its frame in the job that holds
    it, checked like any annotation write; the holder's write renews their lease."""
    project = get_project(uow.session, actor, project_id)
    item = items.get(uow.session, actor, project, work_item_id, for_update=True)
    written = labels.write(
        uow,
        actor,
        project,
        item,
        labels.parse(body.labels),
        manages=access.manages_work(actor, project),
        lease_seconds=settings.lease_seconds,
    )
    return {**work_item_json(item, project, written.labels), "annotationVersion": written.version}


@router.get("/{work_item_id}/annotations")
def read_annotations(
    project_id: str,
    work_item_id: str,
    actor: ActorDep,
    uow: UowDep,
    format: str = "coco",
) -> dict[str, Any]:
    """The item's annotations: ``inference`` is a COCO document of its frame."""
    if format.lower() != "coco":
        raise InvalidInput.on("format", 'The only format is "coco".')
    project = get_project(uow.session, actor, project_id)
    item = items.get(uow.session, actor, project, work_item_id)
    return {
        "id": item.uuid,
        "projectID": project.uuid,
        "workItemID": item.uuid,
        "inference": labels.coco(uow, project, item),
        "groundTruthReviewer": "REVIEW" if item.reviewer_id is not None else None,
        "createdAt": iso(item.created_date),
        "updatedAt": iso(item.updated_date),
        "metadata": item.meta,
    }


class SignalBody(CamelWrite):
    signal: Signal
    task_type: str = Field(min_length=1, max_length=32)
    assignee: str | None = Field(default=None, max_length=254)
    signal_outcome: Outcome | None = None
    feedback: dict[str, list[str]] | None = None


def _request(
    uow: UnitOfWork,
    project: Project,
    signal: Signal,
    task_type: str | None,
    outcome: Outcome | None,
    assignee: str | None,
    comments: list[str],
) -> SignalRequest:
    if signal not in SENT_SIGNALS:
        raise InvalidInput.on("signal", "One of start, release, complete, cancel, reopen.")
    assignee_id = None
    if assignee:
        assignee_id = member_by_email(uow.session, project.space_id, assignee, "assignee").id
    return SignalRequest(signal, task_type, outcome, tuple(comments), assignee_id)


class Feedback(CamelWrite):
    comments: list[str] = Field(default_factory=list, max_length=100)


class BulkItem(CamelWrite):
    work_item_id: str = Field(alias="workItemID", max_length=64)
    feedback: Feedback | None = None


class BulkSignalBody(CamelWrite):
    signal: Signal
    work_items: list[BulkItem] = Field(min_length=1, max_length=signalling.MAX_BULK)
    task_type: str | None = Field(default=None, min_length=1, max_length=32)
    signal_outcome: Outcome | None = None
    assignee: str | None = Field(default=None, max_length=254)


@router.post("/signals")
def send_bulk_signal(
    project_id: str, bulk: BulkSignalBody, actor: ActorDep, uow: UowDep, settings: SettingsDep
) -> dict[str, Any]:
    """The same signal to 1..100 items, each applied on its own: ``items`` answers each
    one, with its history entry's ``id`` or the ``error`` that refused it."""
    project = get_project(uow.session, actor, project_id)
    request = _request(
        uow, project, bulk.signal, bulk.task_type, bulk.signal_outcome, bulk.assignee, []
    )
    targets = [
        (entry.work_item_id, tuple((entry.feedback or Feedback()).comments))
        for entry in bulk.work_items
    ]
    results = signalling.send_bulk(
        uow.session, actor, project, targets, request, lease_seconds=settings.lease_seconds
    )
    uow.commit()
    answered = []
    for result in results:
        comments = dict(targets).get(result.work_item_id, ())
        entry: dict[str, Any] = {
            "projectID": project.uuid,
            "workItemID": result.work_item_id,
            "feedback": {"comments": list(comments)},
        }
        error = result.error
        if result.entry is not None or error is None:
            status = result.entry.status if result.entry else None
            entry.update(id=result.entry and result.entry.id, result="OK", status=status)
        else:
            code = next((c for kind, c in STATUS.items() if isinstance(error, kind)), 400)
            entry.update(id=None, result="ERROR", error={"status": code, "detail": error.detail})
        answered.append(entry)
    return {"items": answered}


@router.post("/next", responses={204: {"description": "Nothing to claim"}})
def claim_next(
    project_id: str,
    actor: ActorDep,
    uow: UowDep,
    settings: SettingsDep,
    task_type: Annotated[str | None, Query(alias="taskType", max_length=32)] = None,
) -> Any:
    """The pull queue: the most urgent item the caller may take in stage ``taskType``
    (due soonest, then hardest, then oldest), claimed for ``LABELYARD_LEASE_SECONDS``;
    204 when there is none."""
    project = get_project(uow.session, actor, project_id)
    item = signalling.claim_next(
        uow.session,
        actor,
        project,
        task_type,
        lease_seconds=settings.lease_seconds,
        skip_locked=dialect(uow.session) == "postgresql",
    )
    uow.commit()
    if item is None:
        return Response(status_code=204)
    return work_item_json(item, project, _labels_of(uow, project, item))


@router.post("/{work_item_id}/signals")
def send_signal(
    project_id: str,
    work_item_id: str,
    body: SignalBody,
    actor: ActorDep,
    uow: UowDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """``start`` claims (or renews the claim), ``release`` gives it back, ``complete``
    moves it on (in a review stage ``signalOutcome`` OK moves it on, NOT_OK sends it
    back to its labeller), ``cancel`` fails it, ``reopen`` brings it back."""
    project = get_project(uow.session, actor, project_id)
    comments = (body.feedback or {}).get("comments", [])
    request = _request(
        uow, project, body.signal, body.task_type, body.signal_outcome, body.assignee, comments
    )
    item, entry = signalling.send(
        uow.session, actor, project, work_item_id, request, lease_seconds=settings.lease_seconds
    )
    uow.commit()
    return {**work_item_json(item, project), "signal": signal_json(entry, project, item)}


@router.get("/{work_item_id}/signals")
def read_history(
    project_id: str, work_item_id: str, actor: ActorDep, uow: UowDep
) -> dict[str, Any]:
    """The item's history, oldest first: every signal, who sent it and what it led to."""
    project = get_project(uow.session, actor, project_id)
    item = items.get(uow.session, actor, project, work_item_id)
    return {"items": [signal_json(entry, project, item) for entry in history(uow, item)]}


def history(uow: UnitOfWork, item: WorkItem) -> list[WorkSignal]:
    return list(
        uow.session.scalars(
            select(WorkSignal).where(WorkSignal.work_item_id == item.id).order_by(WorkSignal.id)
        )
    )

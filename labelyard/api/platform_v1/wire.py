"""The work face's JSON: camelCase objects, UUIDs, ISO 8601 UTC times, keyset pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, object_session

from labelyard.domain import Dataset, Project, Space, User, WorkBatch, WorkItem, WorkSignal, utcnow
from labelyard.services.keyset import DEFAULT_LIMIT, MAX_LIMIT, CursorCodec, Direction, KeysetPage


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def space_json(space: Space) -> dict[str, Any]:
    return {
        "id": space.uuid,
        "name": space.name,
        "companyID": space.company_uuid,
        "createdAt": iso(space.created_date),
        "default": space.is_default,
    }


def project_json(project: Project, space: Space) -> dict[str, Any]:
    return {
        "id": project.uuid,
        "name": project.name,
        "description": project.description,
        "createdAt": iso(project.created_date),
        "spaceID": space.uuid,
        "dataType": project.data_type,
        "companyID": space.company_uuid,
        # The same project on /api/v1.
        "legacyId": project.id,
    }


def batch_json(
    batch: WorkBatch, project: Project, counts: tuple[int, int] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": batch.id,
        "projectId": project.uuid,
        "name": batch.name,
        "createdBy": batch.created_by.uuid if batch.created_by is not None else None,
        "createdAt": iso(batch.created_date),
        "metadata": batch.meta,
    }
    if counts is not None:
        data["totalCount"], data["completedCount"] = counts
    return data


def user_email(user: User | None) -> str | None:
    if user is None:
        return None
    return user.email or user.username


def work_item_json(
    item: WorkItem, project: Project, labels: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item.uuid,
        "projectID": project.uuid,
        "status": item.status,
        "kind": item.kind,
        "taskType": item.task_type,
        "stage": item.stage_index,
        "workflowVersion": item.workflow.version,
        "assetUrl": item.asset_url,
        "assetId": item.asset_id,
        "assetType": item.asset_type,
        "batchId": item.batch_id,
        "resultsUrl": item.results_url,
        "taxonomyVersionId": item.taxonomy_version_id,
        "metadata": item.meta,
        "dueInSeconds": item.due_in_seconds,
        "dueAt": iso(item.due_at),
        "delayed": item.is_delayed(utcnow()),
        "difficulty": item.difficulty,
        "assignee": _email(item, item.assignee_id),
        "leasedUntil": iso(item.leased_until),
        "feedback": {"comments": item.feedback},
        "taskId": item.task_id,
        "frame": item.frame,
        "createdAt": iso(item.created_date),
        "updatedAt": iso(item.updated_date),
    }
    if labels is not None:
        data["labels"] = labels
    return data


_EMAIL = select(User.email, User.username).where(User.id == bindparam("user_id"))


def _email(item: WorkItem, user_id: int | None) -> str | None:
    # By id, not through the relationship, which still holds the user it was loaded with
    # when a signal changed the id in this session; one column, not the user and their
    # groups, remembered for the rest of the request (a page names the same few people).
    session = object_session(item)
    if user_id is None or session is None:
        return None
    known: dict[int, str | None] = session.info.setdefault("work_face_emails", {})
    if user_id not in known:
        row = session.connection().execute(_EMAIL, {"user_id": user_id}).first()
        known[user_id] = (row.email or row.username) if row is not None else None
    return known[user_id]


def signal_json(entry: WorkSignal, project: Project, item: WorkItem) -> dict[str, Any]:
    return {
        "id": entry.id,
        "projectID": project.uuid,
        "workItemID": item.uuid,
        "signal": entry.signal,
        "taskType": entry.task_type,
        "signalOutcome": entry.outcome,
        "status": entry.status,
        "feedback": {"comments": entry.comments},
        "note": entry.note,
        "createdAt": iso(entry.created_date),
    }


def dataset_ref(dataset: Dataset | None) -> str | None:
    return dataset.uuid if dataset is not None else None


# --- keyset pages ---------------------------------------------------------------------


class PageQuery:
    def __init__(
        self,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
        page: Direction = Direction.NEXT,
    ) -> None:
        self.limit = limit
        self.cursor = cursor or None
        self.direction = page
        self.codec: CursorCodec = request.app.state.cursors


PageQueryDep = Annotated[PageQuery, Depends()]


def page_json(
    result: KeysetPage, kind: str, shape: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    return {
        "items": [shape(row) for row in result.rows],
        "meta": {
            "object": kind,
            "limit": result.limit,
            "page": result.direction.value,
            "cursor_next": result.cursor_next,
            "cursor_prev": result.cursor_prev,
        },
    }


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name

"""Client events and exceptions the browser client reports (``/server/logs``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import AwareDatetime, Field
from sqlalchemy import Select, select

from labelyard.domain import ClientEvent
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.fields import Count, Id, JsonObject, WriteModel
from labelyard.services.listing import order_by
from labelyard.services.uow import UnitOfWork

MAX_EVENTS_PER_REQUEST = 10_000


class EventIn(WriteModel):
    name: str = Field(min_length=1, max_length=64)
    time: AwareDatetime
    client_id: int | str = ""
    job_id: Id | None = None
    task_id: Id | None = None
    proj_id: Id | None = None
    is_active: bool | None = None
    message: str = Field(default="", max_length=4096)
    payload: JsonObject = Field(default_factory=dict)


class ExceptionIn(WriteModel):
    system: str = Field(default="", max_length=255)
    client: str = Field(default="", max_length=255)
    time: AwareDatetime
    client_id: int | str = ""
    job_id: Id | None = None
    task_id: Id | None = None
    proj_id: Id | None = None
    message: str = Field(default="", max_length=4096)
    filename: str = Field(default="", max_length=4096)
    line: Count | None = None
    column: Count | None = None
    stack: str = Field(default="", max_length=8192)


def record_events(uow: UnitOfWork, actor: Actor, events: list[EventIn]) -> list[ClientEvent]:
    rows = [
        ClientEvent(
            kind="log",
            user_id=actor.id,
            name=event.name,
            time=event.time,
            client_id=str(event.client_id)[:64],
            job_id=event.job_id,
            task_id=event.task_id,
            project_id=event.proj_id,
            is_active=event.is_active,
            message=event.message,
            payload=event.payload,
        )
        for event in events
    ]
    uow.session.add_all(rows)
    uow.commit()
    return rows


def record_exception(uow: UnitOfWork, actor: Actor, report: ExceptionIn) -> ClientEvent:
    details = report.model_dump(include={"system", "client", "filename", "line", "column", "stack"})
    row = ClientEvent(
        kind="exception",
        user_id=actor.id,
        name="Send exception",
        time=report.time,
        client_id=str(report.client_id)[:64],
        job_id=report.job_id,
        task_id=report.task_id,
        project_id=report.proj_id,
        message=report.message,
        payload=details,
    )
    uow.session.add(row)
    uow.commit()
    return row


@dataclass
class EventFilter:
    kind: str | None = None
    name: str | None = None
    job_id: int | None = None
    task_id: int | None = None
    user_id: int | None = None
    ordering: str | None = None


def list_events(actor: Actor, filters: EventFilter) -> Select[Any]:
    stmt = select(ClientEvent)
    if not access.can_read_all_client_events(actor):
        stmt = stmt.where(ClientEvent.user_id == actor.id)
    exact = {
        ClientEvent.kind: filters.kind,
        ClientEvent.name: filters.name,
        ClientEvent.job_id: filters.job_id,
        ClientEvent.task_id: filters.task_id,
        ClientEvent.user_id: filters.user_id,
    }
    for column, value in exact.items():
        if value is not None:
            stmt = stmt.where(column == value)
    columns = {"id": ClientEvent.id, "time": ClientEvent.time, "name": ClientEvent.name}
    return order_by(stmt, filters.ordering, columns, default="id")

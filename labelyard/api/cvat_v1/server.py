"""``/server``: about, plugins, formats, client logs and exceptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Depends, Request
from pydantic import BaseModel

from labelyard import __version__
from labelyard.api.cvat_v1.schemas import ClientEventOut
from labelyard.api.deps import ActorDep, IdQuery, UowDep
from labelyard.api.pagination import Page, PageDep, paginate
from labelyard.api.routing import GatedRouter
from labelyard.formats import registry
from labelyard.services import client_events

router = GatedRouter(prefix="/server", tags=["server"])


class AboutOut(BaseModel):
    name: str
    description: str
    version: str


class FormatOut(BaseModel):
    name: str
    ext: str
    version: str
    enabled: bool
    dimension: str


class FormatsOut(BaseModel):
    importers: list[FormatOut]
    exporters: list[FormatOut]


@router.get("/about", response_model=AboutOut)
def about() -> AboutOut:
    return AboutOut(
        name="labelyard",
        description="A self-hostable data-annotation platform server with a CVAT-compatible API.",
        version=__version__,
    )


@router.get("/plugins")
def plugins(_: ActorDep) -> dict[str, bool]:
    """The optional parts CVAT's client asks about: git integration is built in
    (``/git/repository``)."""
    return {"GIT_INTEGRATION": True, "ANALYTICS": False, "MODELS": False}


@router.get("/annotation/formats", response_model=FormatsOut)
def annotation_formats(_: ActorDep) -> FormatsOut:
    """The formats annotations import from and export to; ``enabled: false`` where a
    format needs something this server lacks."""
    return FormatsOut.model_validate(registry.describe_all())


@router.post("/logs", status_code=201, response_model=list[ClientEventOut])
def save_logs(
    events: Annotated[
        list[client_events.EventIn], Body(max_length=client_events.MAX_EVENTS_PER_REQUEST)
    ],
    actor: ActorDep,
    uow: UowDep,
) -> list[ClientEventOut]:
    """Store the client's events (a JSON list, as CVAT's client sends them)."""
    rows = client_events.record_events(uow, actor, events)
    return [ClientEventOut.of(row) for row in rows]


def event_filter(
    kind: str | None = None,
    name: str | None = None,
    job_id: IdQuery = None,
    task_id: IdQuery = None,
    user_id: IdQuery = None,
    ordering: str | None = None,
) -> client_events.EventFilter:
    return client_events.EventFilter(kind, name, job_id, task_id, user_id, ordering)


@router.get("/logs", response_model=Page[ClientEventOut])
def read_logs(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    filters: Annotated[client_events.EventFilter, Depends(event_filter)],
) -> Page[ClientEventOut]:
    """Stored client events and exceptions: all of them for admins, one's own otherwise."""
    stmt = client_events.list_events(actor, filters)
    return paginate(uow.session, stmt, page, request, ClientEventOut.of)


@router.post("/exception", status_code=201, response_model=ClientEventOut)
def save_exception(
    report: client_events.ExceptionIn, actor: ActorDep, uow: UowDep
) -> ClientEventOut:
    return ClientEventOut.of(client_events.record_exception(uow, actor, report))

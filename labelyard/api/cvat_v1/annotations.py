"""``/jobs/{id}/annotations``: CVAT's annotation model, versioned."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from labelyard.api.collector import pause_collector
from labelyard.api.deps import ActorDep, UowDep
from labelyard.services import annotations as job_annotations
from labelyard.services import task_annotations
from labelyard.services.annotations import Annotations, AnnotationsIn
from labelyard.services.errors import InvalidInput

# Annotation bodies and answers can hold 100,000s of objects: see labelyard.api.collector.
router = APIRouter(tags=["annotations"], dependencies=[Depends(pause_collector)])
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=64)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
SCHEMA_REF = "#/components/schemas/{name}"
BODY_SCHEMA, BODY_COMPONENTS = job_annotations.body_schemas(SCHEMA_REF)
# The body is read and decoded by the service's own decoder, not by FastAPI: this is
# what the OpenAPI document says of it.
DOCUMENTED_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": BODY_SCHEMA}}}
}


async def _raw_body(request: Request) -> bytes:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise InvalidInput.on(
            "non_field_errors", "Expected a JSON object sent with Content-Type: application/json."
        )
    return await request.body()


def _decoded_body(raw: Annotated[bytes, Depends(_raw_body)]) -> AnnotationsIn:
    # A sync dependency: decoding a large body runs in the thread pool, before the unit
    # of work (listed after it) takes the database's write lock.
    return job_annotations.decode(raw)


Body = Annotated[AnnotationsIn, Depends(_decoded_body)]


def _json(annotations: Annotations) -> Response:
    return Response(annotations.to_json(), media_type="application/json")


@router.get("/jobs/{job_id:int}/annotations")
def read_annotations(job_id: int, actor: ActorDep, uow: UowDep) -> Response:
    """The job's tags, shapes and tracks, and their ``version``."""
    return _json(job_annotations.read(uow, actor, job_id))


@router.put("/jobs/{job_id:int}/annotations", openapi_extra=DOCUMENTED_BODY)
def replace_annotations(
    job_id: int,
    body: Body,
    actor: ActorDep,
    uow: UowDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Replace all of the job's annotations. Send the ``version`` you read (in the body or
    as ``If-Match``) to be refused with 409 instead of overwriting someone's newer work."""
    return _json(
        job_annotations.write(
            uow,
            actor,
            job_id,
            body,
            action=None,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )
    )


@router.patch("/jobs/{job_id:int}/annotations", openapi_extra=DOCUMENTED_BODY)
def change_annotations(
    job_id: int,
    body: Body,
    actor: ActorDep,
    uow: UowDep,
    action: Annotated[job_annotations.Action, Query()],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """``action=create`` adds the objects (ids are assigned), ``update`` replaces objects
    by id, ``delete`` removes them by id. Every write increments ``version``."""
    return _json(
        job_annotations.write(
            uow,
            actor,
            job_id,
            body,
            action=action,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )
    )


@router.delete("/jobs/{job_id:int}/annotations", status_code=204)
def delete_annotations(
    job_id: int, actor: ActorDep, uow: UowDep, if_match: IfMatch = None
) -> Response:
    job_annotations.clear(uow, actor, job_id, if_match)
    return Response(status_code=204)


@router.get("/tasks/{task_id:int}/annotations")
def read_task_annotations(task_id: int, actor: ActorDep, uow: UowDep) -> Response:
    """All jobs' annotations together (objects that overlapping jobs both hold, once)."""
    return _json(task_annotations.read(uow, actor, task_id))


@router.put("/tasks/{task_id:int}/annotations", openapi_extra=DOCUMENTED_BODY)
def replace_task_annotations(
    task_id: int,
    body: Body,
    actor: ActorDep,
    uow: UowDep,
    if_match: IfMatch = None,
) -> Response:
    """Replace the task's annotations: objects go to the jobs whose frames hold them."""
    return _json(task_annotations.write(uow, actor, task_id, body, action=None, if_match=if_match))


@router.patch("/tasks/{task_id:int}/annotations", openapi_extra=DOCUMENTED_BODY)
def change_task_annotations(
    task_id: int,
    body: Body,
    actor: ActorDep,
    uow: UowDep,
    action: Annotated[job_annotations.Action, Query()],
    if_match: IfMatch = None,
) -> Response:
    return _json(
        task_annotations.write(uow, actor, task_id, body, action=action, if_match=if_match)
    )


@router.delete("/tasks/{task_id:int}/annotations", status_code=204)
def delete_task_annotations(
    task_id: int, actor: ActorDep, uow: UowDep, if_match: IfMatch = None
) -> Response:
    task_annotations.clear(uow, actor, task_id, if_match)
    return Response(status_code=204)

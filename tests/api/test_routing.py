"""Gated routers: a face and its parts skip requests outside their prefixes, and every
route they hold is still reached, whatever order they were included in."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from labelyard.api.routing import FaceRouter, GatedRouter, _gate


def test_a_gate_matches_paths_under_its_prefix_with_parameters_as_one_segment():
    gate = _gate("/api/platform/v1/projects/{project_id}/work-items")
    assert gate.match("/api/platform/v1/projects/3f2a/work-items/next")
    assert not gate.match("/api/platform/v1/projects/3f2a/batches")
    assert not gate.match("/api/platform/v1/projects//work-items")
    assert not gate.match("/api/v1/projects/3/work-items")
    assert _gate("/a.b").match("/a.b/c") and not _gate("/a.b").match("/axb/c")


def _app() -> FastAPI:
    deep = GatedRouter(prefix="/items/{item_id}")

    @deep.get("/labels")
    def labels(item_id: str) -> dict[str, str]:
        return {"route": "labels", "item": item_id}

    part = GatedRouter(prefix="/projects/{project_id}")
    part.include_router(deep)  # before part knows where it is mounted

    @part.get("")
    def project(project_id: str) -> dict[str, str]:
        return {"route": "project", "project": project_id}

    face = FaceRouter(prefix="/api/face")
    face.include_router(part)

    @face.get("/other")
    def other() -> dict[str, str]:
        return {"route": "other"}

    app = FastAPI()
    app.include_router(face)

    @app.get("/api/face/projects/{project_id}/items/{item_id}/fallback")
    def fallback(project_id: str, item_id: str) -> dict[str, str]:
        return {"route": "fallback"}

    return app


def test_every_route_of_a_gated_face_is_reached_and_others_fall_through():
    client = TestClient(_app())
    assert client.get("/api/face/projects/p1/items/i1/labels").json() == {
        "route": "labels",
        "item": "i1",
    }
    assert client.get("/api/face/projects/p1").json() == {"route": "project", "project": "p1"}
    assert client.get("/api/face/other").json() == {"route": "other"}
    # Inside the gates' prefixes but none of their routes: the app's own route answers.
    assert client.get("/api/face/projects/p1/items/i1/fallback").json() == {"route": "fallback"}
    assert client.get("/api/elsewhere").status_code == 404


def test_the_mounted_path_reaches_parts_included_before_and_after():
    early, late = GatedRouter(prefix="/early"), GatedRouter(prefix="/late")
    middle = GatedRouter(prefix="/m/{id}")
    middle.include_router(early)
    face = FaceRouter(prefix="/f")
    face.include_router(middle, prefix="/x")
    middle.include_router(late)
    assert early._path == "/f/x/m/{id}/early"
    assert late._path == "/f/x/m/{id}/late"

"""Seed 000's exports (a dataset's download, a completed task's results written to an
export address: a local directory, S3 on moto's server, an HTTP PUT URL) and seed 001's
publish (a task's annotations as its dataset's next version)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from labelyard.config import Settings
from labelyard.domain import Operation
from tests.support.media import jpeg

API = "/api/v1"
SIZE = (64, 48)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        operation_modules=["tests.support.operations"],
        export_roots=[tmp_path / "exports"],
        allow_private_urls=True,
    )


def _until_done(client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in ("finished", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


@pytest.fixture
def yard(client, factory):
    """A task made from three uploaded images (so a dataset of its own), with a box on
    frame 0, a polygon on frame 1 and nothing on frame 2."""
    owner = factory.user("owner", groups=["business"])
    headers = factory.headers(owner)
    task = client.post(
        f"{API}/tasks", headers=headers,
        json={"name": "t", "labels": [{"name": "car"}, {"name": "person"}]},
    ).json()  # fmt: skip
    files = [(f"client_files[{i}]", (f"img_{i}.jpg", jpeg(*SIZE, shade=i * 40))) for i in range(3)]
    posted = client.post(f"{API}/tasks/{task['id']}/data", headers=headers, files=files)
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 30
    while client.get(f"{API}/tasks/{task['id']}/status", headers=headers).json()["state"] not in (
        "Finished",
        "Failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    labels = {label["name"]: label["id"] for label in task["labels"]}
    body = {
        "tags": [],
        "shapes": [
            {"type": "rectangle", "frame": 0, "label_id": labels["car"], "points": [2, 3, 20, 30]},
            {"type": "polygon", "frame": 1, "label_id": labels["person"],
             "points": [5, 5, 30, 5, 30, 25]},
        ],
        "tracks": [],
    }  # fmt: skip
    saved = client.put(f"{API}/tasks/{task['id']}/annotations", headers=headers, json=body)
    assert saved.status_code == 200, saved.text
    detail = client.get(f"{API}/tasks/{task['id']}", headers=headers).json()
    return {"headers": headers, "task": task["id"], "dataset": detail["dataset_id"]}


def _complete(client, yard) -> None:
    for state in ("in_progress", "completed"):
        response = client.patch(
            f"{API}/tasks/{yard['task']}", headers=yard["headers"], json={"state": state}
        )
        assert response.status_code == 200, response.text


def _export(client, yard, address: Any, **extra: Any) -> dict[str, Any]:
    body = {"task_id": yard["task"], "format": "COCO 1.0", "address": address, **extra}
    started = client.post(f"{API}/exports", headers=yard["headers"], json=body)
    assert started.status_code == 202, started.text
    return _until_done(client, f"{API}/exports/{started.json()['export_id']}", yard["headers"])


def _coco_counts(archive: bytes) -> tuple[int, int]:
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        coco = json.loads(bundle.read("annotations/instances_default.json"))
    return len(coco["images"]), len(coco["annotations"])


# --- task results to an export address ------------------------------------------------


def test_a_task_not_completed_does_not_export_its_results(client, yard, tmp_path):
    address = {"kind": "local", "path": str(tmp_path / "exports" / "team")}
    body = {"task_id": yard["task"], "format": "COCO 1.0", "address": address}
    response = client.post(f"{API}/exports", headers=yard["headers"], json=body)
    assert response.status_code == 409
    assert "completed" in response.json()["detail"]
    assert not (tmp_path / "exports" / "team").exists()


def test_results_go_to_a_directory_under_the_export_roots(client, yard, tmp_path):
    _complete(client, yard)
    done = _export(client, yard, f"file://{tmp_path}/exports/team")
    assert done["status"] == "finished", done
    assert done["progress"] == 1.0 and done["errors"] == []
    written = Path(done["location"])
    assert written.parent == (tmp_path / "exports" / "team").resolve()
    assert _coco_counts(written.read_bytes()) == (3, 2)
    assert done["size"] == written.stat().st_size
    # Only the finished file is there: the partial one was renamed into place.
    assert [p.name for p in written.parent.iterdir()] == [written.name]


@pytest.mark.parametrize(
    "address",
    [
        {"kind": "local", "path": "/etc"},
        {"kind": "local", "path": "EXPORTS/../outside"},
        {"kind": "local", "path": "relative/dir"},
        {"kind": "ftp", "path": "/x"},
        {"kind": "s3", "bucket": "no"},
        {"kind": "s3", "bucket": "fine-bucket", "access_key_id": "only-half"},
        {"kind": "s3", "bucket": "fine-bucket", "prefix": "a/../b"},
        {"kind": "http", "url": "gopher://example.com/x"},
        {"kind": "local", "path": "EXPORTS/x", "extra": 1},
        {"kind": "local", "path": 5},
        "ftp://example.com/x",
        ["not", "an", "address"],
    ],
)
def test_unusable_addresses_are_refused_up_front(client, yard, tmp_path, address):
    _complete(client, yard)
    if isinstance(address, dict) and isinstance(address.get("path"), str):
        address = dict(address, path=address["path"].replace("EXPORTS", str(tmp_path / "exports")))
    body = {"task_id": yard["task"], "format": "COCO 1.0", "address": address}
    response = client.post(f"{API}/exports", headers=yard["headers"], json=body)
    assert response.status_code == 400, response.text
    assert "address" in response.text


def test_local_addresses_are_off_without_export_roots(client, yard, app, tmp_path):
    _complete(client, yard)
    app.state.settings.export_roots = []
    body = {"task_id": yard["task"], "format": "COCO 1.0", "address": str(tmp_path)}
    response = client.post(f"{API}/exports", headers=yard["headers"], json=body)
    assert response.status_code == 400
    assert "LABELYARD_EXPORT_ROOTS" in response.text


def test_other_errors_of_the_request(client, yard, factory, tmp_path):
    address = f"file://{tmp_path}/exports"
    headers = yard["headers"]
    unknown = client.post(
        f"{API}/exports",
        headers=headers,
        json={"task_id": 999999, "format": "COCO 1.0", "address": address},
    )
    assert unknown.status_code == 404
    bad_format = client.post(
        f"{API}/exports",
        headers=headers,
        json={"task_id": yard["task"], "format": "Nope 9", "address": address},
    )
    assert bad_format.status_code == 400
    stranger = factory.headers(factory.user("stranger"))
    hidden = client.post(
        f"{API}/exports",
        headers=stranger,
        json={"task_id": yard["task"], "format": "COCO 1.0", "address": address},
    )
    assert hidden.status_code == 404
    assert client.get(f"{API}/exports/not-an-id", headers=headers).status_code == 404
    malformed = client.post(f"{API}/exports", headers=headers, content=b"{",
                            params={}, )  # fmt: skip
    assert malformed.status_code in (400, 422) and "detail" in malformed.json()


@pytest.fixture
def bucket(s3_endpoint) -> dict[str, str]:
    name = f"results-{time.monotonic_ns()}"
    boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    ).create_bucket(Bucket=name)  # fmt: skip
    return {"kind": "s3", "bucket": name, "prefix": "labelyard/run", "endpoint_url": s3_endpoint,
            "access_key_id": "testing", "secret_access_key": "testing"}  # fmt: skip


def test_results_go_to_an_s3_bucket_and_its_credentials_are_not_kept(
    client, yard, bucket, session_factory
):
    _complete(client, yard)
    done = _export(client, yard, bucket)
    assert done["status"] == "finished", done
    key = f"labelyard/run/task_{yard['task']}-annotations-coco_1.0.zip"
    assert done["location"] == f"s3://{bucket['bucket']}/{key}"
    assert "secret_access_key" not in done["address"]
    s3 = boto3.client(
        "s3", endpoint_url=bucket["endpoint_url"], region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    stored = s3.get_object(Bucket=bucket["bucket"], Key=key)["Body"].read()
    assert _coco_counts(stored) == (3, 2)
    # The secret is gone from the operation's record once the export ended.
    with session_factory() as session:
        kept = session.get(Operation, done["export_id"]).params["address"]
    assert kept["access_key_id"] == "testing" and "secret_access_key" not in kept


def test_a_missing_bucket_fails_the_export_with_the_reason(client, yard, bucket):
    _complete(client, yard)
    done = _export(client, yard, dict(bucket, bucket="no-such-bucket"))
    assert done["status"] == "failed"
    assert "s3://no-such-bucket/labelyard/run/" in done["errors"][0]["message"]
    assert "bucket" in done["errors"][0]["message"].lower()


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes, str]]
    answer = 200

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        type(self).received.append((self.path, body, self.headers["Content-Type"]))
        self.send_response(type(self).answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "answer": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_results_are_put_to_a_presigned_url(client, yard, receiver):
    _complete(client, yard)
    base, handler = receiver
    done = _export(client, yard, {"kind": "http", "url": f"{base}/upload/a.zip?sig=SECRET"})
    assert done["status"] == "finished", done
    assert done["location"] == f"{base}/upload/a.zip"
    assert "SECRET" not in json.dumps(done)
    [(path, body, content_type)] = handler.received
    assert path == "/upload/a.zip?sig=SECRET"
    assert content_type == "application/zip"
    assert _coco_counts(body) == (3, 2)


def test_an_address_that_refuses_the_file_fails_the_export(client, yard, receiver):
    _complete(client, yard)
    base, handler = receiver
    handler.answer = 403
    done = _export(client, yard, f"{base}/upload")
    assert done["status"] == "failed"
    assert "answered 403" in done["errors"][0]["message"]


def test_an_unreachable_address_fails_the_export(client, yard):
    _complete(client, yard)
    with httpx.Client() as probe, pytest.raises(httpx.TransportError):
        probe.put("http://127.0.0.1:9/x", content=b"")  # the discard port: nobody listens
    done = _export(client, yard, "http://127.0.0.1:9/upload")
    assert done["status"] == "failed"
    assert done["errors"][0]["message"].startswith("Could not write to http://127.0.0.1:9/upload")


def test_private_addresses_are_refused_unless_allowed(client, yard, app):
    _complete(client, yard)
    app.state.settings.allow_private_urls = False
    body = {"task_id": yard["task"], "format": "COCO 1.0", "address": "http://127.0.0.1:9/x"}
    response = client.post(f"{API}/exports", headers=yard["headers"], json=body)
    assert response.status_code == 400
    assert "not a public one" in response.text


def test_results_go_to_the_address_that_was_checked(client, yard, app):
    """DNS rebinding: the PUT must not resolve the name again to connect."""
    from tests.support.network import rebinding

    _complete(client, yard)
    app.state.settings.allow_private_urls = False
    with rebinding() as (public, private):
        done = _export(client, yard, f"http://localhost:{public.port}/upload/a.zip?sig=S")
    assert done["status"] == "finished", done
    assert private.requests == [] and public.requests == [("PUT", "/upload/a.zip?sig=S")]


# --- publish, and dataset downloads ------------------------------------------------------


def _publish(client, yard) -> list[dict[str, Any]]:
    response = client.get(f"{API}/tasks/{yard['task']}/publish", headers=yard["headers"])
    assert response.status_code == 202, response.text
    assert response.content == b""
    versions_url = response.headers["location"]
    deadline = time.monotonic() + 30
    while True:
        versions = client.get(versions_url, headers=yard["headers"]).json()
        if versions[-1]["status"] != "building":
            return versions
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_publish_makes_a_new_version_and_marks_the_dataset_annotated(client, yard):
    dataset_url = f"{API}/datasets/{yard['dataset']}"
    before = client.get(dataset_url, headers=yard["headers"]).json()
    assert (before["version"], before["annotation_status"], before["annotated_count"]) == (
        "0.1", "unlabeled", 0,
    )  # fmt: skip
    versions = _publish(client, yard)
    assert [(v["version"], v["status"], v["annotated_count"], v["object_count"])
            for v in versions] == [("0.2", "ready", 2, 2)]  # fmt: skip
    after = client.get(dataset_url, headers=yard["headers"]).json()
    assert (after["version"], after["annotation_status"], after["annotated_count"]) == (
        "0.2", "labeled", 2,
    )  # fmt: skip
    assert [v["version"] for v in _publish(client, yard)] == ["0.2", "0.3"]


def test_only_who_may_change_the_task_publishes(client, yard, factory):
    stranger = factory.headers(factory.user("stranger"))
    response = client.get(f"{API}/tasks/{yard['task']}/publish", headers=stranger)
    assert response.status_code == 404
    assert client.get(f"{API}/tasks/999999/publish", headers=yard["headers"]).status_code == 404


def test_publish_under_a_session_cookie_needs_the_csrf_header(client, yard):
    """A GET that changes state: another site could make a signed-in browser ask for it."""
    from tests.factories import PASSWORD

    signed_in = client.post(f"{API}/auth/login", json={"username": "owner", "password": PASSWORD})
    assert signed_in.status_code == 200
    url = f"{API}/tasks/{yard['task']}/publish"
    refused = client.get(url)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert client.get(url, headers={"X-CSRFToken": "0" * 64}).status_code == 403
    versions = client.get(f"{API}/datasets/{yard['dataset']}/versions").json()
    assert versions == []
    done = client.get(url, headers={"X-CSRFToken": client.cookies["csrftoken"]})
    assert done.status_code == 202, done.text
    deadline = time.monotonic() + 30
    while client.get(done.headers["location"]).json()[-1]["status"] == "building":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # A token needs no CSRF header (no browser sends one on its own): _publish uses one.
    client.cookies.clear()
    assert [v["version"] for v in _publish(client, yard)] == ["0.2", "0.3"]


def _download(client, yard, **body: Any) -> tuple[dict[str, Any], bytes]:
    started = client.post(
        f"{API}/datasets/exports", headers=yard["headers"],
        json={"dataset_id": yard["dataset"], **body},
    )  # fmt: skip
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    done = _until_done(
        client, f"{API}/datasets/exports/{started.json()['export_id']}", yard["headers"]
    )
    assert done["status"] == "finished", done
    got = client.get(done["download_url"])
    assert got.status_code == 200
    return done, got.content


def test_a_dataset_downloads_as_its_uploaded_files(client, yard):
    done, archive = _download(client, yard)
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        names = sorted(bundle.namelist())
        assert [n.rsplit("/", 1)[-1] for n in names] == ["img_0.jpg", "img_1.jpg", "img_2.jpg"]
        assert bundle.read(names[1]) == jpeg(*SIZE, shade=40)
    assert done["size"] == len(archive) and done["format"] is None


def test_a_dataset_downloads_in_a_format_with_its_published_annotations(client, yard):
    _publish(client, yard)
    # Annotations changed after publishing are not in the download: the version is.
    client.put(f"{API}/tasks/{yard['task']}/annotations", headers=yard["headers"],
               json={"tags": [], "shapes": [], "tracks": []})  # fmt: skip
    done, archive = _download(client, yard, format="COCO 1.0", with_annotations=True)
    assert done["version"] == "0.2"
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        coco = json.loads(bundle.read("annotations/instances_default.json"))
        images = [n for n in bundle.namelist() if n.startswith("images/")]
        # The images as they were uploaded, not decoded and encoded again.
        assert sorted(bundle.read(name) for name in images) == sorted(
            jpeg(*SIZE, shade=i * 40) for i in range(3)
        )
    assert sorted(image["file_name"] for image in coco["images"]) == [
        "img_0.jpg", "img_1.jpg", "img_2.jpg",
    ]  # fmt: skip
    assert len(images) == 3
    by_image = {image["id"]: image["file_name"] for image in coco["images"]}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    found = sorted((by_image[a["image_id"]], names[a["category_id"]]) for a in coco["annotations"])
    assert found == [("img_0.jpg", "car"), ("img_1.jpg", "person")]
    box = next(a for a in coco["annotations"] if names[a["category_id"]] == "car")
    assert box["bbox"] == [2, 3, 18, 27]


def test_a_dataset_download_in_a_format_without_annotations(client, yard):
    _, archive = _download(client, yard, format="COCO 1.0")
    assert _coco_counts(archive) == (3, 0)


def test_dataset_download_errors(client, yard, factory):
    headers = yard["headers"]
    url = f"{API}/datasets/exports"
    unpublished = client.post(url, headers=headers, json={
        "dataset_id": yard["dataset"], "format": "COCO 1.0", "with_annotations": True})  # fmt: skip
    assert unpublished.status_code == 409
    assert "publish" in unpublished.json()["detail"]
    no_format = client.post(
        url, headers=headers, json={"dataset_id": yard["dataset"], "with_annotations": True}
    )
    assert no_format.status_code == 400
    _publish(client, yard)
    no_version = client.post(url, headers=headers, json={
        "dataset_id": yard["dataset"], "format": "COCO 1.0", "with_annotations": True,
        "version": "7.7"})  # fmt: skip
    assert no_version.status_code == 400
    assert client.post(url, headers=headers, json={"dataset_id": 999999}).status_code == 404
    assert client.post(url, headers=headers, json={"dataset_id": "x"}).status_code == 400
    stranger = factory.headers(factory.user("stranger"))
    hidden = client.post(url, headers=stranger, json={"dataset_id": yard["dataset"]})
    assert hidden.status_code == 404
    done, _ = _download(client, yard)
    # Someone else's export id is not theirs to follow; a task export's id is not a
    # dataset export's.
    assert client.get(f"{url}/{done['export_id']}", headers=stranger).status_code == 404
    assert client.get(f"{API}/exports/{done['export_id']}", headers=headers).status_code == 404


def test_dataset_downloads_expire(client, yard, app):
    done, _ = _download(client, yard)
    app.state.settings.export_ttl_hours = 1e-9
    _download(client, yard)
    gone = client.get(f"{API}/datasets/exports/{done['export_id']}", headers=yard["headers"])
    assert gone.status_code == 404
    assert client.get(done["download_url"]).status_code == 404

"""Annotation imports polled the way CVAT's clients poll them: CVAT 1.x's command line
sends the same file again until the answer is not 202, its web client an empty form.
A poll never starts work; the outcome is answered once; CVAT 1.x's importer names."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from labelyard.domain import Operation
from labelyard.services.imports import IMPORT
from tests.api.cvat_v1.test_exchange import annotations, export, put, stored
from tests.api.cvat_v1.test_exchange import yard as yard  # a fixture
from tests.support.runners import HeldRunner

API = "/api/v1"


def imports_started(app) -> int:
    with app.state.session_factory() as session:
        return session.scalar(
            select(func.count()).select_from(Operation).where(Operation.kind == IMPORT)
        )


def send(client, yard, content: bytes | None, format_name: str = "CVAT 1.1", **kwargs: Any):
    url = f"{API}/tasks/{yard['task']}/annotations"
    files = {"annotation_file": ("annotations.xml", content)} if content is not None else None
    return client.put(
        url, headers=yard["headers"], params={"format": format_name}, files=files, **kwargs
    )


def cvat_xml(client, yard) -> bytes:
    """The task's annotations as CVAT for images' XML file, then the task emptied."""
    import io
    import zipfile

    put(client, yard, annotations(yard))
    with zipfile.ZipFile(io.BytesIO(export(client, yard, "CVAT for images 1.1"))) as bundle:
        content = bundle.read("annotations.xml")
    put(client, yard, {"tags": [], "shapes": [], "tracks": []})
    return content


def test_cvat_1x_command_line_upload_loop_imports_the_file_once(client, yard, app):
    """The loop of CVAT 1.x's ``tasks_upload``: PUT the file until the answer is 201."""
    content = cvat_xml(client, yard)
    answers = []
    while True:
        response = send(client, yard, content)
        answers.append(response.status_code)
        assert response.status_code in (201, 202), response.text
        if response.status_code == 201:
            break
        assert len(answers) < 50, answers
    assert answers[0] == 202 and answers[-1] == 201
    assert imports_started(app) == 1
    assert len(stored(client, yard)["shapes"]) == len(annotations(yard)["shapes"])
    # The outcome was answered once: the same file sent again is a new import.
    assert send(client, yard, content).status_code == 202
    assert imports_started(app) == 2


def test_a_poll_waits_for_a_queued_import_and_never_starts_one(client, yard, app):
    content = cvat_xml(client, yard)
    held = HeldRunner(app.state.runner)
    app.state.runner = held
    assert send(client, yard, content).status_code == 202
    for _ in range(3):
        assert send(client, yard, content).status_code == 202
    assert imports_started(app) == 1 and len(held.held) == 1
    # A poll that comes while the import runs gets its outcome as soon as it ends.
    threading.Timer(0.3, held.release).start()
    done = send(client, yard, content)
    assert done.status_code == 201, done.text
    assert imports_started(app) == 1


def test_another_file_while_one_is_imported_is_refused_not_dropped(client, yard, app):
    content = cvat_xml(client, yard)
    app.state.runner = HeldRunner(app.state.runner)
    assert send(client, yard, content).status_code == 202
    other = send(client, yard, content.replace(b"<annotations>", b"<annotations> "))
    assert other.status_code == 409 and "running" in other.json()["detail"], other.text
    # Another format is another import.
    assert send(client, yard, content, "CVAT for video 1.1").status_code == 202
    assert imports_started(app) == 2


def test_a_bad_file_is_refused_on_the_first_poll_once(client, yard, app):
    put(client, yard, annotations(yard))
    before = stored(client, yard)
    broken = b"<annotations><image id='0' name='img_0.jpg'>"
    assert send(client, yard, broken).status_code == 202
    refused = send(client, yard, broken)
    assert refused.status_code == 400, refused.text
    assert "CVAT for images 1.1" in refused.json()["detail"]
    assert imports_started(app) == 1
    assert stored(client, yard) == before
    # Refused once: sending it again tries again.
    assert send(client, yard, broken).status_code == 202
    assert imports_started(app) == 2


def test_cvat_web_client_polls_with_an_empty_form(client, yard, app):
    content = cvat_xml(client, yard)
    assert send(client, yard, content).status_code == 202
    # cvat-core sends a new, empty FormData on every poll.
    boundary = "----poll"
    empty = f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    url = f"{API}/tasks/{yard['task']}/annotations"
    polled = client.put(
        url, headers=yard["headers"] | headers, params={"format": "CVAT 1.1"}, content=empty
    )
    assert polled.status_code == 201, polled.text
    assert imports_started(app) == 1
    # A file under another field name is still a mistake to name.
    wrong = client.put(
        url, headers=yard["headers"], params={"format": "CVAT 1.1"},
        files={"file": ("a.xml", content)},
    )  # fmt: skip
    assert wrong.status_code == 400 and "annotation_file" in wrong.json()["detail"]


def test_a_job_import_is_polled_the_same_way(client, yard, app):
    content = cvat_xml(client, yard)
    (job,) = client.get(f"{API}/tasks/{yard['task']}/jobs", headers=yard["headers"]).json()
    url = f"{API}/jobs/{job['id']}/annotations"
    files = {"annotation_file": ("annotations.xml", content)}
    params = {"format": "CVAT 1.1"}
    statuses = [client.put(url, headers=yard["headers"], params=params, files=files).status_code]
    while statuses[-1] == 202 and len(statuses) < 50:
        statuses.append(
            client.put(url, headers=yard["headers"], params=params, files=files).status_code
        )
    assert statuses[-1] == 201 and imports_started(app) == 1


@pytest.mark.parametrize(
    ("name", "reads_as"),
    [
        ("CVAT 1.1", "CVAT for images 1.1"),
        ("cvat 1.1", "CVAT for images 1.1"),
        ("ICDAR Localization 1.0", "OCR DETECTION 1.0"),
        ("ICDAR Recognition 1.0", "OCR RECOGNITION 1.0"),
    ],
)
def test_cvat_1x_importer_names_are_taken(name, reads_as):
    from labelyard.formats.registry import find

    assert find(name, exporting=False).display_name == reads_as


def test_cvat_1x_importer_list_names_cvat_1_1(client, yard):
    answer = client.get(f"{API}/server/annotation/formats", headers=yard["headers"]).json()
    importers = {entry["name"]: entry for entry in answer["importers"]}
    assert importers["CVAT 1.1"]["ext"] == "XML, ZIP" and importers["CVAT 1.1"]["enabled"]
    assert "CVAT 1.1" not in {entry["name"] for entry in answer["exporters"]}
    refused = client.get(
        f"{API}/tasks/{yard['task']}/annotations", headers=yard["headers"],
        params={"format": "CVAT 1.1"},
    )  # fmt: skip
    assert refused.status_code == 400, refused.text


def test_export_polling_with_repeated_gets_makes_one_export(client, yard, app):
    from labelyard.services.exchange import EXPORT

    put(client, yard, annotations(yard))
    url, params = f"{API}/tasks/{yard['task']}/annotations", {"format": "COCO 1.0"}
    statuses = []
    while not statuses or statuses[-1] == 202:
        statuses.append(client.get(url, headers=yard["headers"], params=params).status_code)
        assert len(statuses) < 500
    assert statuses[-1] == 201
    for _ in range(3):
        assert client.get(url, headers=yard["headers"], params=params).status_code == 201
    with app.state.session_factory() as session:
        made = session.scalar(
            select(func.count()).select_from(Operation).where(Operation.kind == EXPORT)
        )
    assert made == 1

"""CVAT 1.x's command-line client (utils/cli/core/core.py), its requests replayed over
real HTTP against ``labelyard serve``: a form login whose csrftoken cookie becomes the
X-CSRFToken header of a cookie session, ``create`` with local files, the status polled
until Finished, then ``upload``'s loop, which PUTs the same annotation_file (format
``CVAT 1.1``, the client's default) until the answer is 201, and ``dump``'s loop."""

from __future__ import annotations

import io
import re
import time
import zipfile
from xml.etree import ElementTree

import httpx
import pytest

from tests.support.media import jpeg
from tests.test_e2e import start as start  # the fixture that runs `labelyard serve`

pytestmark = pytest.mark.e2e

IMAGES = [(f"{n}.jpg", jpeg(96, 64, shade=n * 60)) for n in range(3)]
BOXES = [(0, 1.5, 2.0, 30.0, 20.0), (1, 4.0, 5.0, 60.0, 40.0), (2, 10.0, 10.0, 50.0, 50.0)]


def cvat_xml() -> bytes:
    """An annotation file as CVAT 1.x dumps one for images: a box on each image."""
    images = "".join(
        f'<image id="{frame}" name="{name}" width="96" height="64">'
        f'<box label="car" occluded="0" xtl="{x1}" ytl="{y1}" xbr="{x2}" ybr="{y2}" '
        f'z_order="0"></box></image>'
        for (name, _), (frame, x1, y1, x2, y2) in zip(IMAGES, BOXES, strict=True)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>'
        "<meta><task><name>cli</name><labels><label><name>car</name><attributes>"
        f"</attributes></label></labels></task></meta>{images}</annotations>"
    ).encode()


def cli_session(base: str, password: str) -> httpx.Client:
    """``CLI.login``: the form login, then the CSRF cookie sent back as a header."""
    session = httpx.Client(base_url=f"{base}/api/v1/", timeout=30)
    response = session.post("auth/login", data={"username": "root", "password": password})
    response.raise_for_status()
    session.headers["X-CSRFToken"] = response.cookies["csrftoken"]
    return session


def test_cvat_1x_cli_create_with_annotations_then_upload_and_dump(start):
    server = start()
    password = re.search(r"password '([^']+)'", server.output()).group(1)
    session = cli_session(server.base, password)

    # tasks_create, then tasks_data with local files.
    created = session.post(
        "tasks", json={"name": "cli", "labels": [{"name": "car", "attributes": []}],
                       "overlap": 0, "segment_size": 0, "bug_tracker": ""},
    )  # fmt: skip
    created.raise_for_status()
    task_id = created.json()["id"]
    files = {f"client_files[{i}]": (name, data) for i, (name, data) in enumerate(IMAGES)}
    session.post(f"tasks/{task_id}/data", data={"image_quality": 50}, files=files)
    deadline = time.monotonic() + 60
    while session.get(f"tasks/{task_id}/status").json()["state"] != "Finished":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # tasks_upload: the same file again and again, until 201, with no pause between.
    content, answers = cvat_xml(), []
    while True:
        response = session.put(
            f"tasks/{task_id}/annotations?format=CVAT 1.1",
            files={"annotation_file": ("annotations.xml", content)},
        )
        response.raise_for_status()
        answers.append(response.status_code)
        if response.status_code == 201:
            break
        assert len(answers) < 30, answers
    imports = session.get("operations", params={"kind": "annotations.import"}).json()
    assert imports["count"] == 1, (answers, imports)
    shapes = session.get(f"tasks/{task_id}/annotations").json()["shapes"]
    assert sorted((s["frame"], s["points"]) for s in shapes) == [
        (frame, [x1, y1, x2, y2]) for frame, x1, y1, x2, y2 in BOXES
    ]

    # tasks_dump: GET until 201, then action=download.
    url = f"tasks/{task_id}/annotations?format=CVAT for images 1.1&filename=cli"
    deadline = time.monotonic() + 60
    while session.get(url).status_code != 201:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    dumped = session.get(url + "&action=download")
    assert dumped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(dumped.content)) as bundle:
        root = ElementTree.fromstring(bundle.read("annotations.xml"))
    assert len(root.findall("./image/box")) == len(BOXES)

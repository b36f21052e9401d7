"""``POST /tasks/{id}/data`` from every kind of source (uploads, archives, the server's share,
remote URLs, datasets) and the bad inputs that must be refused cleanly: either a clear 4xx at
once or a ``Failed`` status naming the bad file, with the task, the datasets and the media
left as they were, and a retry with good input working afterwards."""

from __future__ import annotations

import functools
import http.server
import io
import random
import stat
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labelyard.app import create_app
from labelyard.config import Settings
from tests.support.media import jpeg, mp4
from tests.support.runners import HeldRunner

API = "/api/v1"
MiB = 1024**2
GOOD = [("good_a.jpg", jpeg(shade=10)), ("good_b.jpg", jpeg(shade=20))]

Files = list[tuple[str, bytes]]


# --- helpers --------------------------------------------------------------------------


@dataclass
class Api:
    """One user talking to one app; ``data_dir`` is where that app keeps its files."""

    client: TestClient
    headers: dict[str, str]
    data_dir: Path

    def new_task(self, **fields: Any) -> int:
        body = {"name": "task", "labels": [{"name": "car"}], **fields}
        response = self.client.post(f"{API}/tasks", headers=self.headers, json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def post_data(self, task_id: int, files: Files | None = None, **form: Any) -> Any:
        data = {"image_quality": "70", **form}
        multipart = [
            (f"client_files[{index}]", (name, content))
            for index, (name, content) in enumerate(files or [])
        ]
        return self.client.post(
            f"{API}/tasks/{task_id}/data", headers=self.headers, data=data, files=multipart or None
        )

    def status(self, task_id: int) -> dict[str, str]:
        return self.client.get(f"{API}/tasks/{task_id}/status", headers=self.headers).json()

    def wait(self, task_id: int, timeout: float = 30) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.status(task_id)
            if state["state"] in ("Finished", "Failed"):
                return state
            assert time.monotonic() < deadline, f"still {state}"
            time.sleep(0.05)

    def task(self, task_id: int) -> dict[str, Any]:
        return self.client.get(f"{API}/tasks/{task_id}", headers=self.headers).json()

    def frame_names(self, task_id: int) -> list[str]:
        meta = self.client.get(f"{API}/tasks/{task_id}/data/meta", headers=self.headers)
        assert meta.status_code == 200, meta.text
        return [frame["name"] for frame in meta.json()["frames"]]

    def dataset_count(self) -> int:
        return self.client.get(f"{API}/datasets", headers=self.headers).json()["count"]

    def leftovers(self) -> list[str]:
        """Files left in the media dir and in the scratch work dir."""
        roots = [self.data_dir / "media", self.data_dir / "work"]
        return sorted(
            str(path.relative_to(self.data_dir))
            for root in roots
            if root.exists()
            for path in root.rglob("*")
            if path.is_file()
        )


def form_fields(prefix: str, values: list[str]) -> dict[str, str]:
    """CVAT's array fields: ``server_files[0]``, ``server_files[1]``, ..."""
    return {f"{prefix}[{index}]": value for index, value in enumerate(values)}


def refusal_message(api: Api, task_id: int, response: Any) -> str:
    """The refusal's text: the 4xx body, or the message of the Failed status."""
    if response.status_code == 202:
        state = api.wait(task_id)
        assert state["state"] == "Failed", state
        return state["message"]
    assert 400 <= response.status_code < 500, response.text
    return response.text


def assert_untouched(api: Api, task_id: int, datasets_before: int) -> None:
    task = api.task(task_id)
    assert (task["size"], task["segments"], task["mode"]) == (0, [], "")
    assert api.frame_names(task_id) == []
    assert api.dataset_count() == datasets_before
    assert api.leftovers() == []


def assert_retry_works(api: Api, task_id: int, datasets_before: int) -> None:
    response = api.post_data(task_id, GOOD)
    assert response.status_code == 202, response.text
    assert api.wait(task_id) == {"state": "Finished", "message": ""}
    assert api.task(task_id)["size"] == len(GOOD)
    assert api.frame_names(task_id) == [name for name, _ in GOOD]
    assert api.dataset_count() == datasets_before + 1


def assert_refused_cleanly(
    api: Api, task_id: int, datasets_before: int, response: Any, named: tuple[str, ...]
) -> str:
    message = refusal_message(api, task_id, response)
    for name in named:
        assert name in message, f"{name!r} not named in {message!r}"
    assert_untouched(api, task_id, datasets_before)
    assert_retry_works(api, task_id, datasets_before)
    return message


@pytest.fixture
def api(client: TestClient, factory: Any, settings: Settings) -> Api:
    return Api(client, factory.headers(factory.admin()), settings.data_dir)


@pytest.fixture
def api_with(app: Any, engine: Any, settings: Settings, factory: Any) -> Iterator[Callable]:
    """``api_with(share_dir=...)``: an Api on an app built from changed settings (same
    database and data dir as the ``app`` fixture, which empties the database afterwards)."""
    made: list[tuple[Any, TestClient]] = []
    headers = factory.headers(factory.admin())

    def build(**updates: Any) -> Api:
        variant = create_app(settings.model_copy(update=updates), engine=engine)
        client = TestClient(variant)
        client.__enter__()
        made.append((variant, client))
        return Api(client, headers, settings.data_dir)

    yield build
    for variant, client in made:
        client.__exit__(None, None, None)
        variant.state.runner.shutdown()


# --- bad uploads ----------------------------------------------------------------------


def zipped(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, content in members:
            archive.writestr(info, content)
    return buffer.getvalue()


def zip_symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so that the mode bits count
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def tar_with_symlink() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        image = jpeg(shade=5)
        info = tarfile.TarInfo("fine.jpg")
        info.size = len(image)
        archive.addfile(info, io.BytesIO(image))
        link = tarfile.TarInfo("link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    return buffer.getvalue()


def zip_bomb() -> bytes:
    """Zeros past the 64 MiB floor, squeezed about 1000 times: over the 200x ratio limit."""
    return zipped([("zeros.jpg", bytes(65 * MiB))])


def truncated_mp4(tmp_path: Path) -> bytes:
    whole = mp4(tmp_path / "whole.mp4", frames=10, width=64, height=48).read_bytes()
    return whole[: len(whole) // 2]


def small_mp4(tmp_path: Path, name: str) -> bytes:
    return mp4(tmp_path / name, frames=5, width=64, height=48).read_bytes()


@dataclass(frozen=True)
class BadUpload:
    id: str
    files: Callable[[Path], Files]
    named: tuple[str, ...]
    any_name: bool = False  # one of ``named`` is enough
    extra: tuple[str, ...] = field(default=())  # further words the message must hold


def _truncated_jpeg(_: Path) -> Files:
    good = jpeg(shade=1)
    return [("one.jpg", good), ("cut.jpg", good[: len(good) // 2]), ("two.jpg", jpeg(shade=2))]


BAD_UPLOADS = [
    BadUpload("truncated-jpeg-among-good", _truncated_jpeg, ("cut.jpg",)),
    BadUpload(
        "random-bytes-named-jpg",
        lambda _: [("ok.jpg", jpeg()), ("noise.jpg", random.Random(7).randbytes(4096))],
        ("noise.jpg",),
    ),
    BadUpload(
        "empty-file",
        lambda _: [("ok.jpg", jpeg()), ("empty.jpg", b"")],
        ("empty.jpg",),
        extra=("empty",),
    ),
    BadUpload(
        "text-file",
        lambda _: [("ok.jpg", jpeg()), ("notes.txt", b"just some notes\n" * 20)],
        ("notes.txt",),
        extra=("unsupported",),
    ),
    BadUpload(
        "zip-with-dotdot-member",
        lambda _: [("pack.zip", zipped([("fine.jpg", jpeg()), ("../evil.jpg", jpeg())]))],
        ("pack.zip", "../evil.jpg"),
    ),
    BadUpload(
        "zip-with-symlink",
        lambda _: [
            ("links.zip", zipped([("fine.jpg", jpeg()), (zip_symlink("link.jpg", "/etc"), b"")]))
        ],
        ("links.zip", "link.jpg"),
        extra=("symbolic link",),
    ),
    BadUpload(
        "tar-with-symlink",
        lambda _: [("links.tar", tar_with_symlink())],
        ("links.tar", "link.jpg"),
        extra=("symbolic link",),
    ),
    BadUpload(
        "zip-bomb",
        lambda _: [("bomb.zip", zip_bomb())],
        ("bomb.zip", "zeros.jpg"),
        extra=("decompression bomb",),
    ),
    BadUpload("truncated-mp4", lambda tmp: [("clip.mp4", truncated_mp4(tmp))], ("clip.mp4",)),
    BadUpload(
        "two-videos",
        lambda tmp: [
            ("first.mp4", small_mp4(tmp, "1.mp4")),
            ("second.mp4", small_mp4(tmp, "2.mp4")),
        ],
        ("first.mp4", "second.mp4"),
        any_name=True,
    ),
    BadUpload(
        "images-and-a-video",
        lambda tmp: [("still.jpg", jpeg()), ("clip.mp4", small_mp4(tmp, "clip.mp4"))],
        ("clip.mp4",),
    ),
]


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=lambda case: case.id)
def test_a_bad_upload_is_refused_cleanly_and_a_retry_works(api, tmp_path, case):
    task_id = api.new_task()
    datasets_before = api.dataset_count()
    response = api.post_data(task_id, case.files(tmp_path))
    message = refusal_message(api, task_id, response)
    if case.any_name:
        assert any(name in message for name in case.named), message
    else:
        for name in case.named:
            assert name in message, f"{name!r} not named in {message!r}"
    for word in case.extra:
        assert word in message, f"{word!r} not in {message!r}"
    assert_untouched(api, task_id, datasets_before)
    assert_retry_works(api, task_id, datasets_before)


# --- bad forms: refused at once -------------------------------------------------------


@dataclass(frozen=True)
class BadForm:
    id: str
    files: Files
    form: dict[str, str]
    field: str  # the field the 400 names


BAD_FORMS = [
    BadForm("no-files-at-all", [], {}, "non_field_errors"),
    BadForm("client-and-server-files", GOOD[:1], {"server_files[0]": "a.jpg"}, "non_field_errors"),
    BadForm("dataset-that-does-not-exist", [], {"dataset_ids[0]": "987654"}, "dataset_ids"),
    BadForm("frame-filter-step-0", GOOD, {"frame_filter": "step=0"}, "frame_filter"),
    BadForm("frame-filter-every-2", GOOD, {"frame_filter": "every=2"}, "frame_filter"),
    BadForm(
        "stop-frame-below-start-frame", GOOD, {"start_frame": "1", "stop_frame": "0"}, "stop_frame"
    ),
]


@pytest.mark.parametrize("case", BAD_FORMS, ids=lambda case: case.id)
def test_a_bad_form_is_a_400_on_its_field_and_a_retry_works(api, case):
    task_id = api.new_task()
    datasets_before = api.dataset_count()
    response = api.post_data(task_id, case.files, **case.form)
    assert response.status_code == 400, response.text
    assert case.field in response.json(), response.json()
    assert api.status(task_id) == {"state": "Unknown", "message": ""}  # nothing was queued
    assert_untouched(api, task_id, datasets_before)
    assert_retry_works(api, task_id, datasets_before)


# --- frame ranges and order -----------------------------------------------------------


SEVEN = [f"img{n}.jpg" for n in range(7)]


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        pytest.param({}, SEVEN, id="all"),
        pytest.param({"start_frame": "2"}, SEVEN[2:], id="start-2"),
        pytest.param({"stop_frame": "3"}, SEVEN[:4], id="stop-3"),
        pytest.param({"stop_frame": "100"}, SEVEN, id="stop-past-the-end"),
        pytest.param({"frame_filter": "step=3"}, SEVEN[::3], id="step-3"),
        pytest.param(
            {"start_frame": "1", "stop_frame": "5", "frame_filter": "step=2"},
            ["img1.jpg", "img3.jpg", "img5.jpg"],
            id="start-1-stop-5-step-2",
        ),
    ],
)
def test_start_stop_and_step_pick_the_frames(api, form, expected):
    task_id = api.new_task()
    files = [(name, jpeg(shade=n * 30)) for n, name in enumerate(SEVEN)]
    response = api.post_data(task_id, list(reversed(files)), **form)
    assert response.status_code == 202, response.text
    assert api.wait(task_id) == {"state": "Finished", "message": ""}
    assert api.frame_names(task_id) == expected
    assert api.task(task_id)["size"] == len(expected)
    meta = api.client.get(f"{API}/tasks/{task_id}/data/meta", headers=api.headers).json()
    assert (meta["size"], meta["frame_filter"]) == (len(expected), form.get("frame_filter", ""))


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("natural", ["img1.jpg", "img2.jpg", "img10.jpg"]),
        ("lexicographical", ["img1.jpg", "img10.jpg", "img2.jpg"]),
        ("predefined", ["img2.jpg", "img10.jpg", "img1.jpg"]),
    ],
)
def test_sorting_method_orders_the_frames(api, method, expected):
    task_id = api.new_task()
    names = ["img2.jpg", "img10.jpg", "img1.jpg"]
    files = [(name, jpeg(shade=n * 40)) for n, name in enumerate(names)]
    assert api.post_data(task_id, files, sorting_method=method).status_code == 202
    assert api.wait(task_id)["state"] == "Finished"
    assert api.frame_names(task_id) == expected


# --- one data operation at a time -----------------------------------------------------


def test_a_second_post_while_the_first_is_queued_is_a_409(api, app):
    held = app.state.runner = HeldRunner(app.state.runner)
    try:
        task_id = api.new_task()
        assert api.post_data(task_id, GOOD).status_code == 202
        assert api.status(task_id)["state"] == "Queued"
        second = api.post_data(task_id, [("other.jpg", jpeg(shade=99))])
        assert second.status_code == 409, second.text
        assert len(held.held) == 1
        held.release()
        assert api.wait(task_id) == {"state": "Finished", "message": ""}
        assert api.frame_names(task_id) == [name for name, _ in GOOD]
    finally:
        held.release()
        app.state.runner = held.runner


# --- server files ---------------------------------------------------------------------


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    (root / "more").mkdir(parents=True)
    (root / "a.jpg").write_bytes(jpeg(shade=1))
    (root / "b.jpg").write_bytes(jpeg(shade=2))
    (root / "more" / "c.jpg").write_bytes(jpeg(shade=3))
    (root / ".hidden.jpg").write_bytes(jpeg(shade=4))
    (tmp_path / "outside.jpg").write_bytes(jpeg(shade=5))
    return root


def listing(api: Api, directory: str) -> Any:
    return api.client.get(
        f"{API}/server/share", headers=api.headers, params={"directory": directory}
    )


def test_the_share_is_listed_by_directory(api_with, share):
    api = api_with(share_dir=share)
    assert listing(api, "/").json() == [
        {"name": "a.jpg", "type": "REG"},
        {"name": "b.jpg", "type": "REG"},
        {"name": "more", "type": "DIR"},
    ]
    assert listing(api, "/more").json() == [{"name": "c.jpg", "type": "REG"}]
    outside = listing(api, "/../")
    assert outside.status_code == 400 and "directory" in outside.json()


@pytest.mark.parametrize("directory", ["a" * 300, "/more/" + "b" * 256, "more\x00", "/a.jpg"])
def test_a_share_directory_that_cannot_exist_is_a_400(api_with, share, directory):
    api = api_with(share_dir=share)
    refused = listing(api, directory)
    assert refused.status_code == 400 and "directory" in refused.json(), refused.text


@pytest.mark.parametrize(
    ("name", "named"), [("c" * 300 + ".jpg", "c" * 40), ("more/c.jpg\x00", "server_files.1")]
)
def test_a_share_file_name_that_cannot_exist_is_refused(api_with, share, name, named):
    api = api_with(share_dir=share)
    task_id = api.new_task()
    datasets_before = api.dataset_count()
    response = api.post_data(task_id, **form_fields("server_files", ["a.jpg", name]))
    assert_refused_cleanly(api, task_id, datasets_before, response, (named,))


def test_a_task_from_share_files(api_with, share):
    api = api_with(share_dir=share)
    task_id = api.new_task()
    response = api.post_data(task_id, **form_fields("server_files", ["a.jpg", "more/c.jpg"]))
    assert response.status_code == 202, response.text
    assert api.wait(task_id) == {"state": "Finished", "message": ""}
    assert api.frame_names(task_id) == ["a.jpg", "more/c.jpg"]
    frame = api.client.get(
        f"{API}/tasks/{task_id}/data",
        headers=api.headers,
        params={"type": "frame", "number": 1, "quality": "original"},
    )
    assert frame.content == jpeg(shade=3)
    # The share is only read from.
    assert (share / "a.jpg").read_bytes() == jpeg(shade=1)
    assert (share / "more" / "c.jpg").read_bytes() == jpeg(shade=3)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(lambda share: "../outside.jpg", id="dotdot"),
        pytest.param(lambda share: str(share.parent / "outside.jpg"), id="absolute-outside"),
        pytest.param(lambda share: "missing.jpg", id="missing"),
    ],
)
def test_a_share_path_outside_the_share_is_refused(api_with, share, path):
    api = api_with(share_dir=share)
    bad = path(share)
    task_id = api.new_task()
    datasets_before = api.dataset_count()
    response = api.post_data(task_id, **form_fields("server_files", ["a.jpg", bad]))
    assert_refused_cleanly(api, task_id, datasets_before, response, (bad,))


# --- remote files ---------------------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A tiny HTTP server on loopback serving one good image; yields its base URL."""
    root = tmp_path / "web"
    root.mkdir()
    (root / "good.jpg").write_bytes(jpeg(shade=77))
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_private_url_is_refused_by_default(api, web):
    url = f"{web}/good.jpg"
    task_id = api.new_task()
    datasets_before = api.dataset_count()
    response = api.post_data(task_id, **form_fields("remote_files", [url]))
    message = assert_refused_cleanly(api, task_id, datasets_before, response, (url,))
    assert "not a public" in message


def test_a_remote_file_comes_from_the_address_that_was_checked(api):
    """DNS rebinding: the download must not resolve the name again to connect."""
    from tests.support.network import rebinding

    with rebinding(content=jpeg(shade=5)) as (public, private):
        task_id = api.new_task()
        url = f"http://localhost:{public.port}/photo.jpg"
        response = api.post_data(task_id, **form_fields("remote_files", [url]))
        assert response.status_code == 202, response.text
        assert api.wait(task_id) == {"state": "Finished", "message": ""}
    assert private.requests == [] and public.requests == [("GET", "/photo.jpg")]


def test_a_remote_file_is_downloaded_when_private_urls_are_allowed(api_with, web):
    api = api_with(allow_private_urls=True)
    task_id = api.new_task()
    response = api.post_data(task_id, **form_fields("remote_files", [f"{web}/good.jpg"]))
    assert response.status_code == 202, response.text
    assert api.wait(task_id) == {"state": "Finished", "message": ""}
    assert api.frame_names(task_id) == ["good.jpg"]
    frame = api.client.get(
        f"{API}/tasks/{task_id}/data",
        headers=api.headers,
        params={"type": "frame", "number": 0, "quality": "original"},
    )
    assert frame.content == jpeg(shade=77)


def test_a_missing_remote_file_fails_naming_the_url(api_with, web):
    api = api_with(allow_private_urls=True)
    url = f"{web}/missing.jpg"
    task_id = api.new_task()
    datasets_before = api.dataset_count()
    response = api.post_data(task_id, **form_fields("remote_files", [f"{web}/good.jpg", url]))
    message = assert_refused_cleanly(api, task_id, datasets_before, response, (url,))
    assert "404" in message

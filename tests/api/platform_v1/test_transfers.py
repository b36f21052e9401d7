"""Seed 004's signed upload and download URLs: a PUT to an upload URL makes an asset of the
space that work items can name by its path, and download URLs give its bytes back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from labelyard.adapters.storage import UrlSigner, load_or_create_secret
from labelyard.app import create_app
from labelyard.config import Settings
from labelyard.domain import Asset, Batch, Dataset, Space
from labelyard.services.errors import Conflict
from labelyard.services.uow import UnitOfWork
from labelyard.services.workflow import uploads
from tests.api.platform_v1.conftest import API, Work
from tests.support.media import jpeg, mp4


def _default_space(work: Work) -> str:
    spaces = work.client.get(f"{API}/spaces", headers=work.as_(work.workers[0])).json()["items"]
    return next(space["id"] for space in spaces if space["default"])


def _local(url: str) -> str:
    """The URL as TestClient asks for it: without scheme and host."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _upload_urls(
    work: Work,
    count: int | None = None,
    *,
    headers: dict[str, str] | None = None,
    space: str | None = None,
) -> httpx.Response:
    query = "" if count is None else f"?count={count}"
    return work.client.post(
        f"{API}/spaces/{space or _default_space(work)}/upload-urls{query}",
        headers=headers or work.as_(work.manager),
    )


def _one_url(work: Work) -> tuple[str, str]:
    response = _upload_urls(work)
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    return item["path"], item["signedUrl"]


def _put(
    client: TestClient, url: str, body: bytes, content_type: str | None = "image/jpeg"
) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return client.put(_local(url), content=body, headers=headers)


def _download_urls(work: Work, paths: list[Any], headers: dict[str, str] | None = None) -> Any:
    return work.client.post(
        f"{API}/spaces/{_default_space(work)}/download-urls",
        json={"paths": paths},
        headers=headers or work.as_(work.manager),
    )


@contextmanager
def _state(app: FastAPI, **values: Any) -> Iterator[None]:
    """``app.state`` with some values replaced, for the requests made meanwhile."""
    kept = {name: getattr(app.state, name) for name in values}
    for name, value in values.items():
        setattr(app.state, name, value)
    try:
        yield
    finally:
        for name, value in kept.items():
            setattr(app.state, name, value)


def _assets_at(work: Work, path: str) -> list[Asset]:
    with work.factory.uow() as uow:
        return list(uow.session.scalars(select(Asset).where(Asset.name == path)))


def test_upload_urls_default_to_one_and_take_up_to_ten(work: Work):
    space = _default_space(work)
    response = _upload_urls(work)
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert set(item) == {"path", "signedUrl"}
    assert item["path"].startswith("uploads/")
    parts = urlsplit(item["signedUrl"])
    assert parts.scheme == "http" and parts.netloc == "testserver"
    assert parts.path == f"{API}/uploads/{space}/{item['path']}"
    assert set(parse_qs(parts.query)) == {"expires", "signature"}
    expires = int(parse_qs(parts.query)["expires"][0])
    assert time.time() + 3500 < expires <= time.time() + 3600

    ten = _upload_urls(work, 10).json()["items"]
    assert len({item["path"] for item in ten}) == 10
    for count in (0, 11, -1):
        refused = _upload_urls(work, count)
        assert refused.status_code == 400, refused.text
        assert "count" in refused.json()


def test_an_uploaded_image_becomes_an_asset_that_a_work_item_names_by_its_path(work: Work):
    path, url = _one_url(work)
    body = jpeg(80, 60)
    stored = _put(work.client, url, body)  # no Authorization header: the URL is enough
    assert stored.status_code == 201, stored.text
    answer = stored.json()
    assert answer["path"] == path
    assert (answer["width"], answer["height"], answer["sizeBytes"]) == (80, 60, len(body))

    with work.factory.uow() as uow:
        asset = uow.session.get_one(Asset, answer["assetId"])
        dataset = uow.session.get_one(Dataset, asset.dataset_id)
        batch = uow.session.get_one(Batch, asset.batch_id)
    assert (asset.kind, asset.name, asset.width, asset.height) == ("image", path, 80, 60)
    assert asset.extra == {"uploadPath": path, "contentType": "image/jpeg"}
    assert asset.storage_key == f"{dataset.storage_prefix}/{path}.jpg"
    assert (dataset.format, dataset.owner_id, dataset.status) == ("space-uploads", None, "ready")
    assert dataset.space_id == 1 and dataset.name.endswith(" uploads")
    assert batch.name == "uploads"
    assert work.client.app.state.storage.read(asset.storage_key) == body  # type: ignore[attr-defined]

    item = work.client.post(
        f"{work.base}/work-items",
        json={"assetUrl": path, "assetType": "image"},
        headers=work.as_(work.manager),
    )
    assert item.status_code == 201, item.text
    assert item.json()["assetId"] == asset.id and item.json()["assetUrl"] == path

    # Another upload goes to the same dataset; a URL stores one file, once.
    _, second_url = _one_url(work)
    second = _put(work.client, second_url, jpeg(shade=9))
    assert second.status_code == 201, second.text
    with work.factory.uow() as uow:
        assert uow.session.get_one(Asset, second.json()["assetId"]).dataset_id == dataset.id
    again = _put(work.client, url, jpeg(shade=3))
    assert again.status_code == 409, again.text
    assert work.client.app.state.storage.read(asset.storage_key) == body  # type: ignore[attr-defined]


def test_content_type_is_mandatory(work: Work):
    path, url = _one_url(work)
    for content_type in (None, "", "  "):
        refused = _put(work.client, url, jpeg(), content_type)
        assert refused.status_code == 400, refused.text
        assert "Content-Type" in refused.json()["detail"]
        assert "Content-Type" in refused.json()
    assert _assets_at(work, path) == []
    # The URL was not used up.
    assert _put(work.client, url, jpeg(), "application/octet-stream").status_code == 201


def test_a_changed_or_expired_link_is_refused(work: Work):
    path, url = _one_url(work)
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    signature = query["signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    space = _default_space(work)
    changed = [
        f"{parts.path}?{urlencode({**query, 'signature': flipped})}",
        f"{parts.path}?{urlencode({**query, 'expires': int(query['expires']) + 1})}",
        f"{parts.path}?{urlencode({'expires': query['expires']})}",
        f"{parts.path}x?{parts.query}",
        f"{API}/uploads/{space}/uploads/{uuid.uuid4().hex}?{parts.query}",
        f"{API}/uploads/{uuid.uuid4()}/{path}?{parts.query}",
        f"{API}/uploads/{space.upper()}/{path}?{parts.query}",
    ]
    for tampered in changed:
        refused = _put(work.client, tampered, jpeg())
        assert refused.status_code == 403, (tampered, refused.text)
        assert refused.json()["detail"] == "The link is invalid or has expired."

    app: FastAPI = work.client.app  # type: ignore[assignment]
    later = UrlSigner(load_or_create_secret(app.state.settings), clock=lambda: time.time() + 3601)
    with _state(app, signer=later):
        assert _put(work.client, url, jpeg()).status_code == 403
    assert _assets_at(work, path) == []
    assert _put(work.client, url, jpeg()).status_code == 201


def test_read_and_upload_signatures_do_not_stand_in_for_each_other(work: Work):
    app: FastAPI = work.client.app  # type: ignore[assignment]
    space = _default_space(work)
    path = f"uploads/{uuid.uuid4().hex}"
    key = f"spaces/{space}/{path}"
    read = app.state.signer.query(key, 600)
    refused = _put(work.client, f"{API}/uploads/{space}/{path}?{urlencode(read)}", jpeg())
    assert refused.status_code == 403, refused.text

    _, url = _one_url(work)
    upload_query = urlsplit(url).query
    upload_key = urlsplit(url).path.removeprefix(f"{API}/uploads/")
    fetched = work.client.get(f"/api/v1/storage/spaces/{upload_key}?{upload_query}")
    assert fetched.status_code == 403


def test_a_broken_file_is_refused_and_nothing_is_kept(work: Work, tmp_path: Path):
    whole = jpeg(120, 90)
    video = mp4(tmp_path / "clip.mp4", frames=5).read_bytes()
    for body, reason in (
        (whole[: len(whole) // 2], "truncated"),
        (b"not an image at all", "not a usable image"),
        (b"", "empty"),
        (video, "Only images"),
    ):
        path, url = _one_url(work)
        refused = _put(work.client, url, body)
        assert refused.status_code == 400, refused.text
        assert reason in refused.json()["detail"]
        assert _assets_at(work, path) == []
    with work.factory.uow() as uow:
        assert uow.session.scalars(select(Asset).where(Asset.name.like("uploads/%"))).all() == []
        prefixes = uow.session.scalars(
            select(Dataset.storage_prefix).where(Dataset.format == "space-uploads")
        ).all()
    storage = work.client.app.state.storage  # type: ignore[attr-defined]
    assert all(list(storage.list(prefix + "/")) == [] for prefix in prefixes)


def test_uploads_over_the_limit_are_refused(work: Work):
    app: FastAPI = work.client.app  # type: ignore[assignment]
    path, url = _one_url(work)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        body = jpeg(120, 90)
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    with _state(app, settings=app.state.settings.model_copy(update={"max_upload_bytes": 1000})):
        refused = _put(work.client, url, jpeg(120, 90))
        assert refused.status_code == 413, refused.text
        streamed = work.client.put(
            _local(url), content=chunks(), headers={"Content-Type": "image/jpeg"}
        )
        assert streamed.status_code == 413, streamed.text
    assert _assets_at(work, path) == []


def test_uploads_are_held_to_the_upload_limit_not_the_json_one(
    work: Work, settings: Settings, engine: Engine
):
    tight = settings.model_copy(update={"max_request_bytes": 2000})
    with TestClient(create_app(tight, engine=engine)) as client:
        response = client.post(
            f"{API}/spaces/{_default_space(work)}/upload-urls", headers=work.as_(work.manager)
        )
        (item,) = response.json()["items"]
        body = jpeg(200, 150)
        assert len(body) > 2000
        assert _put(client, item["signedUrl"], body).status_code == 201


def test_download_urls_give_the_uploaded_bytes_back(work: Work):
    path, url = _one_url(work)
    body = jpeg(50, 40, shade=7)
    assert _put(work.client, url, body).status_code == 201

    response = _download_urls(work, [path, path])
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["path"] for item in items] == [path, path]
    assert urlsplit(items[0]["signedUrl"]).netloc == "testserver"
    fetched = work.client.get(_local(items[0]["signedUrl"]))
    assert fetched.status_code == 200 and fetched.content == body
    # Served as what the bytes are, though the upload's path has no extension.
    assert fetched.headers["content-type"] == "image/jpeg"

    # Observers read (download URLs) but do not write (upload URLs); workers do both.
    observer = work.factory.user("observer", ("observer",))
    assert _download_urls(work, [path], work.as_(observer)).status_code == 200
    assert _upload_urls(work, headers=work.as_(observer)).status_code == 403
    assert _upload_urls(work, headers=work.as_(work.workers[0])).status_code == 200
    assert _download_urls(work, [path], work.as_(work.workers[0])).status_code == 200


def test_download_urls_name_what_is_wrong(work: Work):
    path, url = _one_url(work)
    assert _put(work.client, url, jpeg()).status_code == 201
    unknown = _download_urls(work, [path, "uploads/nothing", "datasets/x"])
    assert unknown.status_code == 400, unknown.text
    assert set(unknown.json()) == {"detail", "paths.1", "paths.2"}
    # An asset of the space that was not uploaded is not a path.
    assert _download_urls(work, [work.assets[0].name]).status_code == 400
    # A path given but not yet uploaded to is unknown too.
    pending, _ = _one_url(work)
    assert "paths.0" in _download_urls(work, [pending]).json()

    for paths, field in (
        ([], "paths"),
        ([path] * 1001, "paths"),
        (["x" * 1025], "paths.0"),
        ([path, 7], "paths.1"),
    ):
        refused = _download_urls(work, paths)
        assert refused.status_code == 400, (field, refused.text)
        assert field in refused.json()
    assert _download_urls(work, [path] * 1000).status_code == 200
    missing = work.client.post(
        f"{API}/spaces/{_default_space(work)}/download-urls",
        json={},
        headers=work.as_(work.manager),
    )
    assert missing.status_code == 400 and "paths" in missing.json()


def test_another_spaces_id_is_not_found(work: Work):
    with work.factory.uow() as uow:
        other = Space(name="elsewhere")
        uow.session.add(other)
        uow.commit()
    for space in (other.uuid, "not-a-uuid", str(uuid.uuid4())):
        assert _upload_urls(work, space=space).status_code == 404
        refused = work.client.post(
            f"{API}/spaces/{space}/download-urls",
            json={"paths": ["uploads/x"]},
            headers=work.as_(work.manager),
        )
        assert refused.status_code == 404
    # Admins see every space, and may upload to it.
    admin = work.factory.admin()
    assert _upload_urls(work, space=other.uuid, headers=work.as_(admin)).status_code == 200


def test_of_two_uploads_racing_to_one_path_the_first_keeps_its_file(work: Work, tmp_path: Path):
    app: FastAPI = work.client.app  # type: ignore[assignment]
    storage = app.state.storage
    path = f"uploads/{uuid.uuid4().hex}"
    first, second = tmp_path / "first.jpg", tmp_path / "second.jpg"
    first.write_bytes(jpeg(shade=1))
    second.write_bytes(jpeg(shade=2))
    with UnitOfWork(app.state.session_factory) as uow:
        space = uow.session.get_one(Space, 1)
    with UnitOfWork(app.state.session_factory) as uow:
        kept = uploads.store_upload(uow, storage, space, path, uploads.measure(first, "image/jpeg"))
    with UnitOfWork(app.state.session_factory) as uow, pytest.raises(Conflict):
        uploads.store_upload(uow, storage, space, path, uploads.measure(second, "image/jpeg"))
    assert storage.read(kept.storage_key) == first.read_bytes()
    assert [asset.id for asset in _assets_at(work, path)] == [kept.id]


def test_uploads_and_downloads_on_s3(
    work: Work, settings: Settings, engine: Engine, s3_endpoint: str
):
    on_s3 = settings.model_copy(
        update={
            "storage": "s3",
            "s3_endpoint": s3_endpoint,
            "s3_bucket": f"uploads-{uuid.uuid4().hex[:12]}",
            "s3_access_key": "testing",
            "s3_secret_key": "testing",
        }
    )
    body = jpeg(30, 20)
    with TestClient(create_app(on_s3, engine=engine)) as client:
        space = _default_space(work)
        headers = work.as_(work.manager)
        made = client.post(f"{API}/spaces/{space}/upload-urls", headers=headers)
        (item,) = made.json()["items"]
        stored = _put(client, item["signedUrl"], body, "image/jpeg; charset=binary")
        assert stored.status_code == 201, stored.text
        links = client.post(
            f"{API}/spaces/{space}/download-urls", json={"paths": [item["path"]]}, headers=headers
        )
        assert links.status_code == 200, links.text
    url = links.json()["items"][0]["signedUrl"]
    assert url.startswith(s3_endpoint)
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == body
    # S3 serves the type the bytes are, whatever the client said.
    assert fetched.headers["content-type"] == "image/jpeg"

"""The dataset-management face (seed 000): datasets, batch uploads and their progress,
items, and binding a dataset to a task."""

from __future__ import annotations

import io
import time
import zipfile

from tests.support.media import jpeg

API = "/api/v1"


def wait_upload(client, headers, upload_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"{API}/datasets/process/{upload_id}", headers=headers).json()
        if body["status"] in ("finished", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(body)


def make_dataset(client, headers, **fields):
    response = client.post(f"{API}/datasets", headers=headers, json={"name": "dogs", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def zipped(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files:
            archive.writestr(name, content)
    return buffer.getvalue()


def test_dataset_crud(client, factory):
    owner, other = factory.user("owner"), factory.user("other")
    headers = factory.headers(owner)
    dataset = make_dataset(
        client, headers, scene="image", annotation_type="object_detection", format="COCO 1.0"
    )
    assert (dataset["status"], dataset["item_count"], dataset["version"]) == ("empty", 0, "0.1")
    url = f"{API}/datasets/{dataset['id']}"
    assert client.get(url, headers=factory.headers(other)).status_code == 404
    patched = client.patch(url, headers=headers, json={"description": "good dogs"}).json()
    assert patched["description"] == "good dogs"
    by_body = client.patch(
        f"{API}/datasets", headers=headers, json={"id": dataset["id"], "version": "0.2"}
    )
    assert by_body.json()["version"] == "0.2"
    listed = client.get(f"{API}/datasets", headers=headers).json()
    assert [d["id"] for d in listed["results"]] == [dataset["id"]]
    assert client.get(f"{API}/datasets", headers=factory.headers(other)).json()["count"] == 0
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404


def test_batch_upload_reports_progress_and_per_file_errors(client, factory):
    owner = factory.user("owner")
    headers = factory.headers(owner)
    dataset = make_dataset(client, headers)
    archive = zipped([("a/1.jpg", jpeg(shade=1)), ("a/2.jpg", jpeg(shade=2))])
    files = [
        ("files", ("pack.zip", archive)),
        ("files", ("3.jpg", jpeg(shade=3))),
        ("files", ("notes.txt", b"not an image")),
    ]
    response = client.post(
        f"{API}/datasets/{dataset['id']}/batchs",
        headers=headers,
        data={"name": "first"},
        files=files,
    )
    assert response.status_code == 202, response.text
    assert response.json()["batch"]["name"] == "first"
    progress = wait_upload(client, headers, response.json()["upload_id"])
    assert progress["status"] == "finished"
    assert (progress["files_total"], progress["files_done"]) == (4, 4)
    assert progress["bytes_done"] == progress["bytes_total"] > 0
    assert [e["file"] for e in progress["errors"]] == ["notes.txt"]

    body = client.get(f"{API}/datasets/{dataset['id']}", headers=headers).json()
    assert (body["item_count"], body["status"]) == (3, "ready")
    items = client.get(
        f"{API}/datas", headers=headers, params={"dataset_id": dataset["id"]}
    ).json()["results"]
    assert sorted(i["name"] for i in items) == ["3.jpg", "a/1.jpg", "a/2.jpg"]
    downloaded = client.get(next(i["url"] for i in items if i["name"] == "3.jpg"))
    assert downloaded.content == jpeg(shade=3)

    again = client.post(
        f"{API}/datasets/{dataset['id']}/batchs",
        headers=headers,
        data={"name": "first"},
        files=[("files", ("4.jpg", jpeg()))],
    )
    assert again.status_code == 400 and "name" in again.json()


def test_a_bound_dataset_cannot_be_deleted(client, factory):
    owner = factory.user("owner")
    headers = factory.headers(owner)
    dataset = make_dataset(client, headers)
    upload = client.post(
        f"{API}/datasets/{dataset['id']}/batchs",
        headers=headers,
        files=[("files", (f"{n}.jpg", jpeg(shade=n))) for n in range(2)],
    )
    wait_upload(client, headers, upload.json()["upload_id"])
    task = client.post(
        f"{API}/tasks", headers=headers, json={"name": "t", "labels": [{"name": "dog"}]}
    ).json()
    bound = client.post(
        f"{API}/tasks/{task['id']}/data",
        headers=headers,
        data={"image_quality": "70", "dataset_ids[0]": str(dataset["id"])},
    )
    assert bound.status_code == 202, bound.text
    deadline = time.monotonic() + 30
    while (
        client.get(f"{API}/tasks/{task['id']}/status", headers=headers).json()["state"]
        != "Finished"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.get(f"{API}/tasks/{task['id']}", headers=headers).json()["size"] == 2
    assert client.delete(f"{API}/datasets/{dataset['id']}", headers=headers).status_code == 409


def test_someone_elses_dataset_cannot_be_bound(client, factory):
    owner, other = factory.user("owner"), factory.user("other")
    dataset = make_dataset(client, factory.headers(other))
    headers = factory.headers(owner)
    task = client.post(f"{API}/tasks", headers=headers, json={"name": "t"}).json()
    response = client.post(
        f"{API}/tasks/{task['id']}/data",
        headers=headers,
        data={"dataset_ids[0]": str(dataset["id"])},
    )
    assert response.status_code == 400 and "dataset_ids" in response.json()


def test_a_batch_name_or_path_with_control_characters_is_refused(client, factory):
    headers = factory.headers(factory.user("owner"))
    dataset = make_dataset(client, headers)
    url = f"{API}/datasets/{dataset['id']}/batchs"
    image = {"files": ("a.jpg", jpeg(), "image/jpeg")}
    for data, named in (
        ({"name": "b\x00"}, "name"),
        ({"server_files[0]": "a\x00.jpg"}, "server_files"),
        ({"remote_files[0]": "https://example.com/a\n.jpg"}, "remote_files"),
    ):
        response = client.post(url, headers=headers, data=data, files=image)
        assert response.status_code == 400 and named in response.json(), response.text
    batches = client.get(f"{API}/datasets/{dataset['id']}", headers=headers).json()
    assert batches["item_count"] == 0

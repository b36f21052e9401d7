"""Spaces: who sees which projects, and seed 004's project fields."""

from __future__ import annotations

from tests.api.platform_v1.conftest import API, Work


def _default_space(work: Work) -> str:
    spaces = work.client.get(f"{API}/spaces", headers=work.as_(work.workers[0])).json()["items"]
    return next(space["id"] for space in spaces if space["default"])


def test_projects_of_the_default_space_have_seed_004s_fields(work: Work):
    space = _default_space(work)
    listed = work.client.get(f"{API}/spaces/{space}/projects", headers=work.as_(work.workers[0]))
    assert listed.status_code == 200
    (project,) = listed.json()["items"]
    assert project["id"] == work.project.uuid
    assert project["spaceID"] == space
    assert set(project) >= {"id", "name", "description", "createdAt", "spaceID", "dataType",
                            "companyID"}  # fmt: skip
    assert project["dataType"] == "image"
    one = work.client.get(
        f"{API}/spaces/{space}/projects/{work.project.uuid}", headers=work.as_(work.workers[0])
    )
    assert one.json() == project


def test_a_space_of_its_own_hides_its_projects_from_non_members(work: Work):
    admin = work.factory.admin()
    space = work.client.post(f"{API}/spaces", json={"name": "acme"}, headers=work.as_(admin))
    assert space.status_code == 201, space.text
    acme = space.json()["id"]
    refused = work.client.post(f"{API}/spaces", json={"name": "x"}, headers=work.as_(work.manager))
    assert refused.status_code == 403

    added = work.client.post(
        f"{API}/spaces/{acme}/members",
        json={"email": work.workers[0].email},
        headers=work.as_(admin),
    )
    assert added.status_code == 201, added.text
    moved = work.client.patch(
        f"{API}/spaces/{_default_space(work)}/projects/{work.project.uuid}",
        json={"spaceID": acme, "description": "streets", "dataType": "image_sequence"},
        headers=work.as_(admin),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["spaceID"] == acme and moved.json()["dataType"] == "image_sequence"

    member, stranger = work.as_(work.workers[0]), work.as_(work.workers[1])
    assert work.client.get(f"{API}/spaces/{acme}/projects", headers=member).status_code == 200
    assert work.client.get(f"{API}/spaces/{acme}/projects", headers=stranger).status_code == 404
    assert work.client.get(f"{work.base}/batches", headers=stranger).status_code == 404
    assert work.client.get(f"{work.base}/batches", headers=member).status_code == 200
    # The old space no longer has it.
    old = work.client.get(f"{API}/spaces/{_default_space(work)}/projects", headers=member).json()
    assert old["items"] == []

    user_uuid = added.json()["id"]
    gone = work.client.delete(f"{API}/spaces/{acme}/members/{user_uuid}", headers=work.as_(admin))
    assert gone.status_code == 204
    assert work.client.get(f"{API}/spaces/{acme}/projects", headers=member).status_code == 404


def test_unknown_and_malformed_ids_are_not_found(work: Work):
    headers = work.as_(work.manager)
    for path in (
        f"{API}/spaces/not-a-uuid/projects",
        f"{API}/spaces/00000000-0000-0000-0000-000000000000/projects",
        f"{API}/projects/00000000-0000-0000-0000-000000000000/batches",
        f"{work.base}/work-items/00000000-0000-0000-0000-000000000000",
        f"{work.base}/work-items/nope",
    ):
        response = work.client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.json()["detail"]

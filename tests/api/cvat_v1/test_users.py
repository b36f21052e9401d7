"""``/api/v1/users``: listing, filters, what each caller sees, changes and removal."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from labelyard.domain import User

USERS = "/api/v1/users"
BASIC_FIELDS = {"url", "id", "username", "first_name", "last_name"}
FULL_FIELDS = BASIC_FIELDS | {
    "email",
    "groups",
    "is_staff",
    "is_superuser",
    "is_active",
    "last_login",
    "date_joined",
}


def user_url(user: User) -> str:
    return f"{USERS}/{user.id}"


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["username"] for row in response.json()["results"]]


def rename(factory, user: User, first: str, last: str) -> None:
    with factory.uow() as uow:
        row = uow.session.get_one(User, user.id)
        row.first_name, row.last_name = first, last
        uow.commit()


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.fixture
def admin(factory) -> User:
    return factory.admin()


# --- listing ----------------------------------------------------------------------


def test_list_needs_credentials(client):
    assert client.get(USERS).status_code == 401


def test_list_is_paginated_ten_a_page(client, factory, admin):
    for n in range(11):
        factory.user(f"user{n:02}")
    first = client.get(USERS, headers=factory.headers(admin))
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 12
    assert len(body["results"]) == 10
    assert body["previous"] is None
    assert body["next"].startswith("http://testserver/api/v1/users?")
    assert query_of(body["next"]) == {"page": ["2"]}

    second = client.get(body["next"], headers=factory.headers(admin)).json()
    assert second["count"] == 12
    assert [u["username"] for u in second["results"]] == ["user09", "user10"]
    assert second["next"] is None
    assert second["previous"] == "http://testserver/api/v1/users"


def test_list_with_page_size(client, factory, admin):
    for n in range(4):
        factory.user(f"user{n}")
    body = client.get(USERS, params={"page_size": 2, "page": 3}, headers=factory.headers(admin))
    assert names(body) == ["user3"]
    assert body.json()["next"] is None
    assert query_of(body.json()["previous"]) == {"page_size": ["2"], "page": ["2"]}


def test_list_page_size_all(client, factory, admin):
    for n in range(12):
        factory.user(f"user{n:02}")
    body = client.get(USERS, params={"page_size": "all"}, headers=factory.headers(admin)).json()
    assert body["count"] == 13
    assert len(body["results"]) == 13
    assert (body["next"], body["previous"]) == (None, None)


def test_list_page_past_the_end_is_not_found(client, factory, admin):
    assert client.get(USERS, params={"page": 2}, headers=factory.headers(admin)).status_code == 404


def test_filter_by_id(client, factory, admin):
    bob = factory.user("bob")
    factory.user("carol")
    assert names(client.get(USERS, params={"id": bob.id}, headers=factory.headers(admin))) == [
        "bob"
    ]


def test_filter_by_username(client, factory, admin):
    factory.user("bob")
    factory.user("bobby")
    response = client.get(USERS, params={"username": "bob"}, headers=factory.headers(admin))
    assert names(response) == ["bob"]


def test_filter_by_is_active(client, factory, admin):
    factory.user("bob")
    factory.user("gone", active=False)
    headers = factory.headers(admin)
    assert names(client.get(USERS, params={"is_active": "false"}, headers=headers)) == ["gone"]
    assert names(client.get(USERS, params={"is_active": "true"}, headers=headers)) == [
        "admin",
        "bob",
    ]


def test_search_matches_username_and_names(client, factory, admin):
    rename(factory, factory.user("bob"), "Robert", "Smith")
    rename(factory, factory.user("carol"), "Carol", "Robinson")
    factory.user("robin")
    factory.user("dave")
    response = client.get(USERS, params={"search": "ROB"}, headers=factory.headers(admin))
    assert names(response) == ["bob", "carol", "robin"]


def test_ordering(client, factory, admin):
    for username in ("mike", "anna", "zoe"):
        factory.user(username)
    headers = factory.headers(admin)
    assert names(client.get(USERS, params={"ordering": "username"}, headers=headers)) == [
        "admin",
        "anna",
        "mike",
        "zoe",
    ]
    assert names(client.get(USERS, params={"ordering": "-username"}, headers=headers)) == [
        "zoe",
        "mike",
        "anna",
        "admin",
    ]


def test_unknown_ordering_is_refused(client, factory, admin):
    response = client.get(USERS, params={"ordering": "password"}, headers=factory.headers(admin))
    assert response.status_code == 400
    assert "ordering" in response.json()


# --- what each caller sees --------------------------------------------------------


def test_admin_lists_full_fields(client, factory, admin):
    factory.user("bob")
    rows = client.get(USERS, headers=factory.headers(admin)).json()["results"]
    assert [set(row) for row in rows] == [FULL_FIELDS, FULL_FIELDS]
    bob = rows[1]
    assert bob["email"] == "bob@example.com"
    assert bob["groups"] == ["user"]
    assert (bob["is_staff"], bob["is_superuser"], bob["is_active"]) == (False, False, True)
    assert bob["url"] == f"http://testserver/api/v1/users/{bob['id']}"


def test_user_lists_basic_fields(client, factory, admin):
    bob = factory.user("bob")
    rows = client.get(USERS, headers=factory.headers(bob)).json()["results"]
    assert [set(row) for row in rows] == [BASIC_FIELDS, BASIC_FIELDS]
    assert rows[0] == {
        "url": f"http://testserver/api/v1/users/{admin.id}",
        "id": admin.id,
        "username": "admin",
        "first_name": "",
        "last_name": "",
    }


def test_self_is_full_for_anyone(client, factory):
    bob = factory.user("bob", groups=("worker",))
    response = client.get(f"{USERS}/self", headers=factory.headers(bob))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == FULL_FIELDS
    assert body["id"] == bob.id
    assert body["username"] == "bob"
    assert body["email"] == "bob@example.com"
    assert body["groups"] == ["worker"]


def test_read_one_user(client, factory, admin):
    bob = factory.user("bob")
    carol = factory.user("carol")
    as_admin = client.get(user_url(bob), headers=factory.headers(admin))
    assert as_admin.status_code == 200
    assert set(as_admin.json()) == FULL_FIELDS
    assert as_admin.json()["username"] == "bob"
    as_other = client.get(user_url(bob), headers=factory.headers(carol))
    assert as_other.status_code == 200
    assert set(as_other.json()) == BASIC_FIELDS
    as_self = client.get(user_url(bob), headers=factory.headers(bob))
    assert set(as_self.json()) == FULL_FIELDS


def test_read_missing_user_is_not_found(client, factory, admin):
    assert client.get(f"{USERS}/99999", headers=factory.headers(admin)).status_code == 404


# --- changes ----------------------------------------------------------------------


def test_user_changes_own_first_name(client, factory):
    bob = factory.user("bob")
    response = client.patch(
        user_url(bob), json={"first_name": "Bobby"}, headers=factory.headers(bob)
    )
    assert response.status_code == 200, response.text
    assert response.json()["first_name"] == "Bobby"
    assert client.get(f"{USERS}/self", headers=factory.headers(bob)).json()["first_name"] == "Bobby"


def test_user_cannot_change_another_user(client, factory):
    bob, carol = factory.user("bob"), factory.user("carol")
    response = client.patch(user_url(carol), json={"first_name": "X"}, headers=factory.headers(bob))
    assert response.status_code == 403
    assert client.get(user_url(carol), headers=factory.headers(carol)).json()["first_name"] == ""


def test_user_cannot_change_own_groups(client, factory):
    bob = factory.user("bob")
    response = client.patch(user_url(bob), json={"groups": ["admin"]}, headers=factory.headers(bob))
    assert response.status_code == 403
    assert client.get(user_url(bob), headers=factory.headers(bob)).json()["groups"] == ["user"]


def test_admin_changes_groups(client, factory, admin):
    bob = factory.user("bob")
    response = client.patch(
        user_url(bob), json={"groups": ["worker"]}, headers=factory.headers(admin)
    )
    assert response.status_code == 200, response.text
    assert response.json()["groups"] == ["worker"]
    assert client.get(f"{USERS}/self", headers=factory.headers(bob)).json()["groups"] == ["worker"]


def test_admin_deactivates_a_user_and_their_token_stops_working(client, factory, admin):
    bob = factory.user("bob")
    assert client.get(f"{USERS}/self", headers=factory.headers(bob)).status_code == 200
    response = client.patch(
        user_url(bob), json={"is_active": False}, headers=factory.headers(admin)
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert client.get(f"{USERS}/self", headers=factory.headers(bob)).status_code == 401


def test_read_only_fields_are_refused(client, factory):
    bob = factory.user("bob")
    response = client.patch(user_url(bob), json={"id": 5}, headers=factory.headers(bob))
    assert response.status_code == 400
    assert response.json()["id"] == ["This field is read-only."]


# --- removal ----------------------------------------------------------------------


def test_admin_deletes_a_user(client, factory, admin):
    bob = factory.user("bob")
    headers = factory.headers(admin)
    response = client.delete(user_url(bob), headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(user_url(bob), headers=headers).status_code == 404
    assert names(client.get(USERS, headers=headers)) == ["admin"]
    assert client.get(f"{USERS}/self", headers=factory.headers(bob)).status_code == 401


def test_user_cannot_delete_users(client, factory, admin):
    bob, carol = factory.user("bob"), factory.user("carol")
    assert client.delete(user_url(carol), headers=factory.headers(bob)).status_code == 403
    assert client.get(user_url(carol), headers=factory.headers(admin)).status_code == 200


def test_tasks_of_a_deleted_user_stay_without_owner(client, factory, admin):
    bob = factory.user("bob")
    task = factory.task(bob, "bob's task")
    headers = factory.headers(admin)
    assert client.get(f"/api/v1/tasks/{task.id}", headers=headers).json()["owner"]["id"] == bob.id
    assert client.delete(user_url(bob), headers=headers).status_code == 204
    response = client.get(f"/api/v1/tasks/{task.id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["name"] == "bob's task"
    assert response.json()["owner"] is None


def test_admin_cannot_delete_themself(client, factory, admin):
    response = client.delete(user_url(admin), headers=factory.headers(admin))
    assert response.status_code == 400
    assert response.json()["id"] == ["An admin cannot delete their own account."]
    assert client.get(f"{USERS}/self", headers=factory.headers(admin)).status_code == 200

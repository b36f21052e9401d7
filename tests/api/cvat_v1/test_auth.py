"""``/api/v1/auth``: login, logout, register, password change, and the three ways a
request authenticates (token, HTTP Basic, session cookie + CSRF)."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from labelyard.app import create_app
from labelyard.domain import User
from tests.factories import PASSWORD

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
REGISTER = "/api/v1/auth/register"
PASSWORD_CHANGE = "/api/v1/auth/password/change"
SELF = "/api/v1/users/self"
KEY_RE = re.compile(r"[0-9a-f]{40}")
BAD_LOGIN = ["Unable to log in with provided credentials."]
NEW_PASSWORD = "Tr0ub4dor&3-zebra"


def login(client: TestClient, username: str, password: str = PASSWORD, *, form: bool = False):
    body = {"username": username, "password": password}
    return client.post(LOGIN, data=body) if form else client.post(LOGIN, json=body)


def token_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


def registration(username: str = "newbie", **changes: str) -> dict[str, str]:
    form = {
        "username": username,
        "first_name": "New",
        "last_name": "Bie",
        "email": f"{username}@example.org",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    return form | changes


def stored_hash(session_factory, username: str) -> str:
    with session_factory() as session:
        return session.scalar(select(User.password_hash).where(User.username == username))


# --- login ------------------------------------------------------------------------


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_login_answers_a_token_key_and_sets_cookies(client, factory, form):
    factory.user("alice")
    response = login(client, "alice", form=form)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["key"]
    assert KEY_RE.fullmatch(response.json()["key"])
    assert response.cookies.get("sessionid")
    assert response.cookies.get("csrftoken")


def test_session_cookies_are_lax_and_the_session_is_http_only(client, factory):
    factory.user("alice")
    set_cookies = login(client, "alice").headers.get_list("set-cookie")
    cookies = {line.split("=", 1)[0]: line.lower() for line in set_cookies}
    assert "samesite=lax" in cookies["sessionid"] and "httponly" in cookies["sessionid"]
    # The client reads the CSRF cookie to send it back as X-CSRFToken.
    assert "samesite=lax" in cookies["csrftoken"] and "httponly" not in cookies["csrftoken"]


def test_login_by_email(client, factory):
    factory.user("alice", email="alice@corp.example")
    response = login(client, "alice@corp.example")
    assert response.status_code == 200, response.text
    me = client.get(SELF, headers=token_headers(response.json()["key"]))
    assert me.json()["username"] == "alice"


def test_login_by_email_as_form(client, factory):
    factory.user("alice", email="alice@corp.example")
    response = client.post(LOGIN, data={"email": "alice@corp.example", "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert KEY_RE.fullmatch(response.json()["key"])


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong-password-123"), ("nobody", PASSWORD), ("sleepy", PASSWORD)],
    ids=["wrong-password", "unknown-user", "inactive-user"],
)
def test_login_refused(client, factory, username, password):
    factory.user("alice")
    factory.user("sleepy", active=False)
    response = login(client, username, password)
    assert response.status_code == 400
    body = response.json()
    assert body["non_field_errors"] == BAD_LOGIN
    assert BAD_LOGIN[0] in body["detail"]
    assert "sessionid" not in response.cookies


def test_login_key_authenticates_with_token_header(client, factory):
    factory.user("alice")
    key = login(client, "alice").json()["key"]
    client.cookies.clear()
    response = client.get(SELF, headers=token_headers(key))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_unknown_token_is_refused(client, factory):
    factory.user("alice")
    response = client.get(SELF, headers=token_headers("0" * 40))
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_no_credentials_is_refused(client):
    response = client.get(SELF)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


# --- HTTP Basic -------------------------------------------------------------------


def test_http_basic_authenticates(client, factory):
    factory.user("alice")
    response = client.get(SELF, auth=("alice", PASSWORD))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


@pytest.mark.parametrize(
    "credentials", [("alice", "wrong-password-123"), ("nobody", PASSWORD)], ids=["bad", "unknown"]
)
def test_bad_http_basic_is_refused(client, factory, credentials):
    factory.user("alice")
    response = client.get(SELF, auth=credentials)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid username/password."}


def test_garbled_http_basic_header_is_refused(client, factory):
    response = client.get(SELF, headers={"Authorization": "Basic !!!not-base64"})
    assert response.status_code == 401


# --- session cookie and CSRF ------------------------------------------------------


def test_session_cookie_authenticates_safe_requests(client, factory):
    factory.user("alice")
    login(client, "alice")
    response = client.get(SELF)
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_unsafe_request_with_session_needs_csrf_header(client, factory):
    user = factory.user("alice")
    login(client, "alice")
    url = f"/api/v1/users/{user.id}"
    missing = client.patch(url, json={"first_name": "Al"})
    assert missing.status_code == 403
    assert missing.json() == {"detail": "CSRF Failed: CSRF token missing or incorrect."}
    wrong = client.patch(url, json={"first_name": "Al"}, headers={"X-CSRFToken": "f" * 64})
    assert wrong.status_code == 403
    csrf = client.cookies["csrftoken"]
    right = client.patch(url, json={"first_name": "Al"}, headers={"X-CSRFToken": csrf})
    assert right.status_code == 200, right.text
    assert right.json()["first_name"] == "Al"


def test_post_with_session_needs_csrf_header(client, factory):
    factory.user("alice")
    login(client, "alice")
    event = {"name": "Load job", "time": "2021-05-06T01:57:35.495Z"}
    assert client.post("/api/v1/server/logs", json=[event]).status_code == 403
    csrf = {"X-CSRFToken": client.cookies["csrftoken"]}
    assert client.post("/api/v1/server/logs", json=[event], headers=csrf).status_code == 201


def test_session_of_a_deactivated_user_stops_working(client, factory):
    user = factory.user("alice")
    login(client, "alice")
    admin = factory.admin()
    deactivate = {"is_active": False}
    url = f"/api/v1/users/{user.id}"
    assert client.patch(url, json=deactivate, headers=factory.headers(admin)).status_code == 200
    assert client.get(SELF).status_code == 401


# --- logout -----------------------------------------------------------------------


def test_logout_revokes_the_token(client, factory):
    factory.user("alice")
    key = login(client, "alice").json()["key"]
    client.cookies.clear()
    response = client.post(LOGOUT, headers=token_headers(key))
    assert response.status_code == 200
    assert response.json() == {"detail": "Successfully logged out."}
    assert client.get(SELF, headers=token_headers(key)).status_code == 401


def test_logout_ends_the_session(client, factory):
    factory.user("alice")
    login(client, "alice")
    session_id = client.cookies["sessionid"]
    response = client.post(LOGOUT)
    assert response.status_code == 200
    assert response.json() == {"detail": "Successfully logged out."}
    client.cookies.clear()
    client.cookies.set("sessionid", session_id)
    assert client.get(SELF).status_code == 401


def test_logout_leaves_other_tokens_working(client, factory):
    user = factory.user("alice")
    key = login(client, "alice").json()["key"]
    client.cookies.clear()
    client.post(LOGOUT, headers=token_headers(key))
    assert client.get(SELF, headers=factory.headers(user)).status_code == 200


# --- register ---------------------------------------------------------------------


def test_register_creates_a_user_in_group_user(client):
    response = client.post(REGISTER, json=registration())
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    assert KEY_RE.fullmatch(key)
    assert response.cookies.get("sessionid")
    me = client.get(SELF, headers=token_headers(key)).json()
    assert (me["username"], me["first_name"], me["last_name"]) == ("newbie", "New", "Bie")
    assert me["email"] == "newbie@example.org"
    assert me["groups"] == ["user"]
    assert (me["is_staff"], me["is_superuser"], me["is_active"]) == (False, False, True)


def test_register_with_a_form_body(client):
    response = client.post(REGISTER, data=registration("formuser"))
    assert response.status_code == 201, response.text
    assert login(client, "formuser", NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize("taken", ["alice", "ALICE", "Alice"])
def test_register_refuses_a_taken_username(client, factory, taken):
    factory.user("alice")
    response = client.post(REGISTER, json=registration(taken))
    assert response.status_code == 400
    assert response.json()["username"] == ["A user with that username already exists."]


def test_register_refuses_mismatched_passwords(client):
    response = client.post(REGISTER, json=registration(password2="Different-pass-42"))
    assert response.status_code == 400
    assert response.json()["password2"] == ["The two password fields didn't match."]


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Sh0rt!", "This password is too short. It must contain at least 8 characters."),
        ("80417263951", "This password is entirely numeric."),
        ("password123", "This password is too common."),
        ("newbie-2024x", "The password is too similar to the username or email."),
    ],
    ids=["short", "numeric", "common", "like-username"],
)
def test_register_refuses_weak_passwords(client, password, problem):
    response = client.post(REGISTER, json=registration(password1=password, password2=password))
    assert response.status_code == 400
    assert problem in response.json()["password1"]
    assert "detail" in response.json()


def test_register_when_closed_is_forbidden(app, settings, engine):
    closed = create_app(settings.model_copy(update={"allow_registration": False}), engine=engine)
    with TestClient(closed) as client:
        response = client.post(REGISTER, json=registration())
        assert response.status_code == 403
        assert response.json() == {"detail": "Registration is closed on this server."}
        assert login(client, "newbie", NEW_PASSWORD).status_code == 400


# --- passwords --------------------------------------------------------------------


def change(client, headers, old=PASSWORD, new1=NEW_PASSWORD, new2=NEW_PASSWORD):
    body = {"old_password": old, "new_password1": new1, "new_password2": new2}
    return client.post(PASSWORD_CHANGE, json=body, headers=headers)


def test_password_change_refuses_a_wrong_old_password(client, factory):
    headers = factory.headers(factory.user("alice"))
    response = change(client, headers, old="not-my-password-1")
    assert response.status_code == 400
    assert response.json()["old_password"] == [
        "Your old password was entered incorrectly. Please enter it again."
    ]
    assert login(client, "alice").status_code == 200


def test_password_change_refuses_mismatched_new_passwords(client, factory):
    headers = factory.headers(factory.user("alice"))
    response = change(client, headers, new2="Another-pass-77")
    assert response.status_code == 400
    assert response.json()["new_password2"] == ["The two password fields didn't match."]
    assert login(client, "alice", NEW_PASSWORD).status_code == 400


def test_password_change_then_only_the_new_password_logs_in(client, factory):
    headers = factory.headers(factory.user("alice"))
    response = change(client, headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"detail": "New password has been saved."}
    client.cookies.clear()
    assert login(client, "alice", PASSWORD).status_code == 400
    assert login(client, "alice", NEW_PASSWORD).status_code == 200
    assert client.get(SELF, auth=("alice", PASSWORD)).status_code == 401


def test_password_change_needs_credentials(client):
    assert change(client, {}).status_code == 401


def test_passwords_are_stored_as_argon2_hashes(client, factory, session_factory):
    assert client.post(REGISTER, json=registration()).status_code == 201
    headers = factory.headers(factory.user("alice"))
    assert change(client, headers).status_code == 200
    for username, password in (("newbie", NEW_PASSWORD), ("alice", NEW_PASSWORD)):
        stored = stored_hash(session_factory, username)
        assert stored.startswith("$argon2id$")
        assert password not in stored
        assert PasswordHasher().verify(stored, password)

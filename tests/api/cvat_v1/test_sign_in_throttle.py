"""Password guessing is throttled: failed logins and HTTP Basic credentials count per
user name and per client address; over the limit, 429 with Retry-After, whatever the
password; a success forgets the user name's failures; the counts hold across server
processes (the database, or Redis)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from labelyard.app import create_app
from tests.factories import PASSWORD

LOGIN = "/api/v1/auth/login"
SELF = "/api/v1/users/self"
LIMIT = 10


@pytest.fixture
def clients(app, settings, engine) -> Iterator:
    """``clients(address, **settings)``: a client whose requests come from ``address``,
    of the test's server, or with settings changed, of another server process (an app
    over the same database)."""
    others = []

    def make(address: str = "192.0.2.1", **changes) -> TestClient:
        served = app
        if changes:
            served = create_app(settings.model_copy(update=changes), engine)
            others.append(served)
        return TestClient(served, client=(address, 40000))

    yield make
    for other in others:
        other.state.runner.shutdown()


def login(client: TestClient, username: str, password: str):
    return client.post(LOGIN, json={"username": username, "password": password})


def basic(client: TestClient, username: str, password: str):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return client.get(SELF, headers={"Authorization": f"Basic {token}"})


def test_ten_wrong_passwords_then_429_even_for_the_right_one(clients, factory):
    factory.user("alice")
    client = clients()
    for _ in range(LIMIT):
        assert login(client, "alice", "guess").status_code == 400
    refused = login(client, "alice", PASSWORD)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 300
    assert "try again" in refused.json()["detail"]
    # Basic credentials are the same sign-in.
    assert basic(client, "alice", PASSWORD).status_code == 429


def test_a_success_forgets_the_user_names_failures(clients, factory):
    factory.user("alice")
    for round_ in range(3):
        # From a new address each round: the address's own count is not forgotten.
        client = clients(f"198.51.100.{round_}")
        for _ in range(LIMIT - 1):
            assert login(client, "alice", "guess").status_code == 400
        assert login(client, "alice", PASSWORD).status_code == 200


def test_failures_count_per_user_name_from_any_address(clients, factory):
    factory.user("alice")
    factory.user("bob")
    for n in range(LIMIT):
        assert basic(clients(f"203.0.113.{n}"), "ALICE", "guess").status_code == 401
    assert login(clients("203.0.113.200"), "alice", PASSWORD).status_code == 429
    # Another user, from an address that did not guess, is not held up.
    assert login(clients("203.0.113.201"), "bob", PASSWORD).status_code == 200


def test_failures_count_per_address_for_any_user_name(clients, factory):
    factory.user("alice")
    guesser = clients("192.0.2.66")
    for n in range(LIMIT):
        assert login(guesser, f"user{n}", "guess").status_code == 400
    assert login(guesser, "alice", PASSWORD).status_code == 429
    assert login(clients("192.0.2.67"), "alice", PASSWORD).status_code == 200


def test_the_counts_hold_across_server_processes(clients, factory):
    factory.user("alice")
    first = clients("192.0.2.10", operation_workers=1)
    second = clients("192.0.2.10", operation_workers=1)
    assert first.app is not second.app
    for _ in range(LIMIT):
        assert login(first, "alice", "guess").status_code == 400
    assert login(second, "alice", PASSWORD).status_code == 429


def test_the_counts_hold_across_processes_on_redis(clients, factory, redis_url):
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    factory.user("alice")
    first = clients("192.0.2.20", redis_url=redis_url)
    second = clients("192.0.2.20", redis_url=redis_url)
    for _ in range(LIMIT):
        assert login(first, "alice", "guess").status_code == 400
    assert login(second, "alice", PASSWORD).status_code == 429
    # Kept in Redis, not in the database: a server without Redis knows nothing of them.
    assert login(clients("192.0.2.20"), "alice", PASSWORD).status_code == 200


def test_failures_leave_the_window_and_a_limit_of_0_turns_it_off(clients, factory):
    factory.user("alice")
    quick = clients("192.0.2.30", sign_in_failure_limit=2, sign_in_failure_window_seconds=1)
    for _ in range(2):
        assert login(quick, "alice", "guess").status_code == 400
    refused = login(quick, "alice", PASSWORD)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    time.sleep(1.1)
    assert login(quick, "alice", PASSWORD).status_code == 200
    off = clients("192.0.2.31", sign_in_failure_limit=0)
    for _ in range(LIMIT + 2):
        assert login(off, "alice", "guess").status_code == 400
    assert login(off, "alice", PASSWORD).status_code == 200

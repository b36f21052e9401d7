"""Password guessing, slowed down: failed sign-ins (logins and HTTP Basic credentials)
are counted per login name and per client address over a sliding window; once either
reaches the limit, sign-ins under it are refused (429 with ``Retry-After``) without
checking the password, until the oldest counted failure leaves the window. A success
forgets the login name's failures (not the address's: one good password must not reset
a guesser's count).

The counts live where every server process sees them: in the database, or in Redis
when one is configured."""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from redis import Redis
from sqlalchemy import delete, insert, select

from labelyard.domain import SignInFailure
from labelyard.services.errors import LabelyardError
from labelyard.services.uow import UnitOfWork

KEY_MAX = 300


class Throttled(LabelyardError):
    """Too many failed sign-ins (429); ``retry_after`` is in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-ins from this address or for this user: try again in "
            f"{retry_after} seconds."
        )
        self.retry_after = retry_after


class FailureStore(Protocol):
    """Where failures are counted; each key is one thing they count against. The store
    works in the request's unit of work, which has not written anything yet: a second
    writer's transaction would wait for the request's own on SQLite."""

    def times(self, uow: UnitOfWork, keys: list[str], since: float) -> dict[str, list[float]]:
        """The failures of each key at ``since`` (a Unix time) or later, oldest first."""

    def add(self, uow: UnitOfWork, keys: list[str], at: float, window: float) -> None:
        """Count a failure against each key (committed, whatever the request does
        next); forget those older than ``window``."""

    def forget(self, uow: UnitOfWork, key: str) -> None:
        """Forget every failure of ``key``."""


class DatabaseFailures:
    """Failures as rows of ``sign_in_failures``."""

    def times(self, uow: UnitOfWork, keys: list[str], since: float) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {key: [] for key in keys}
        rows = uow.session.execute(
            select(SignInFailure.key, SignInFailure.failed_at)
            .where(SignInFailure.key.in_(keys), SignInFailure.failed_at >= _moment(since))
            .order_by(SignInFailure.failed_at)
        )
        for key, failed_at in rows:
            found[key].append(failed_at.timestamp())
        return found

    def add(self, uow: UnitOfWork, keys: list[str], at: float, window: float) -> None:
        uow.start_writing()
        uow.session.execute(
            delete(SignInFailure).where(SignInFailure.failed_at < _moment(at - window))
        )
        uow.session.execute(
            insert(SignInFailure), [{"key": key, "failed_at": _moment(at)} for key in keys]
        )
        uow.commit_and_continue()

    def forget(self, uow: UnitOfWork, key: str) -> None:
        uow.start_writing()
        uow.session.execute(delete(SignInFailure).where(SignInFailure.key == key))
        uow.commit_and_continue()


class RedisFailures:
    """Failures as members of a sorted set per key, scored by their time."""

    PREFIX = "labelyard:sign-in-failures:"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def times(self, uow: UnitOfWork, keys: list[str], since: float) -> dict[str, list[float]]:
        pipe = self.redis.pipeline()
        for key in keys:
            pipe.zrangebyscore(self.PREFIX + key, since, "+inf", withscores=True)
        answers = pipe.execute()
        return {
            key: [score for _, score in found] for key, found in zip(keys, answers, strict=True)
        }

    def add(self, uow: UnitOfWork, keys: list[str], at: float, window: float) -> None:
        pipe = self.redis.pipeline()
        for key in keys:
            name = self.PREFIX + key
            pipe.zadd(name, {uuid.uuid4().hex: at})
            pipe.zremrangebyscore(name, "-inf", at - window)
            pipe.expire(name, math.ceil(window))
        pipe.execute()

    def forget(self, uow: UnitOfWork, key: str) -> None:
        self.redis.delete(self.PREFIX + key)


@dataclass
class SignInThrottle:
    """``limit`` failures per key within ``window`` seconds; a limit of 0 turns it off."""

    store: FailureStore
    limit: int = 10
    window: float = 300.0

    def check(self, uow: UnitOfWork, login: str, address: str) -> bool:
        """Raise Throttled while the login name or the address is over its limit; else
        whether the login name has failures a success would forget."""
        if self.limit <= 0:
            return False
        now = time.time()
        keys = _keys(login, address)
        found = self.store.times(uow, keys, now - self.window)
        waits = [
            times[-self.limit] + self.window - now
            for times in found.values()
            if len(times) >= self.limit
        ]
        if waits:
            raise Throttled(max(1, math.ceil(max(waits))))
        return bool(found[keys[0]])

    def failed(self, uow: UnitOfWork, login: str, address: str) -> None:
        if self.limit > 0:
            self.store.add(uow, _keys(login, address), time.time(), self.window)

    def succeeded(self, uow: UnitOfWork, login: str) -> None:
        if self.limit > 0:
            self.store.forget(uow, _user_key(login))


def _keys(login: str, address: str) -> list[str]:
    return [_user_key(login), f"address:{address}"[:KEY_MAX]]


def _user_key(login: str) -> str:
    # Logins match case-insensitively (services/auth.py): so do their failures.
    return f"user:{login.strip().lower()}"[:KEY_MAX]


def _moment(unix_time: float) -> datetime:
    return datetime.fromtimestamp(unix_time, UTC)

"""Signing in and out, registering, tokens, sessions and passwords."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, delete, func, or_, select

from labelyard.domain import ApiToken, BrowserSession, Group, User, UserGroup, utcnow
from labelyard.services.errors import FieldErrors, InvalidInput, PermissionDenied
from labelyard.services.passwords import hash_password, password_problems, verify_password
from labelyard.services.throttle import SignInThrottle
from labelyard.services.uow import UnitOfWork

USERNAME_RE = re.compile(r"^[\w.@+-]+$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token_key() -> str:
    """40 hex characters, the shape of a Django REST framework token key."""
    return secrets.token_hex(20)


@dataclass(frozen=True)
class SignIn:
    user: User
    token_key: str
    session_key: str
    csrf_token: str


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(min_length=1, max_length=150)
    first_name: str = Field(default="", max_length=150)
    last_name: str = Field(default="", max_length=150)
    email: str = Field(default="", max_length=254)
    password1: str = Field(min_length=1, max_length=128)
    password2: str = Field(min_length=1, max_length=128)
    # CVAT's registration form sends the user agreements it accepted.
    confirmations: list[dict[str, object]] = Field(default_factory=list)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old_password: str = Field(min_length=1, max_length=128)
    new_password1: str = Field(min_length=1, max_length=128)
    new_password2: str = Field(min_length=1, max_length=128)


def find_user_by_login(uow: UnitOfWork, login: str) -> User | None:
    """A username (case-insensitive, as Django's backends match it) or an email."""
    login = login.strip()
    users = uow.session.scalars(
        select(User).where(
            or_(func.lower(User.username) == login.lower(), func.lower(User.email) == login.lower())
        )
    ).all()
    exact = [u for u in users if u.username == login]
    if exact:
        return exact[0]
    by_name = [u for u in users if u.username.lower() == login.lower()]
    if by_name:
        return by_name[0]
    return users[0] if len(users) == 1 else None


def check_credentials(uow: UnitOfWork, login: str, password: str) -> User | None:
    user = find_user_by_login(uow, login)
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        return None
    return user


def throttled_credentials(
    uow: UnitOfWork, throttle: SignInThrottle, login: str, password: str, address: str
) -> User | None:
    """``check_credentials``, counting failures against the login name and the client's
    address; Throttled, without a look at the password, while either is over its limit."""
    had_failures = throttle.check(uow, login, address)
    user = check_credentials(uow, login, password)
    if user is None:
        throttle.failed(uow, login, address)
    elif had_failures:
        throttle.succeeded(uow, login)
    return user


def sign_in(
    uow: UnitOfWork,
    login: str,
    password: str,
    *,
    session_days: int,
    throttle: SignInThrottle,
    address: str,
) -> SignIn:
    user = throttled_credentials(uow, throttle, login, password, address)
    if user is None:
        raise InvalidInput({"non_field_errors": ["Unable to log in with provided credentials."]})
    user.last_login = utcnow()
    sign = _open(uow, user, session_days)
    uow.commit()
    return sign


def _open(uow: UnitOfWork, user: User, session_days: int) -> SignIn:
    token_key, session_key, csrf = new_token_key(), secrets.token_urlsafe(32), secrets.token_hex(32)
    uow.session.add(ApiToken(user_id=user.id, key_hash=_digest(token_key)))
    uow.session.add(
        BrowserSession(
            user_id=user.id,
            key_hash=_digest(session_key),
            csrf_token=csrf,
            expires=utcnow() + timedelta(days=session_days),
        )
    )
    return SignIn(user, token_key, session_key, csrf)


def sign_out(uow: UnitOfWork, *, token_key: str | None, session_key: str | None) -> None:
    if token_key:
        uow.session.execute(delete(ApiToken).where(ApiToken.key_hash == _digest(token_key)))
    if session_key:
        uow.session.execute(
            delete(BrowserSession).where(BrowserSession.key_hash == _digest(session_key))
        )
    uow.commit()


def user_by_token(uow: UnitOfWork, key: str) -> User | None:
    token = uow.session.scalar(select(ApiToken).where(ApiToken.key_hash == _digest(key)))
    return token.user if token is not None else None


_TOKEN_HOLDER = (
    select(User.id, User.is_active, User.is_superuser, UserGroup.name)
    .select_from(ApiToken)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(UserGroup, UserGroup.user_id == User.id)
    .where(ApiToken.key_hash == bindparam("key_hash"))
)


@dataclass(frozen=True)
class TokenHolder:
    """What a request needs of the user behind a token: one statement, no objects."""

    id: int
    is_active: bool
    is_superuser: bool
    groups: tuple[str, ...]


def token_holder(uow: UnitOfWork, key: str) -> TokenHolder | None:
    rows = uow.session.connection().execute(_TOKEN_HOLDER, {"key_hash": _digest(key)}).all()
    if not rows:
        return None
    first = rows[0]
    groups = tuple(sorted(row.name for row in rows if row.name is not None))
    return TokenHolder(first.id, first.is_active, first.is_superuser, groups)


def session_by_key(uow: UnitOfWork, key: str) -> BrowserSession | None:
    browser_session = uow.session.scalar(
        select(BrowserSession).where(BrowserSession.key_hash == _digest(key))
    )
    if browser_session is None or browser_session.expires <= utcnow():
        return None
    return browser_session


def register(
    uow: UnitOfWork, form: Registration, *, default_groups: list[str], session_days: int
) -> SignIn:
    errors = FieldErrors()
    if not USERNAME_RE.match(form.username):
        errors.add(
            "username",
            "Enter a valid username. This value may contain only letters, numbers, "
            "and @/./+/-/_ characters.",
        )
    elif uow.session.scalar(
        select(User.id).where(func.lower(User.username) == form.username.lower())
    ):
        errors.add("username", "A user with that username already exists.")
    if form.email:
        if not EMAIL_RE.match(form.email):
            errors.add("email", "Enter a valid email address.")
        elif uow.session.scalar(
            select(User.id).where(func.lower(User.email) == form.email.lower())
        ):
            errors.add("email", "A user is already registered with this e-mail address.")
    if form.password1 != form.password2:
        errors.add("password2", "The two password fields didn't match.")
    for problem in password_problems(form.password1, username=form.username, email=form.email):
        errors.add("password1", problem)
    errors.raise_if_any()

    user = User(
        username=form.username,
        email=form.email,
        first_name=form.first_name,
        last_name=form.last_name,
        password_hash=hash_password(form.password1),
        last_login=utcnow(),
    )
    user.set_groups([g for g in default_groups if g in set(Group)])
    uow.session.add(user)
    uow.flush()
    sign = _open(uow, user, session_days)
    uow.commit()
    return sign


def change_password(uow: UnitOfWork, user: User, form: PasswordChange) -> None:
    errors = FieldErrors()
    if not verify_password(user.password_hash, form.old_password):
        errors.add(
            "old_password", "Your old password was entered incorrectly. Please enter it again."
        )
    if form.new_password1 != form.new_password2:
        errors.add("new_password2", "The two password fields didn't match.")
    for problem in password_problems(form.new_password1, username=user.username, email=user.email):
        errors.add("new_password1", problem)
    errors.raise_if_any()
    user.password_hash = hash_password(form.new_password1)
    uow.commit()


def create_superuser(uow: UnitOfWork, *, username: str, email: str, password: str) -> User:
    if not USERNAME_RE.match(username):
        raise InvalidInput.on("username", "Enter a valid username.")
    if uow.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise InvalidInput.on("username", "A user with that username already exists.")
    if not password:
        raise InvalidInput.on("password", "This field may not be blank.")
    user = User(
        username=username,
        email=email,
        password_hash=hash_password(password),
        is_staff=True,
        is_superuser=True,
    )
    user.set_groups([Group.ADMIN])
    uow.session.add(user)
    uow.commit()
    return user


def ensure_first_admin(
    uow: UnitOfWork, *, username: str, email: str, password: str | None
) -> str | None:
    """On an empty database, create the first admin. Returns the password when it had to
    be generated (the caller prints it once; only its hash is stored)."""
    if uow.session.scalar(select(func.count()).select_from(User)):
        return None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    create_superuser(uow, username=username, email=email, password=password)
    return generated


def require_active(user: User) -> None:
    if not user.is_active:
        raise PermissionDenied("User inactive or deleted.")

"""Password hashing (argon2id) and the rules a new password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_LENGTH = 8
# The most common passwords in published breach lists; enough to stop the obvious ones.
COMMON_PASSWORDS = frozenset(
    (
        "password", "password1", "password123", "12345678", "123456789", "1234567890",
        "qwerty123", "qwertyuiop", "iloveyou", "sunshine", "princess", "football",
        "baseball", "welcome", "abc12345", "admin123", "letmein1", "11111111", "00000000",
        "trustno1", "passw0rd", "superman", "starwars", "whatever", "dragon123",
        "monkey123", "changeme", "labelyard",
    )
)  # fmt: skip


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problems(password: str, *, username: str = "", email: str = "") -> list[str]:
    """What is wrong with ``password``, in the words Django's validators use."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(
            f"This password is too short. It must contain at least {MIN_LENGTH} characters."
        )
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    if password.lower() in COMMON_PASSWORDS:
        problems.append("This password is too common.")
    lowered = password.lower()
    for value in (username, email.split("@")[0] if email else ""):
        if value and len(value) >= 3 and (value.lower() in lowered or lowered in value.lower()):
            problems.append("The password is too similar to the username or email.")
            break
    return problems

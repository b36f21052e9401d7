"""Signed media URLs (the local backend's reads, the work face's uploads), and the server
secret they are signed with."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from labelyard.adapters.storage.base import check_key
from labelyard.config import Settings

SECRET_FILE = "secret_key"
SIGNATURE_HEX_LENGTH = 64  # SHA-256
MAX_EXPIRES_DIGITS = 12  # far beyond any real expiry; refuses absurd numbers cheaply
READ = "read"  # the action of every media link; others (such as "upload") are named


class UrlSigner:
    """HMAC-SHA256 signatures that let whoever holds a URL read one object until it expires,
    or do another ``action`` with it (``"upload"``: store it, once).

    The signature covers the key, the expiry, the download filename and the action together,
    so none of them can be changed, added or dropped without invalidating it: a link to read
    an object never uploads one, and the other way round.
    """

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("A URL signer needs a non-empty secret.")
        self._secret = secret
        self._clock = clock

    def sign(
        self, key: str, expires_at: int, filename: str | None = None, *, action: str = READ
    ) -> str:
        """The hex signature of ``action`` on ``key`` until ``expires_at`` (Unix seconds)."""
        check_key(key)
        if not isinstance(action, str) or not action:
            raise ValueError("A signed action must be a non-empty string.")
        fields: list[object] = ["labelyard-media-v1", key, int(expires_at), filename]
        # Read links were signed before there were other actions: their text stays as it
        # was, so links already handed out stay valid; any other action is a fifth field.
        if action != READ:
            fields.append(action)
        # JSON keeps the fields apart whatever characters the filename holds.
        canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        return hmac.new(self._secret, canonical.encode("utf-8"), hashlib.sha256).hexdigest()

    def query(
        self, key: str, expires_in: int, filename: str | None = None, *, action: str = READ
    ) -> dict[str, str]:
        """The query parameters of a URL for ``key`` valid for ``expires_in`` seconds."""
        expires_at = int(self._clock()) + int(expires_in)
        signature = self.sign(key, expires_at, filename, action=action)
        params = {"expires": str(expires_at), "signature": signature}
        if filename is not None:
            params["filename"] = filename
        return params

    def verify(
        self,
        key: str,
        expires: str | int,
        signature: str,
        filename: str | None = None,
        *,
        action: str = READ,
    ) -> bool:
        """Whether ``signature`` was made by :meth:`sign` for exactly these values and the
        expiry has not passed. Malformed input is simply not valid (False), never an error."""
        if isinstance(expires, str):
            if not (expires.isascii() and expires.isdigit() and len(expires) <= MAX_EXPIRES_DIGITS):
                return False
            expires = int(expires)
        if isinstance(expires, bool) or not isinstance(expires, int) or expires < 0:
            return False
        if not isinstance(signature, str) or len(signature) != SIGNATURE_HEX_LENGTH:
            return False
        if not signature.isascii():  # compare_digest refuses non-ASCII str
            return False
        if self._clock() > expires:
            return False
        try:
            expected = self.sign(key, expires, filename, action=action)
        except ValueError:  # a bad key (InvalidKey) or action
            return False
        return hmac.compare_digest(expected, signature)


def load_or_create_secret(settings: Settings) -> bytes:
    """The server secret: ``settings.secret_key`` when set, else the one kept in
    ``<data_dir>/secret_key``, created on first use (32 random bytes, hex, mode 0600).

    The file holds text, so its content can later be moved into ``LABELYARD_SECRET_KEY``
    and the URLs already handed out stay valid.
    """
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        _create_secret_file(path)
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        raise ValueError(f"{path} is empty: delete it to make a new secret, or fill it in.")
    return secret.encode("utf-8")


def _create_secret_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(secrets.token_hex(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        # A link fails when the name exists: of several processes starting together, one
        # secret wins and the others read it, and nobody ever sees a half-written file.
        with suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)

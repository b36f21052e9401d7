"""The one error the media adapter raises for bad input."""

from __future__ import annotations

import os
from pathlib import PurePath


class MediaError(Exception):
    """A file cannot be used as media; the message names the file, e.g.
    ``"broken.jpg: the image is truncated"``.

    Only the file's base name is shown, so messages are safe to return to API clients
    without revealing server paths.
    """

    def __init__(self, file: str | os.PathLike[str], reason: str) -> None:
        self.file = PurePath(os.fspath(file)).name or os.fspath(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")

"""The order of a task's frames: CVAT's ``sorting_method``."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Literal

SortingMethod = Literal["lexicographical", "natural", "predefined", "random"]
SORTING_METHODS: tuple[SortingMethod, ...] = ("lexicographical", "natural", "predefined", "random")

_DIGITS = re.compile(r"([0-9]+)")


def sort_names(
    names: Iterable[str], method: SortingMethod, *, seed: int | str | None = None
) -> list[str]:
    """``names`` in the order of ``method``:

    - ``lexicographical``: by code point (``img10`` before ``img2``);
    - ``natural``: numbers by value and letters regardless of case, folder by folder
      (``img2`` before ``img10``), as a file browser shows them;
    - ``predefined``: as given;
    - ``random``: shuffled; the same ``seed`` gives the same order for the same names,
      whatever order they come in.
    """
    listed = list(names)
    if method == "lexicographical":
        return sorted(listed)
    if method == "natural":
        return sorted(listed, key=_natural_key)
    if method == "predefined":
        return listed
    if method == "random":
        shuffled = sorted(listed)
        random.Random(seed).shuffle(shuffled)
        return shuffled
    raise ValueError(f"unknown sorting method {method!r}; expected one of {SORTING_METHODS}")


def _natural_key(name: str) -> tuple[tuple[tuple[str | int, ...], ...], str]:
    # re.split with a group alternates text and digits, starting with text, so positions
    # hold the same type in every key. The name itself breaks ties ("a01" vs "a1").
    folders = tuple(
        tuple(
            int(piece) if index % 2 else piece.casefold()
            for index, piece in enumerate(_DIGITS.split(part))
        )
        for part in name.replace("\\", "/").split("/")
    )
    return folders, name

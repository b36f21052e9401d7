"""CVAT's sorting methods for a task's frames."""

from __future__ import annotations

import pytest

from labelyard.adapters.media.sorting import sort_names

NAMES = ["img10.jpg", "img2.jpg", "IMG3.jpg", "img1.jpg", "img02.jpg"]


def test_lexicographical():
    assert sort_names(NAMES, "lexicographical") == [
        "IMG3.jpg",
        "img02.jpg",
        "img1.jpg",
        "img10.jpg",
        "img2.jpg",
    ]


def test_natural():
    assert sort_names(NAMES, "natural") == [
        "img1.jpg",
        "img02.jpg",
        "img2.jpg",
        "IMG3.jpg",
        "img10.jpg",
    ]


def test_natural_goes_folder_by_folder():
    names = ["b10/1.jpg", "b2/9.jpg", "b2/10.jpg", "a/3.jpg", "b2-x/1.jpg"]
    assert sort_names(names, "natural") == [
        "a/3.jpg",
        "b2/9.jpg",
        "b2/10.jpg",
        "b2-x/1.jpg",
        "b10/1.jpg",
    ]


def test_predefined_keeps_the_given_order():
    assert sort_names(iter(NAMES), "predefined") == NAMES


def test_random_is_reproducible_for_a_seed():
    names = [f"frame_{index}.png" for index in range(30)]
    first = sort_names(names, "random", seed=7)
    assert sorted(first) == sorted(names) and first != sorted(names)
    assert sort_names(list(reversed(names)), "random", seed=7) == first
    assert sort_names(names, "random", seed=8) != first


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown sorting method 'size'"):
        sort_names(NAMES, "size")  # type: ignore[arg-type]

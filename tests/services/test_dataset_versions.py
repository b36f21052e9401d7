"""A published version's annotations laid over the dataset's own items."""

from __future__ import annotations

import pytest

from labelyard.formats.mapping import FrameInfo
from labelyard.services.dataset_versions import (
    DatasetFrames,
    annotated_frames,
    lay_over,
    next_version,
)
from labelyard.services.frames import FrameRef


@pytest.mark.parametrize(
    ("version", "following"),
    [("0.1", "0.2"), ("1.9", "1.10"), ("3", "4"), ("v1.0-beta", "v1.0-beta.1")],
)
def test_next_version(version, following):
    assert next_version(version) == following


def _video(asset_id: int, frames: int, first: int = 0) -> DatasetFrames:
    infos = [FrameInfo(first + n, f"v.mp4#{n}", 64, 48) for n in range(frames)]
    refs = [FrameRef(first + n, asset_id, n, f"v.mp4#{n}") for n in range(frames)]
    return DatasetFrames(infos, refs)


def _box(frame: int, **extra):
    return {"type": "rectangle", "frame": frame, "label_id": 7, "points": [0, 0, 5, 5],
            "attributes": [], **extra}  # fmt: skip


CONTENT = {
    "labels": [{"id": 7, "name": "car", "attributes": [
        {"id": 3, "name": "color", "input_type": "text"}]}],
    # The task took every second frame of asset 5, from its frame 2.
    "frames": [{"frame": n, "asset_id": 5, "asset_frame": 2 + 2 * n, "name": f"v.mp4#{2 + 2 * n}"}
               for n in range(4)],
    "objects": {
        "tags": [{"frame": 3, "label_id": 7, "attributes": []}],
        "shapes": [_box(0), _box(1)],
        "tracks": [{"frame": 1, "label_id": 7, "attributes": [],
                    "shapes": [_box(1), _box(2)]}],
    },
}  # fmt: skip


def test_objects_move_to_the_items_their_frames_came_from():
    labels, objects = lay_over(CONTENT, _video(5, 12))
    assert [(label.id, label.name, [s.name for s in label.specs]) for label in labels] == [
        (7, "car", ["color"])
    ]
    assert [s["frame"] for s in objects["shapes"]] == [2, 4]
    assert [t["frame"] for t in objects["tags"]] == [8]
    [track] = objects["tracks"]
    # The task ended at its frame 3 (the video's 8): in the dataset the track ends there.
    assert [(s["frame"], s.get("outside", False)) for s in track["shapes"]] == [
        (4, False), (6, False), (9, True),
    ]  # fmt: skip
    assert track["frame"] == 4


def test_objects_of_assets_no_longer_in_the_dataset_are_left_out():
    _, objects = lay_over(CONTENT, _video(6, 12))
    assert objects == {"tags": [], "shapes": [], "tracks": []}


def test_a_track_ending_on_the_last_item_needs_no_outside_frame():
    _, objects = lay_over(CONTENT, _video(5, 9))
    assert [s["frame"] for s in objects["tracks"][0]["shapes"]] == [4, 6]


def test_annotated_frames_count_what_tracks_cover():
    objects = {
        "tags": [{"frame": 9}],
        "shapes": [{"frame": 1}],
        "tracks": [{"shapes": [{"frame": 3}, {"frame": 5, "outside": True}, {"frame": 7}]}],
    }
    assert annotated_frames(objects, last_frame=8) == {1, 3, 4, 7, 8, 9}

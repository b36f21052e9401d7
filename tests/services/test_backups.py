"""The backup format's reading and checks (labelyard/services/backups), without a server:
what a manifest and annotations.json must hold, where media go in the archive, and the
quick check a request's file gets. Round trips are tests/api/cvat_v1/test_backups.py's."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from labelyard.config import Settings
from labelyard.domain import AttributeSpec, Label
from labelyard.services import backups
from labelyard.services.backups import layout
from labelyard.services.errors import InvalidInput
from labelyard.services.labels import LabelIn
from labelyard.services.operations import UserFacingError
from labelyard.worker import load_handlers


def manifest(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "format": layout.FORMAT,
        "version": layout.VERSION,
        "name": "street",
        "segment_size": 2,
        "labels": [
            {"name": "car", "attributes": [
                {"name": "model", "input_type": "select", "values": ["BMW", "Audi"]},
                {"name": "speed", "mutable": True, "input_type": "number",
                 "values": ["0", "100", "5"]},
            ]},
            {"name": "person"},
        ],
        "data": {"image_quality": 80, "media": [{"name": "a.jpg", "file": "data/a.jpg"}]},
        "frames": [{"name": "a.jpg", "width": 4, "height": 3}] * 3,
        "jobs": [{"start_frame": 0, "stop_frame": 1}, {"start_frame": 2, "stop_frame": 2}],
    }  # fmt: skip
    return base | fields


def test_a_manifest_reads():
    read = layout.read_manifest(manifest())
    assert read.name == "street" and [label.name for label in read.labels] == ["car", "person"]
    assert read.data is not None and read.data.media[0].file == "data/a.jpg"
    assert [(job.start_frame, job.stop_frame, job.status) for job in read.jobs] == [
        (0, 1, "annotation"), (2, 2, "annotation")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param([], "not a labelyard task backup", id="not-an-object"),
        pytest.param(
            {"version": "1.0", "name": "t", "jobs": []},
            "not a labelyard task backup",
            id="cvat-backup",
        ),
        pytest.param(manifest(version="2.0"), "version '2.0'", id="unknown-version"),
        pytest.param(manifest(version=None), "version None", id="no-version"),
        pytest.param(manifest(segment_size=-1), "segment_size", id="bad-field"),
        pytest.param(manifest(name=None), "name", id="no-name"),
        pytest.param(
            manifest(
                labels=[
                    {
                        "name": "a",
                        "attributes": [{"name": "x", "input_type": "select", "values": []}],
                    }
                ]
            ),
            "labels.0",
            id="bad-label",
        ),
        pytest.param(
            manifest(jobs=[{"start_frame": 2, "stop_frame": 3}]),
            "jobs.0",
            id="job-outside-the-frames",
        ),
        pytest.param(manifest(jobs=[]), "no jobs", id="frames-without-jobs"),
        pytest.param(manifest(data=None), "no data part", id="frames-without-data"),
        pytest.param(manifest(data={"media": []}), "data.media", id="data-without-media"),
    ],
)
def test_a_bad_manifest_is_refused_with_its_reason(raw, reason):
    with pytest.raises(UserFacingError) as refused:
        layout.read_manifest(raw)
    assert reason in str(refused.value)


def test_annotations_read_by_name_and_get_the_restored_ids():
    read = layout.read_manifest(manifest())
    raw = [
        {"tags": [{"frame": 0, "label": "person", "attributes": []}],
         "shapes": [{"type": "rectangle", "frame": 1, "label": "car", "points": [0, 0, 1, 1],
                     "attributes": [{"name": "model", "value": "Audi"}]}],
         "tracks": []},
        {"tags": [], "shapes": [],
         "tracks": [{"frame": 2, "label": "car", "attributes": [{"name": "model", "value": "BMW"}],
                     "shapes": [{"type": "points", "frame": 2, "points": [1, 1],
                                 "attributes": [{"name": "speed", "value": "5"}]}]}]},
    ]  # fmt: skip
    first, second = layout.read_annotations(raw, read)
    assert [tag.label_id for tag in first.tags] == [2]  # stand-ins: places in the list
    assert first.shapes[0].attributes[0].spec_id == 1
    specs = [AttributeSpec(id=70, name="model"), AttributeSpec(id=71, name="speed")]
    restored = [Label(id=7, name="car", attributes=specs), Label(id=9, name="person")]
    labels, spec_ids = layout.stand_in_ids(read.labels, restored)
    for body in (first, second):
        layout.renumber(body, labels, spec_ids)
    assert (first.tags[0].label_id, first.shapes[0].label_id) == (9, 7)
    assert first.shapes[0].attributes[0].spec_id == 70
    track = second.tracks[0]
    assert (track.attributes[0].spec_id, track.shapes[0].attributes[0].spec_id) == (70, 71)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param({}, "each of the 2 jobs", id="not-a-list"),
        pytest.param([{}], "each of the 2 jobs", id="too-few"),
        pytest.param([{"tags": [{"frame": 0, "label": "bus"}]}, {}], "'bus'", id="unknown-label"),
        pytest.param([{"tags": [{"frame": 0, "label": ["car"]}]}, {}], "label", id="odd-label"),
        pytest.param(
            [
                {
                    "tags": [
                        {
                            "frame": 0,
                            "label": "car",
                            "attributes": [{"name": "color", "value": "red"}],
                        }
                    ]
                },
                {},
            ],
            "'color'",
            id="unknown-attribute",
        ),
        pytest.param([{"tags": [{"frame": "x", "label": "car"}]}, {}], "job 1", id="bad-frame"),
        pytest.param([{"shapes": "nope"}, {}], "shapes", id="not-objects"),
    ],
)
def test_bad_annotations_are_refused_with_their_place(raw, reason):
    with pytest.raises(UserFacingError) as refused:
        layout.read_annotations(raw, layout.read_manifest(manifest()))
    assert reason in str(refused.value)


def test_deleted_attributes_values_are_not_backed_up():
    labels = {3: ("car", {5: "model"})}
    item = {
        "id": 1,
        "label_id": 3,
        "frame": 0,
        "attributes": [{"spec_id": 5, "value": "BMW"}, {"spec_id": 6, "value": "gone"}],
    }
    assert layout.named(item, labels) == {
        "label": "car", "frame": 0, "attributes": [{"name": "model", "value": "BMW"}]
    }  # fmt: skip


def test_media_go_to_data_unless_unpacking_would_skip_them():
    taken: set[str] = set()
    assert layout.archived_path("street/a.jpg", taken) == "data/street/a.jpg"
    assert layout.archived_path(".hidden.jpg", taken) == "data/renamed/hidden.jpg"
    assert layout.archived_path("__MACOSX/b.jpg", taken) == "data/renamed/___MACOSX/b.jpg"
    assert layout.archived_path("x/Thumbs.db", taken) == "data/renamed/x/_Thumbs.db"
    assert layout.archived_path("hidden.jpg", taken) == "data/hidden.jpg"
    assert layout.archived_path("..hidden.jpg", taken) == "data/renamed/1/hidden.jpg"


def _zip(members: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    out.seek(0)
    return out


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        pytest.param(io.BytesIO(b"not a zip"), "not a zip", id="not-a-zip"),
        pytest.param(io.BytesIO(b""), "not a zip", id="empty"),
        pytest.param(_zip({"images/a.jpg": b"x"}), "task.json", id="no-manifest"),
    ],
)
def test_the_quick_check_refuses_what_is_no_backup(file, reason):
    with pytest.raises(InvalidInput) as refused:
        backups.check_archive(file)
    assert "task_file" in refused.value.fields and reason in refused.value.detail
    assert file.tell() == 0


def test_the_quick_check_lets_a_backup_through_rewound():
    file = _zip({"task.json": b"{}", "annotations.json": b"[]"})
    backups.check_archive(file)
    assert file.tell() == 0


def test_the_operation_kinds_are_registered(tmp_path):
    registry = load_handlers(Settings(data_dir=tmp_path))
    assert registry.get(backups.EXPORT) is not None and registry.get(backups.IMPORT) is not None


def test_labels_in_a_manifest_are_checked_as_a_task_s_are():
    read = layout.read_manifest(manifest())
    assert isinstance(read.labels[0], LabelIn)
    assert read.labels[0].attributes[0].default_value == "BMW"

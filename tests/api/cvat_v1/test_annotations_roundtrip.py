"""Properties of a job's annotations: any valid set of tags, shapes and tracks comes back
from GET as it was PUT; any object that breaks one rule is refused with 400 and changes
nothing."""

from __future__ import annotations

import json
import math
from functools import partial
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelyard.domain import Task
from labelyard.services import jobs

API = "/api/v1"
MAX_INT = 2**31 - 1
KINDS = ("tags", "shapes", "tracks")
SHAPE_TYPES = ("rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask")
POINT_COUNTS = {"rectangle": 4, "ellipse": 4, "cuboid": 16}
MIN_POINTS = {"polygon": 6, "polyline": 4, "points": 2}
SOURCES = ("manual", "auto", "semi-auto", "file")
# What the server assumes for a field left out.
DEFAULTS = {
    "group": 0,
    "source": "manual",
    "attributes": [],
    "occluded": False,
    "outside": False,
    "z_order": 0,
    "rotation": 0,
    "keyframe": True,
}
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

LABELS = [
    {
        "name": "car",
        "attributes": [
            {
                "name": "model",
                "mutable": False,
                "input_type": "select",
                "values": ["BMW", "Audi", "Škoda Octavia"],
            },
            {
                "name": "color",
                "mutable": True,
                "input_type": "radio",
                "values": ["red", "green", "blue"],
            },
            {"name": "parked", "mutable": False, "input_type": "checkbox"},
            {"name": "lights", "mutable": True, "input_type": "checkbox", "default_value": "true"},
            {"name": "speed", "mutable": True, "input_type": "number", "values": ["0", "100", "5"]},
            {
                "name": "weight",
                "mutable": False,
                "input_type": "number",
                "values": ["-2.5", "10", "0.25"],
            },
            {"name": "plate", "mutable": True, "input_type": "text"},
            {"name": "note", "mutable": False, "input_type": "text", "default_value": "n/a"},
        ],
    },
    {
        "name": "person",
        "attributes": [
            {
                "name": "pose",
                "mutable": True,
                "input_type": "select",
                "values": ["standing", "sitting"],
            },
            {"name": "age", "mutable": False, "input_type": "number", "values": ["0", "120", "1"]},
            {"name": "visible", "mutable": True, "input_type": "checkbox"},
        ],
    },
    {"name": "sign"},
]


@pytest.fixture
def yard(client, factory):
    """A task with labels car, person and sign whose attributes cover every input type
    (some mutable), 10 frames in two jobs of 5; and another task's label and attribute."""
    owner = factory.user("owner")
    headers = factory.headers(owner)
    created = client.post(f"{API}/tasks", headers=headers, json={"name": "t", "labels": LABELS})
    assert created.status_code == 201, created.text
    task = created.json()
    with factory.uow() as uow:
        stored = uow.session.get_one(Task, task["id"])
        stored.segment_size, stored.size = 5, 10
        made = jobs.add_segments(uow, stored, jobs.segment_ranges(0, 10, 5, 0))
        uow.commit()
        job_frames = [(job.id, job.segment.start_frame, job.segment.stop_frame) for job in made]
    other = client.post(
        f"{API}/tasks",
        headers=headers,
        json={
            "name": "elsewhere",
            "labels": [
                {
                    "name": "truck",
                    "attributes": [{"name": "axles", "input_type": "select", "values": ["2", "3"]}],
                }
            ],
        },
    ).json()
    labels = task["labels"]
    assert {spec["input_type"] for label in labels for spec in label["attributes"]} == {
        "select",
        "radio",
        "checkbox",
        "number",
        "text",
    }
    return {
        "headers": {**headers, "content-type": "application/json"},
        "jobs": job_frames,
        "labels": labels,
        "specs": [(label, spec) for label in labels for spec in label["attributes"]],
        "foreign_label": other["labels"][0]["id"],
        "foreign_spec": other["labels"][0]["attributes"][0]["id"],
    }


def url(job: tuple[int, int, int]) -> str:
    return f"{API}/jobs/{job[0]}/annotations"


def send(client, yard, method: str, job, body: dict[str, Any]):
    """``body`` as raw JSON text: a NaN or an infinity is written as JavaScript would."""
    params = {"action": "create"} if method == "create" else None
    return client.request(
        "PATCH" if method == "create" else "PUT",
        url(job),
        headers=yard["headers"],
        params=params,
        content=json.dumps(body, allow_nan=True),
    )


def normalise(value: Any) -> Any:
    """Without the ids the server assigns, every number a float."""
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items() if key != "id"}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


# --- valid objects -------------------------------------------------------------------

COORDINATES = st.one_of(
    st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False)
)
WHOLE = st.integers(0, 10**6).flatmap(lambda n: st.sampled_from([n, float(n)]))
GROUPS = st.one_of(st.integers(0, 5), st.integers(0, MAX_INT))
Z_ORDERS = st.one_of(st.integers(-5, 5), st.integers(-MAX_INT, MAX_INT))
ROTATIONS = st.one_of(st.sampled_from([0, 0.0, 360]), st.floats(0, 360))


def frames(job) -> st.SearchStrategy[int]:
    return st.integers(job[1], job[2])


def number_text(value: float, style: str) -> str:
    return {"repr": repr(value), "short": f"{value:g}", "exponent": f"{value:e}"}[style]


def values(spec: dict[str, Any]) -> st.SearchStrategy[str]:
    kind = spec["input_type"]
    if kind in ("select", "radio"):
        return st.sampled_from(spec["values"])
    if kind == "checkbox":
        return st.sampled_from(["true", "false"])
    if kind == "number":
        low, high, step = (float(v) for v in spec["values"])
        steps = int((high - low) / step + 1e-9)
        return st.builds(
            lambda k, style: number_text(low + k * step, style),
            st.integers(0, steps),
            st.sampled_from(["repr", "short", "exponent"]),
        )
    return st.text(max_size=30)


@st.composite
def attributes(draw, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not specs:
        return []
    chosen = draw(st.lists(st.sampled_from(specs), unique_by=lambda s: s["id"]))
    return [{"spec_id": spec["id"], "value": draw(values(spec))} for spec in chosen]


@st.composite
def points(draw, kind: str) -> list[float]:
    if kind in POINT_COUNTS:
        count = POINT_COUNTS[kind]
        return draw(st.lists(COORDINATES, min_size=count, max_size=count))
    if kind in MIN_POINTS:
        pairs = MIN_POINTS[kind] // 2
        return [
            c
            for pair in draw(
                st.lists(st.tuples(COORDINATES, COORDINATES), min_size=pairs, max_size=pairs + 6)
            )
            for c in pair
        ]
    # A mask: run-length counts, then its box.
    return draw(st.lists(WHOLE, min_size=1, max_size=12)) + draw(
        st.lists(WHOLE, min_size=4, max_size=4)
    )


@st.composite
def geometry(draw, kind: str | None = None) -> dict[str, Any]:
    kind = kind or draw(st.sampled_from(SHAPE_TYPES))
    return {
        "type": kind,
        "points": draw(points(kind)),
        "occluded": draw(st.booleans()),
        "outside": draw(st.booleans()),
        "z_order": draw(Z_ORDERS),
        "rotation": draw(ROTATIONS),
    }


@st.composite
def tags(draw, yard, job, label=None) -> dict[str, Any]:
    label = label or draw(st.sampled_from(yard["labels"]))
    return {
        "frame": draw(frames(job)),
        "label_id": label["id"],
        "group": draw(GROUPS),
        "source": draw(st.sampled_from(SOURCES)),
        "attributes": draw(attributes(label["attributes"])),
    }


@st.composite
def shapes(draw, yard, job, label=None, kind=None) -> dict[str, Any]:
    return draw(tags(yard, job, label)) | draw(geometry(kind))


@st.composite
def tracks(draw, yard, job, label=None, kind=None) -> dict[str, Any]:
    label = label or draw(st.sampled_from(yard["labels"]))
    kind = kind or draw(st.sampled_from(SHAPE_TYPES))
    mutable = [spec for spec in label["attributes"] if spec["mutable"]]
    track = draw(tags(yard, job, label))
    track["shapes"] = [
        draw(geometry(kind))
        | {
            "frame": frame,
            "keyframe": draw(st.booleans()),
            "attributes": draw(attributes(mutable)),
        }
        for frame in sorted(draw(st.lists(frames(job), min_size=1, unique=True)))
    ]
    return track


@st.composite
def as_sent(draw, item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with some of the fields that hold their default left out."""
    sent = dict(item)
    for key, default in DEFAULTS.items():
        if key in sent and sent[key] == default and draw(st.booleans()):
            del sent[key]
    if "shapes" in item:
        sent["shapes"] = [draw(as_sent(shape)) for shape in item["shapes"]]
    return sent


@st.composite
def annotation_sets(draw, yard, job, max_size: int = 8):
    """(what is sent, what should be stored)."""
    makers = {"tags": tags, "shapes": shapes, "tracks": tracks}
    stored = {
        kind: draw(st.lists(maker(yard, job), max_size=max_size)) for kind, maker in makers.items()
    }
    sent = {kind: [draw(as_sent(item)) for item in items] for kind, items in stored.items()}
    for kind in KINDS:
        # A kind with nothing may be left out, but a body names one at least: a PUT of
        # {} is refused rather than taken for "delete everything".
        if not sent[kind] and len(sent) > 1 and draw(st.booleans()):
            del sent[kind]
    return sent, stored


@PROPERTY
@given(data=st.data())
def test_valid_annotations_round_trip_unchanged(client, yard, data):
    job = data.draw(st.sampled_from(yard["jobs"]), label="job")
    sent, expected = data.draw(annotation_sets(yard, job), label="annotations")
    version = client.get(url(job), headers=yard["headers"]).json()["version"]
    body = dict(sent, version=version) if data.draw(st.booleans(), label="versioned") else sent

    put = send(client, yard, "put", job, body)
    assert put.status_code == 200, put.text
    stored = client.get(url(job), headers=yard["headers"]).json()

    assert stored["version"] == put.json()["version"] == version + 1
    for kind in KINDS:
        ids = [item["id"] for item in stored[kind]]
        assert all(isinstance(i, int) and i > 0 for i in ids) and len(set(ids)) == len(ids)
        assert [item["id"] for item in put.json()[kind]] == ids
    assert normalise(stored) == normalise(dict(expected, version=version + 1))
    assert normalise(put.json()) == normalise(stored)


# --- objects that break one rule -----------------------------------------------------


@st.composite
def placed(draw, yard, job, kind=None, label=None):
    """A valid tag, shape or track, and its kind."""
    kind = kind or draw(st.sampled_from(KINDS))
    maker = {"tags": tags, "shapes": shapes, "tracks": tracks}[kind]
    return kind, draw(maker(yard, job, label))


def bad_counts(kind: str) -> list[int]:
    """Wrong counts of coordinates for ``kind``: none, or next to the rule's edge (one or
    two short, or one over: odd for the kinds with a least count)."""
    edge = POINT_COUNTS.get(kind) or MIN_POINTS.get(kind) or 5
    counts = {0, edge - 2, edge - 1} | ({edge + 1} if kind != "mask" else set())
    return sorted(n for n in counts if n >= 0)


@st.composite
def bad_point_count(draw, kind: str) -> list[float]:
    count = draw(st.sampled_from(bad_counts(kind)))
    return draw(st.lists(WHOLE if kind == "mask" else COORDINATES, min_size=count, max_size=count))


@st.composite
def bad_mask_values(draw) -> list[float]:
    """Enough counts, one of them negative or not whole."""
    good = draw(points("mask"))
    wrong = draw(
        st.one_of(
            st.integers(-(10**6), -1),
            st.floats(-(10**6), 10**6).filter(lambda x: x != int(x)),
        )
    )
    good.insert(draw(st.integers(0, len(good))), wrong)
    return good


@st.composite
def bad_points(draw, yard, job, kind: str, wrong: st.SearchStrategy[list[float]]):
    """A shape, or one of a track's shapes, of ``kind`` with ``wrong`` points."""
    where = draw(st.sampled_from(["shapes", "tracks"]))
    item = draw((shapes if where == "shapes" else tracks)(yard, job, kind=kind))
    target = item if where == "shapes" else draw(st.sampled_from(item["shapes"]))
    target["points"] = draw(wrong)
    return where, item


@st.composite
def bad_frame(draw, yard, job):
    _, first, last = job
    frame = draw(st.one_of(st.integers(-(10**6), first - 1), st.integers(last + 1, MAX_INT)))
    where, item = draw(placed(yard, job))
    if where != "tracks" or draw(st.booleans()):
        item["frame"] = frame
        return where, item
    # A tracked shape outside the job, its frames still increasing.
    extra = draw(geometry(item["shapes"][0]["type"])) | {"frame": frame}
    item["shapes"].insert(0 if frame < first else len(item["shapes"]), extra)
    return where, item


@st.composite
def foreign_label(draw, yard, job):
    where, item = draw(placed(yard, job))
    item["label_id"] = draw(st.sampled_from([yard["foreign_label"], MAX_INT]))
    item["attributes"] = []
    for shape in item.get("shapes", []):
        shape["attributes"] = []
    return where, item


def wrong_values(spec: dict[str, Any]) -> st.SearchStrategy[str]:
    kind = spec["input_type"]
    if kind in ("select", "radio"):
        return st.text(max_size=20).filter(lambda v: v not in spec["values"])
    if kind == "checkbox":
        return st.sampled_from(["True", "FALSE", "1", "0", "yes", "", " true"])
    if kind == "text":
        return st.just("x" * 4097)
    low, high, step = (float(v) for v in spec["values"])
    steps = int((high - low) / step)
    off_step = st.builds(
        lambda k, part: repr(low + (k + part) * step),
        st.integers(0, steps - 1),
        st.floats(0.01, 0.99),
    )
    out_of_range = st.one_of(
        st.floats(high + step / 100, 1e300).map(repr),
        st.floats(-1e300, low - step / 100).map(repr),
    )
    not_a_number = st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "", "fast", "1,5"])
    return st.one_of(off_step, out_of_range, not_a_number)


@st.composite
def bad_value(draw, yard, job):
    label, spec = draw(st.sampled_from(yard["specs"]))
    where, item = draw(placed(yard, job, label=label))
    bad = {"spec_id": spec["id"], "value": draw(wrong_values(spec))}
    target = item
    if where == "tracks" and spec["mutable"] and draw(st.booleans()):
        target = draw(st.sampled_from(item["shapes"]))
    kept = [a for a in target["attributes"] if a["spec_id"] != spec["id"]]
    kept.insert(draw(st.integers(0, len(kept))), bad)
    target["attributes"] = kept
    return where, item


@st.composite
def bad_spec(draw, yard, job):
    """An attribute of another label, of another task, or an immutable one on a tracked
    shape."""
    choice = draw(st.sampled_from(["other label", "other task", "immutable on tracked shape"]))
    if choice == "immutable on tracked shape":
        label, spec = draw(
            st.sampled_from([pair for pair in yard["specs"] if not pair[1]["mutable"]])
        )
        _, item = draw(placed(yard, job, "tracks", label))
        shape = draw(st.sampled_from(item["shapes"]))
        shape["attributes"] = [
            *shape["attributes"],
            {"spec_id": spec["id"], "value": draw(values(spec))},
        ]
        return "tracks", item
    where, item = draw(placed(yard, job))
    if choice == "other task":
        spec_id = yard["foreign_spec"]
    else:
        spec_id = draw(
            st.sampled_from(
                [s["id"] for owner, s in yard["specs"] if owner["id"] != item["label_id"]]
            )
        )
    item["attributes"] = [*item["attributes"], {"spec_id": spec_id, "value": "BMW"}]
    return where, item


@st.composite
def not_finite(draw, yard, job):
    """NaN or an infinity as a coordinate or a rotation, sent as raw JSON."""
    where = draw(st.sampled_from(["shapes", "tracks"]))
    _, item = draw(placed(yard, job, where))
    target = item if where == "shapes" else draw(st.sampled_from(item["shapes"]))
    number = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    if draw(st.booleans()):
        target["rotation"] = number
    else:
        target["points"] = list(target["points"])
        target["points"][draw(st.integers(0, len(target["points"]) - 1))] = number
    return where, item


@st.composite
def track_frames_not_increasing(draw, yard, job):
    first = job[1]
    _, item = draw(placed(yard, job, "tracks"))
    kind = item["shapes"][0]["type"]
    order = draw(st.lists(frames(job), min_size=2, max_size=6))
    if all(a < b for a, b in pairwise(order)):
        order.append(draw(st.integers(first, order[-1])))
    item["shapes"] = [draw(geometry(kind)) | {"frame": frame} for frame in order]
    return "tracks", item


@st.composite
def bad_field(draw, yard, job):
    """A field out of its range or not one of its choices."""
    field, value = draw(
        st.sampled_from(
            [
                ("rotation", -0.5),
                ("rotation", 360.5),
                ("z_order", MAX_INT + 1),
                ("group", -1),
                ("group", MAX_INT + 1),
                ("source", "robot"),
                ("type", "circle"),
            ]
        )
    )
    if field in ("group", "source"):
        where, item = draw(placed(yard, job))
        item[field] = value
        return where, item
    where = draw(st.sampled_from(["shapes", "tracks"]))
    _, item = draw(placed(yard, job, where))
    target = item if where == "shapes" else draw(st.sampled_from(item["shapes"]))
    target[field] = value
    return where, item


RULES = {
    **{
        f"point count of a {kind}": partial(bad_points, kind=kind, wrong=bad_point_count(kind))
        for kind in SHAPE_TYPES
    },
    "mask counts not whole": partial(bad_points, kind="mask", wrong=bad_mask_values()),
    "frame outside the job": bad_frame,
    "foreign label": foreign_label,
    "attribute value": bad_value,
    "attribute spec": bad_spec,
    "not finite": not_finite,
    "track frames not increasing": track_frames_not_increasing,
    "field range": bad_field,
}


def check_refused(client, yard, data, rule) -> None:
    """A valid baseline is stored; a write holding valid objects and one made by ``rule``
    is refused with 400 naming that object only, and the stored annotations stay."""
    job = data.draw(st.sampled_from(yard["jobs"]), label="job")
    baseline, _ = data.draw(annotation_sets(yard, job, max_size=2), label="baseline")
    assert send(client, yard, "put", job, baseline).status_code == 200
    before = client.get(url(job), headers=yard["headers"]).json()

    kind, bad = data.draw(rule(yard, job), label="bad object")
    others, _ = data.draw(annotation_sets(yard, job, max_size=2), label="valid others")
    body = {name: list(others.get(name, [])) for name in KINDS}
    index = data.draw(st.integers(0, len(body[kind])), label="index")
    body[kind].insert(index, bad)
    method = data.draw(st.sampled_from(["put", "create"]), label="method")

    response = send(client, yard, method, job, body)
    assert response.status_code == 400, response.text
    named = [key for key in response.json() if key != "detail"]
    prefix = f"{kind}.{index}"
    assert named and all(key == prefix or key.startswith(f"{prefix}.") for key in named), named
    assert client.get(url(job), headers=yard["headers"]).json() == before


@pytest.mark.parametrize("rule", sorted(RULES))
@settings(PROPERTY, max_examples=10)
@given(data=st.data())
def test_an_object_breaking_one_rule_is_refused_and_changes_nothing(client, yard, rule, data):
    check_refused(client, yard, data, RULES[rule])

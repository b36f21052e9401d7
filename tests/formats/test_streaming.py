"""The fast path (formats/streaming.py) held to Datumaro's: for each case, the files its
writers write are the files ``mapping.to_dataset`` + Datumaro's exporter write, the
objects its reader reads are those Datumaro's importer + ``mapping.from_dataset`` make,
and what it declines goes through Datumaro.

Nothing is normalised: ids, order, numbers (float32 rounding, areas) all match. JSON is
compared parsed (what an importer reads), other files byte for byte."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path
from typing import Any

import datumaro as dm
import numpy as np
import orjson
import pycocotools.mask as mask_utils
import pytest
from datumaro.util.image import IMAGE_BACKEND, ImageBackend

from labelyard.formats import mapping, streaming
from labelyard.formats.mapping import FrameInfo, LabelInfo, SpecInfo
from labelyard.formats.registry import find
from labelyard.services import exchange, imports
from labelyard.services.errors import InvalidInput
from tests.support.media import jpeg

COCO, YOLO = "COCO 1.0", "YOLO 1.1"
CAR = LabelInfo(10, "car", (
    SpecInfo(1, "model", "select"), SpecInfo(2, "parked", "checkbox"),
    SpecInfo(3, "speed", "number"), SpecInfo(4, "note", "text"), SpecInfo(5, "kind", "radio"),
))  # fmt: skip
PERSON = LabelInfo(11, "person")
LABELS = [CAR, PERSON]
FRAMES = [
    FrameInfo(0, "street/img_0.png", 64, 48),
    FrameInfo(1, "img_1.jpg", 64, 48),
    FrameInfo(2, "deep/er/img_2.jpeg", 80, 60),
    FrameInfo(3, "img_3", 64, 48),
]
VIDEO = [FrameInfo(n, f"clip.mp4#{n}", 64, 48) for n in range(6)]
JOB = [FrameInfo(n, f"clip.mp4#{n}", 64, 48) for n in range(100, 104)]


@pytest.fixture(autouse=True)
def _image_backend() -> None:
    if IMAGE_BACKEND.get(None) is None:
        IMAGE_BACKEND.set(ImageBackend.cv2)


def box(frame: int, points: list[float], label: int = 10, **extra: Any) -> dict[str, Any]:
    return {"type": "rectangle", "frame": frame, "label_id": label, "points": points} | extra


def shape(kind: str, frame: int, points: list[float], label: int = 10, **extra: Any) -> Any:
    return {"type": kind, "frame": frame, "label_id": label, "points": points} | extra


def attrs(*pairs: tuple[int, str]) -> list[dict[str, Any]]:
    return [{"spec_id": spec, "value": value} for spec, value in pairs]


def random_boxes(count: int) -> list[dict[str, Any]]:
    pick = random.Random(7)
    boxes = []
    for _ in range(count):
        x, y = pick.uniform(-3, 60), pick.uniform(-3, 45)
        w, h = pick.uniform(0, 30), pick.uniform(0, 20)
        boxes.append(box(pick.randrange(4), [x, y, x + w, y + h], pick.choice([10, 11])))
    return boxes


# A mask: run lengths over its box (off first), then the box's left, top, right, bottom.
MASKS = [
    shape("mask", 0, [3, 4, 2, 5, 10, 10, 14, 13]),
    shape("mask", 1, [0, 3, 1, 2, 0, 0, 2, 1], label=11, occluded=True),
    shape("mask", 2, [7, 30, 60, 50, 79, 59]),
]
TRACKS = [
    {"frame": 0, "label_id": 10, "attributes": attrs((1, "Audi")), "shapes": [
        {"type": "rectangle", "frame": 0, "points": [0, 0, 10.3, 10],
         "attributes": attrs((2, "true"))},
        {"type": "rectangle", "frame": 3, "points": [20, 20.7, 30, 31], "occluded": True},
    ]},
    {"frame": 1, "label_id": 11, "shapes": [
        {"type": "polygon", "frame": 1, "points": [1, 1, 9, 1, 9, 9]},
        {"type": "polygon", "frame": 2, "points": [2, 2, 12, 2, 12, 12, 2, 12]},
        {"type": "polygon", "frame": 3, "points": [3, 3, 13, 3, 13, 13], "outside": True},
    ]},
    {"frame": 1, "label_id": 11, "shapes": [
        {"type": "mask", "frame": 1, "points": [2, 6, 4, 4, 6, 6]},
        {"type": "rectangle", "frame": 2, "points": [5, 5, 7, 7.5]},
    ]},
]  # fmt: skip
EXPORT_CASES: dict[str, tuple[list[FrameInfo], dict[str, list[Any]]]] = {
    "rectangles": (
        FRAMES,
        {
            "shapes": [
                box(0, [2.123, 3.456, 20.1, 30.7], rotation=30.0, occluded=True, z_order=3),
                box(0, [0.1, 0.2, 0.3, 0.4]),
                box(1, [40, 30, 10, 5]),
                box(3, [1, 2, 3, 4], label=11),
            ]
        },
    ),
    "polygons": (
        FRAMES,
        {
            "shapes": [
                shape("polygon", 1, [5.1, 5, 30, 5, 30, 25.33, 5, 25]),
                shape("polygon", 2, [70, 50, 90, 55, 75, 70, 60, 58.123], label=11),
            ]
        },
    ),
    "masks": (FRAMES, {"shapes": MASKS}),
    "polylines, points, cuboids and tags": (
        FRAMES,
        {
            "tags": [{"frame": 0, "label_id": 11}],
            "shapes": [
                shape("polyline", 1, [1, 1, 20, 20]),
                shape("points", 1, [7, 8], label=11),
                shape("cuboid", 2, list(range(16))),
                box(2, [1, 1, 5, 5]),
            ],
        },
    ),
    "ellipses": (
        FRAMES,
        {
            "shapes": [
                shape("ellipse", 2, [30, 20, 40, 12]),
                shape("ellipse", 0, [10.5, 10, 13, 9.25], label=11),
            ]
        },
    ),
    "tracks": (FRAMES, {"tracks": TRACKS}),
    "attributes of every input type": (
        FRAMES,
        {
            "shapes": [
                box(
                    0,
                    [1, 1, 5, 5],
                    attributes=attrs((1, "Audi"), (2, "false"), (3, "5"), (4, "a note"), (5, "x")),
                ),
                box(1, [1, 1, 5, 5], attributes=attrs((3, "2.5"), (2, "true"))),
            ]
        },
    ),
    "groups of what COCO leaves out": (
        FRAMES,
        {
            "shapes": [
                shape("polyline", 0, [1, 1, 20, 20], group=1),
                shape("points", 0, [7, 8], group=1),
                box(0, [1, 1, 5, 5]),
            ]
        },
    ),
    "no objects": (FRAMES, {}),
    "video frames": (VIDEO, {"shapes": [box(f, [f, 1, 9, 9]) for f in (0, 2, 5)]}),
    "a job's frames": (
        JOB,
        {
            "shapes": [box(101, [1, 1, 9, 9]), box(103, [2, 2, 8, 8])],
            "tracks": [
                {
                    "frame": 101,
                    "label_id": 11,
                    "shapes": [
                        {"type": "rectangle", "frame": 101, "points": [0, 0, 4, 4]},
                    ],
                }
            ],
        },
    ),
    "random boxes": (FRAMES, {"shapes": random_boxes(600)}),
}


def as_texts(objects: dict[str, list[Any]]) -> dict[str, list[str]]:
    """The objects as stored: JSON texts in the services' field order, with ids."""
    texts: dict[str, list[str]] = {}
    for kind, items in objects.items():
        texts[kind] = [orjson.dumps({"id": n + 1} | item).decode() for n, item in enumerate(items)]
    return texts


def datumaro_export(
    format_name: str,
    frames: list[FrameInfo],
    objects: dict[str, list[Any]],
    out: Path,
    images: dict[int, Path] | None = None,
    subset: str = "default",
) -> dict[str, Any]:
    chosen = find(format_name, exporting=True)
    dataset = mapping.to_dataset(
        LABELS, frames, objects, lambda frame: (images or {}).get(frame.number), subset=subset
    )
    dataset.export(
        str(out), chosen.exporter, save_media=images is not None, **chosen.export_options
    )
    return files(out)


def fast_export(
    format_name: str,
    frames: list[FrameInfo],
    objects: dict[str, list[Any]],
    out: Path,
    images: dict[int, Path] | None = None,
    subset: str = "default",
) -> dict[str, Any]:
    chosen = find(format_name, exporting=True)
    plan = streaming.plan_export(chosen, LABELS, [(subset, frames, as_texts(objects))])
    with zipfile.ZipFile(out.with_suffix(".zip"), "w") as bundle:
        plan.write(bundle, images)
    with zipfile.ZipFile(out.with_suffix(".zip")) as bundle:
        bundle.extractall(out)
    return files(out)


def files(folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            found[name] = (
                json.loads(path.read_bytes()) if name.endswith(".json") else path.read_bytes()
            )
    return found


# --- writing ----------------------------------------------------------------------------


@pytest.mark.parametrize("format_name", [COCO, YOLO])
@pytest.mark.parametrize("case", sorted(EXPORT_CASES))
def test_the_fast_writers_write_what_datumaro_writes(case, format_name, tmp_path):
    frames, objects = EXPORT_CASES[case]
    expected = datumaro_export(format_name, frames, objects, tmp_path / "datumaro")
    assert fast_export(format_name, frames, objects, tmp_path / "fast") == expected


@pytest.mark.parametrize("format_name", [COCO, YOLO])
def test_with_images_and_a_subset(format_name, tmp_path):
    frames, objects = EXPORT_CASES["rectangles"]
    images = {}
    for frame in frames:
        # Smaller than the frames say: sizes come from the images written.
        images[frame.number] = tmp_path / f"{frame.number:08d}.jpg"
        images[frame.number].write_bytes(jpeg(32 + frame.number, 24, shade=frame.number * 9))
    expected = datumaro_export(format_name, frames, objects, tmp_path / "d", images, "valid")
    assert fast_export(format_name, frames, objects, tmp_path / "f", images, "valid") == expected
    assert any(name.endswith(".jpg") for name in expected)


DECLINED = {
    "grouped shapes (COCO makes one instance of them)": (COCO, LABELS, {"shapes": [
        box(0, [1, 1, 5, 5], group=1), shape("polygon", 0, [1, 1, 5, 1, 5, 5], group=1)]}),
    "a grouped track (COCO)": (COCO, LABELS, {"tracks": [TRACKS[1] | {"group": 2}]}),
    "an empty mask": (COCO, LABELS, {"shapes": [shape("mask", 0, [6, 0, 0, 2, 1])]}),
    "a mask outside its frame": (
        COCO, LABELS, {"shapes": [shape("mask", 0, [0, 4, 70, 0, 71, 1])]}),
    "an attribute named is_crowd": (
        COCO, [LabelInfo(10, "car", (SpecInfo(1, "is_crowd", "checkbox"),))], {}),
    "a label the task lacks": (YOLO, LABELS, {"shapes": [box(0, [1, 1, 5, 5], label=99)]}),
    "a format without a fast writer": ("CVAT for images 1.1", LABELS, {}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_what_the_writers_cannot_reproduce_is_declined(case):
    format_name, labels, objects = DECLINED[case]
    with pytest.raises(streaming.NotStreamable):
        streaming.plan_export(
            find(format_name, exporting=True), labels, [("default", FRAMES, objects)]
        )


def test_frames_of_one_name_and_projects_are_declined():
    chosen = find(COCO, exporting=True)
    same = [FrameInfo(0, "a.png", 9, 9), FrameInfo(1, "a.jpg", 9, 9)]
    with pytest.raises(streaming.NotStreamable):
        streaming.plan_export(chosen, LABELS, [("default", same, {})])
    with pytest.raises(streaming.NotStreamable):
        streaming.plan_export(chosen, LABELS, [("a", FRAMES, {}), ("b", FRAMES, {})])
    with pytest.raises(streaming.NotStreamable):
        streaming.plan_export(find(YOLO, exporting=True), LABELS, [("names", FRAMES, {})])


class _Context:
    def progress(self, fraction: float, message: str | None = None, **_: Any) -> None:
        assert 0 <= fraction <= 1


@pytest.mark.parametrize(
    ("format_name", "objects", "texts", "fast"),
    [(COCO, EXPORT_CASES["tracks"][1], True, True), (YOLO, EXPORT_CASES["masks"][1], True, True),
     # A snapshot of decoded objects (take_snapshot's default) streams too.
     (COCO, EXPORT_CASES["attributes of every input type"][1], False, True),
     (COCO, DECLINED["grouped shapes (COCO makes one instance of them)"][2], True, False)],
)  # fmt: skip
def test_build_archive_takes_the_fast_path_or_falls_back(
    format_name, objects, texts, fast, tmp_path, monkeypatch
):
    def archive(name: str) -> dict[str, Any]:
        part = (
            exchange.Part(1, "default", FRAMES, {}, texts=as_texts(objects))
            if texts
            else exchange.Part(1, "default", FRAMES, objects)
        )
        snapshot = exchange.Snapshot(LABELS, [part], actor=None)
        path = tmp_path / f"{name}.zip"
        exchange.build_archive(
            _Context(), snapshot, find(format_name, exporting=True),
            with_images=False, archive=path,
        )  # fmt: skip
        with zipfile.ZipFile(path) as bundle:
            bundle.extractall(tmp_path / name)
        return files(tmp_path / name)

    written = []
    real_plan = streaming.plan_export

    def watched(*args: Any) -> streaming.ExportPlan:
        plan = real_plan(*args)
        written.append(plan)
        return plan

    monkeypatch.setattr(streaming, "plan_export", watched)
    first = archive("first")
    assert bool(written) is fast

    def declined(*_: Any) -> streaming.ExportPlan:
        raise streaming.NotStreamable("for the test")

    monkeypatch.setattr(streaming, "plan_export", declined)
    assert archive("datumaro") == first


# --- reading ----------------------------------------------------------------------------

READ_LABELS = [
    CAR,
    LabelInfo(11, "person", (SpecInfo(6, "is_crowd", "checkbox"), SpecInfo(7, "score", "number"))),
]


def crowd_rle(height: int, width: int, compressed: bool) -> dict[str, Any]:
    image = np.zeros((height, width), dtype=np.uint8, order="F")
    image[5:9, 3:12] = 1
    image[0, 0] = 1
    rle = mask_utils.encode(image)
    if compressed:
        return {"counts": rle["counts"].decode(), "size": [height, width]}
    flat = image.ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
    return {"counts": ([0] if flat[0] else []) + counts, "size": [height, width]}


def hand_written() -> dict[str, Any]:
    def annotation(number: int, image: int, category: int, **fields: Any) -> dict[str, Any]:
        return {"id": number, "image_id": image, "category_id": category, "iscrowd": 0,
                "bbox": [], "area": 0} | fields  # fmt: skip

    images = [
        {"id": 1, "file_name": "street/img_0.png", "width": 64, "height": 48},
        {"id": 7, "file_name": "img_1.jpg", "width": 64, "height": 48},
        {"id": 3, "file_name": "elsewhere/img_3.jpg", "width": 64, "height": 48},
        {"id": 4, "file_name": "deep/er/img_2.jpeg", "width": 80, "height": 60},
        {"id": 5, "file_name": "not_in_the_task.png", "width": 80, "height": 60},
    ]
    annotations = [
        annotation(1, 1, 1, bbox=[1.1, 2.2, 10.55, 3.3],
                   attributes={"occluded": True, "rotation": 400, "model": "Audi",
                               "parked": 1, "speed": 5.0, "note": 12}),
        annotation(2, 1, 2, bbox=[0, 0, 64, 48], iscrowd=1, score=0.75,
                   segmentation=crowd_rle(48, 64, compressed=False)),
        annotation(3, 7, 2, bbox=[0, 0, 64, 48], iscrowd=1, score=1,
                   segmentation=crowd_rle(48, 64, compressed=True)),
        annotation(4, 7, 1, bbox=[1, 1, 20, 20], segmentation=[[1, 1, 20, 1, 20, 20],
                                                               [30.333, 30, 40, 30, 40, 40.1]]),
        annotation(0, 7, 1, bbox=[2, 2, 5, 5], segmentation=[[2, 2, 7, 2, 7, 7]]),
        annotation(5, 3, 1, bbox=[3, 3, 4, 4], segmentation=[[]], attributes={"parked": "False"}),
        annotation(6, 4, 1, bbox=[4, 4, 4, 4], attributes={"outside": True}),
        annotation(8, 1, 1, bbox=[5, 5, 4, 4]),
        annotation(9, 99, 1, bbox=[1, 1, 1, 1]),
        annotation(10, 4, 1, segmentation=[]),
        annotation(11, 5, 1, bbox=[1, 1, 1, 1]),
        # Yes/no attributes as text (VOC writes "False").
        annotation(12, 1, 1, bbox=[6, 6, 2, 2], attributes={"occluded": "yes", "parked": "0"}),
        annotation(13, 7, 1, bbox=[7, 7, 2, 2], attributes={"occluded": "false"}),
        annotation(14, 4, 1, bbox=[8, 8, 2, 2], attributes={"occluded": 1}),
    ]  # fmt: skip
    categories = [{"id": 2, "name": "person", "supercategory": ""},
                  {"id": 1, "name": "car", "supercategory": ""}]  # fmt: skip
    return {"images": images, "annotations": annotations, "categories": categories}


def placed(folder: Path, content: dict[str, Any], name: str = "instances_default.json") -> Path:
    path = folder / "source" / "annotations" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(content).encode())
    return folder / "source"


def datumaro_read(source: Path, labels: list[LabelInfo]) -> tuple[Any, ...]:
    chosen = find(COCO, exporting=False)
    options = imports._import_needs(chosen, source, FRAMES)
    dataset = dm.Dataset.import_from(str(source), chosen.importer, **options)
    imported = mapping.from_dataset(dataset, labels, FRAMES, boxes_of_shapes=True)
    return imported.objects, imported.unknown_labels, imported.unknown_items


def fast_read(source: Path, labels: list[LabelInfo]) -> tuple[Any, ...]:
    read = streaming.plan_import(find(COCO, exporting=False), source).read(labels, FRAMES)
    objects: dict[str, list[Any]] = {"tags": [], "shapes": [], "tracks": []}
    for kind, chunk in read.chunks():
        objects[kind] += chunk
    return objects, read.unknown_labels, read.unknown_items


@pytest.mark.parametrize("labels", [READ_LABELS, [PERSON]], ids=["all labels", "one label"])
def test_the_fast_reader_reads_a_hand_written_file_as_datumaro_does(labels, tmp_path):
    source = placed(tmp_path, hand_written())
    assert fast_read(source, labels) == datumaro_read(source, labels)


@pytest.mark.parametrize("case", ["rectangles", "polygons", "ellipses", "masks", "random boxes",
                                  "attributes of every input type"])  # fmt: skip
def test_the_fast_reader_reads_our_exports_as_datumaro_does(case, tmp_path):
    frames, objects = EXPORT_CASES[case]
    datumaro_export(COCO, frames, objects, tmp_path / "source")
    source = tmp_path / "source"
    assert fast_read(source, LABELS) == datumaro_read(source, LABELS)


def test_a_declined_file_is_read_through_datumaro(tmp_path, monkeypatch):
    # Tracks: mapping makes them again of their shapes, frame by frame, and our masks.
    objects = {"tracks": TRACKS[:2], "shapes": MASKS}
    datumaro_export(COCO, FRAMES, objects, tmp_path / "source")
    source = tmp_path / "source"
    chosen = find(COCO, exporting=False)
    with pytest.raises(streaming.NotStreamable):
        streaming.plan_import(chosen, source)
    read = imports._file_reader(chosen, source, FRAMES)(LABELS)
    objects, labels, items = datumaro_read(source, LABELS)
    assert (dict(read.chunks()), read.unknown_labels, read.unknown_items) == (
        objects,
        labels,
        items,
    )
    assert objects["tracks"] and objects["shapes"]


def _without(content: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**content, **changes}


IMPORT_DECLINED = {
    "tracks": lambda c: _without(c, annotations=[
        {**c["annotations"][0], "attributes": {"track_id": 1, "keyframe": True}}]),
    "keypoints": lambda c: _without(c, annotations=[
        {**c["annotations"][0], "keypoints": [1, 1, 2]}, *c["annotations"][1:]]),
    "an RLE of another size": lambda c: _without(c, annotations=[
        {**c["annotations"][1], "segmentation": crowd_rle(10, 10, compressed=False)}]),
    "category 0": lambda c: _without(c, categories=[{"id": 0, "name": "car"}]),
    "a box of 3 numbers": lambda c: _without(c, annotations=[
        {**c["annotations"][0], "bbox": [1, 2, 3]}]),
    "an image given twice": lambda c: _without(c, images=c["images"] + c["images"][:1]),
    "a polygon of 2 points": lambda c: _without(c, annotations=[
        {**c["annotations"][0], "segmentation": [[1, 2, 3, 4]]}]),
    "no categories": lambda c: {k: v for k, v in c.items() if k != "categories"},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(IMPORT_DECLINED))
def test_what_the_reader_cannot_reproduce_is_declined(case, tmp_path):
    source = placed(tmp_path, IMPORT_DECLINED[case](hand_written()))
    with pytest.raises(streaming.NotStreamable):
        streaming.plan_import(find(COCO, exporting=False), source)


def test_files_elsewhere_or_several_are_declined(tmp_path):
    chosen = find(COCO, exporting=False)
    source = placed(tmp_path / "two", hand_written())
    placed(tmp_path / "two", hand_written(), name="instances_train.json")
    loose = tmp_path / "loose" / "source"
    loose.mkdir(parents=True)
    (loose / "instances_default.json").write_text(json.dumps(hand_written()))
    broken = placed(tmp_path / "broken", {})
    (broken / "annotations" / "instances_default.json").write_text("{not json")
    for declined in (source, loose, broken):
        with pytest.raises(streaming.NotStreamable):
            streaming.plan_import(chosen, declined)
    with pytest.raises(streaming.NotStreamable):
        streaming.plan_import(find("Datumaro 1.0", exporting=False), source)


def test_chunks_are_checked_as_one_body():
    good = box(0, [1, 1, 2, 2]) | {"label_id": 1}
    chunks = iter([("shapes", [good, good]), ("shapes", [good, good | {"frame": -1}])])
    with pytest.raises(InvalidInput) as refused:
        imports._converted(chunks)
    with pytest.raises(InvalidInput) as whole:
        imports.annotation_body.convert({"shapes": [good, good, good, good | {"frame": -1}]})
    assert refused.value.fields == whole.value.fields
    body = imports._converted(iter([("shapes", [good]), ("shapes", [good]), ("tracks", [])]))
    assert len(body.shapes) == 2

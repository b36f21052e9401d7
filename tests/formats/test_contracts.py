"""Every enabled format's contract: what an export then an import keeps, what it cannot
keep and why, what Datumaro's own importer finds in the dataset export, and that a file
of another format is refused. Bugs are strict xfails naming the bug."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from labelyard.formats.registry import all_formats
from tests.formats.contract import Becomes, FormatContract, Trips
from tests.formats.scenes import FEATURES, FRAMES, HEIGHT, LABELS, WIDTH, Seen

# pycocotools, which Datumaro draws polygons into masks with, against NumPy 2.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# --- what Datumaro's importer cannot read ---------------------------------------------

TRACK_MASKS = (
    "Datumaro's CVAT reader cannot read a <mask> in a <track> (it wants the <image> "
    "element's size, which CVAT for video has not, and fails the whole file)"
)

# --- why a format cannot carry something -------------------------------------------------

NO_TRACKS = "the format has no tracks"
TRACK_AS_SHAPES = Becomes("rectangle", "a track is written frame by frame as shapes")
MASK_TRACK_AS_MASKS = Becomes("mask", "a track is written frame by frame as masks")
EVERY_FRAME_A_KEYFRAME = "a track has a shape on every frame: each comes back as a keyframe"
DRAWN = Becomes("mask", "shapes are drawn into the masks, as CVAT does")


def lost(why: str, *features: str) -> dict[str, str | Becomes]:
    return dict.fromkeys(features, why)


def the_rest(
    carries: frozenset[str], why: str, special: dict[str, str | Becomes] | None = None
) -> dict[str, str | Becomes]:
    """Every feature not carried: for ``why``, unless ``special`` says otherwise."""
    special = special or {}
    assert set(special) <= set(FEATURES) - carries, set(special)
    return {f: special.get(f, why) for f in FEATURES if f not in carries}


# --- the formats ---------------------------------------------------------------------------


class TestDatumaro(FormatContract):
    __test__ = True
    format_name = "Datumaro 1.0"
    carries = frozenset(FEATURES)
    cannot_carry = the_rest(carries, "Datumaro's own format keeps everything")
    foreign_format = "COCO 1.0"
    # Three tags; nine boxes, the track's three and the other track's two; the mask and
    # the mask track's two.
    dataset_counts = {"items": 5, "label": 3, "bbox": 14, "polygon": 1, "polyline": 1,
                      "points": 1, "ellipse": 1, "cuboid_2d": 1, "mask": 3}  # fmt: skip


class TestCvatForImages(FormatContract):
    __test__ = True
    format_name = "CVAT for images 1.1"
    carries = frozenset({
        "tag", "tag attributes", "caption", "rectangle", "polygon", "rotation", "attributes",
        "occluded", "z_order", "group", "transcription", "polyline", "points", "ellipse",
        "label", "cuboid", "mask",
    })  # fmt: skip
    cannot_carry = the_rest(carries, NO_TRACKS, {
        "track": TRACK_AS_SHAPES, "mask track": MASK_TRACK_AS_MASKS,
    })  # fmt: skip
    # Nine boxes (one rotated), the track's three and the other track's two; Datumaro's
    # reader skips the <ellipse> and the <cuboid>.
    dataset_counts = {"items": 5, "label": 3, "bbox": 13, "rotated_bbox": 1, "polygon": 1,
                      "polyline": 1, "points": 1, "mask": 3}  # fmt: skip


class TestCvatForVideo(FormatContract):
    """Shapes come back as tracks of one frame (CVAT writes them so too); the contract
    finds them in their places."""

    __test__ = True
    format_name = "CVAT for video 1.1"
    media = "video"
    carries = frozenset(FEATURES) - {"tag", "tag attributes", "caption"}
    cannot_carry = lost("CVAT for video holds no tags (nor does CVAT's)",
                        "tag", "tag attributes", "caption")  # fmt: skip
    unreadable_by_datumaro = {"mask": TRACK_MASKS, "mask track": TRACK_MASKS}
    # Every shape is a track, which Datumaro's reader gives back with its outside
    # shapes: the nine boxes (one rotated) and the box tracks' frames, each shape's
    # outside one on the next frame; the polygon, the polyline and the points, likewise.
    # It skips the <ellipse> and the <cuboid>.
    dataset_counts = {"items": 5, "bbox": 22, "rotated_bbox": 2, "polygon": 2,
                      "polyline": 2, "points": 2}  # fmt: skip


class TestCoco(FormatContract):
    __test__ = True
    format_name = "COCO 1.0"
    carries = frozenset({
        "rectangle", "polygon", "rotation", "attributes", "occluded", "transcription",
        "label", "mask", "track", "keyframes", "outside", "track attributes", "mask track",
    })  # fmt: skip
    cannot_carry = the_rest(carries, "COCO holds boxes, polygons and masks of objects", {
        **lost("COCO has no image labels", "tag", "tag attributes", "caption"),
        "z_order": "COCO has no drawing order",
        "group": "the shapes of a group are one COCO object: the box around them",
        "ellipse": Becomes("polygon", "COCO has no ellipses: they are written as polygons"),
    })  # fmt: skip
    # Nine boxes, two of them one grouped object, the track's three and the other
    # track's two; the mask and the mask track's two; a box for each of the two polygons
    # (the polygon, and the ellipse written as one) and for each of the three masks.
    dataset_counts = {"items": 5, "bbox": 18, "polygon": 2, "mask": 3}

    def test_seed_002_pycocotools_reads_the_export_and_agrees(
        self, trips: Trips, tmp_path: Path
    ) -> None:
        trip = trips.trip()
        with zipfile.ZipFile(io.BytesIO(trip.file)) as bundle:
            (name,) = [n for n in bundle.namelist() if n.endswith(".json")]
            (tmp_path / "instances.json").write_bytes(bundle.read(name))
        coco = COCO(str(tmp_path / "instances.json"))
        images = {image["id"]: image["file_name"] for image in coco.loadImgs(coco.getImgIds())}
        categories = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        assert sorted(images.values()) == [f"img_{n}.jpg" for n in range(FRAMES)]
        assert sorted(categories.values()) == sorted(label["name"] for label in LABELS)
        expected = coco_objects(trip.source.every_shape())
        found = coco.loadAnns(coco.getAnnIds())
        assert len(found) == len(expected)
        for frame, label, box, area, slack in expected:
            (match,) = [
                ann for ann in found
                if images[ann["image_id"]] == f"img_{frame}.jpg"
                and all(abs(a - b) <= 1 for a, b in zip(ann["bbox"], box, strict=True))
            ]  # fmt: skip
            assert categories[match["category_id"]] == label
            assert match["area"] == pytest.approx(area, abs=slack)
            if match["segmentation"]:
                drawn = coco.annToMask(match)
                assert drawn.shape == (HEIGHT, WIDTH)
                assert drawn.sum() == pytest.approx(match["area"])


class TestPascalVoc(FormatContract):
    __test__ = True
    format_name = "PASCAL VOC 1.1"
    carries = frozenset({
        "tag", "rectangle", "rotation", "attributes", "occluded", "transcription", "label",
        "mask", "track", "keyframes", "outside", "track attributes",
    })  # fmt: skip
    cannot_carry = the_rest(carries, "VOC holds boxes, and masks of objects", {
        **lost("VOC's image labels have no attributes", "tag attributes", "caption"),
        "polygon": "VOC holds boxes and masks; polygons are not drawn into masks",
        "z_order": "VOC has no drawing order",
        "group": "VOC has no groups",
        "mask track": MASK_TRACK_AS_MASKS,
    })  # fmt: skip
    # Three image labels; nine boxes, the track's three and the other track's two; the
    # mask and the mask track's.
    dataset_counts = {"items": 5, "label": 3, "bbox": 14, "mask": 3}


class TestYolo(FormatContract):
    __test__ = True
    format_name = "YOLO 1.1"
    carries = frozenset({"rectangle", "label"})
    cannot_carry = the_rest(carries, "YOLO holds only boxes and their labels",
                            {"track": TRACK_AS_SHAPES})  # fmt: skip
    # Coordinates are fractions of the frame's size with six decimals: a hundredth of a
    # pixel on frames up to 10,000 pixels wide.
    digits = 2
    # Nine boxes, the track's three and the other track's two.
    dataset_counts = {"items": 5, "bbox": 14}


class TestImageNet(FormatContract):
    __test__ = True
    format_name = "ImageNet 1.0"
    carries = frozenset({"tag"})
    cannot_carry = the_rest(carries, "ImageNet holds only image labels (a folder per label)")
    # One image label per tag.
    dataset_counts = {"items": 5, "label": 3}


class TestLabelMe(FormatContract):
    __test__ = True
    format_name = "LabelMe 3.0"
    carries = frozenset({
        "rectangle", "polygon", "rotation", "attributes", "occluded", "group",
        "transcription", "label", "mask", "track", "keyframes", "outside",
        "track attributes", "mask track",
    })  # fmt: skip
    cannot_carry = the_rest(carries, "LabelMe holds boxes, polygons and masks of objects", {
        **lost("LabelMe has no image labels", "tag", "tag attributes", "caption"),
        "z_order": "LabelMe has no drawing order",
    })  # fmt: skip
    # Nine boxes, the track's three and the other track's two; the mask and the mask
    # track's two.
    dataset_counts = {"items": 5, "bbox": 14, "polygon": 1, "mask": 3}


class TestSegmentationMask(FormatContract):
    __test__ = True
    format_name = "Segmentation mask 1.1"
    carries = frozenset({"label", "mask"})
    cannot_carry = the_rest(carries, "the format holds only masks and their labels", {
        **dict.fromkeys(["rectangle", "polygon", "ellipse", "track", "mask track"], DRAWN),
        "group": "the shapes of a group are drawn into one mask",
    })  # fmt: skip
    # Everything drawn: eight boxes (two grouped into one), the polygon, the ellipse, the
    # two box tracks' five frames, the mask and the mask track's two.
    dataset_counts = {"items": 5, "mask": 18}


class TestMot(FormatContract):
    __test__ = True
    format_name = "MOT 1.1"
    media = "video"
    carries = frozenset({"rectangle", "occluded", "label", "track", "outside"})
    cannot_carry = the_rest(carries, "MOT holds boxes of tracks, without attributes",
                            {"keyframes": EVERY_FRAME_A_KEYFRAME})  # fmt: skip
    # Nine boxes, the track's three and the other track's two.
    dataset_counts = {"items": 5, "bbox": 14}


class TestMots(FormatContract):
    __test__ = True
    format_name = "MOTS PNG 1.0"
    media = "video"
    carries = frozenset({"mask track", "outside"})
    cannot_carry = the_rest(carries, "MOTS holds only the masks of tracks", {
        "track": Becomes("mask", "a track's boxes are drawn into masks"),
        "keyframes": EVERY_FRAME_A_KEYFRAME,
    })  # fmt: skip
    # The two box tracks' five frames drawn as masks, and the mask track's two.
    dataset_counts = {"items": 5, "mask": 7}


class TestOcrDetection(FormatContract):
    __test__ = True
    format_name = "OCR DETECTION 1.0"
    carries = frozenset({"rectangle", "transcription"})
    cannot_carry = the_rest(carries, "ICDAR holds text boxes and their transcription", {
        "polygon": "ICDAR polygons have four corners: the others are cut off",
        "label": "ICDAR has no labels: everything comes back as 'icdar'",
        "attributes": "ICDAR keeps only the transcription (the attribute 'text')",
        "track": TRACK_AS_SHAPES,
    })  # fmt: skip
    foreign_format = "COCO 1.0"
    # Nine boxes, the track's three and the other track's two; the polygon cut to four.
    dataset_counts = {"items": 5, "bbox": 14, "polygon": 1}


class TestOcrRecognition(FormatContract):
    __test__ = True
    format_name = "OCR RECOGNITION 1.0"
    carries = frozenset({"caption"})
    cannot_carry = the_rest(carries, "ICDAR word recognition holds transcriptions of images", {
        "tag": "only tags with a 'text' attribute are captions",
        "transcription": "the text of a shape is a caption: it comes back as a tag",
    })  # fmt: skip
    foreign_format = "YOLO 1.1"
    # The caption, and the transcription of the text box.
    dataset_counts = {"items": 5, "caption": 2}


def _contracts() -> list[type[FormatContract]]:
    return [c for c in FormatContract.__subclasses__() if c.__module__ == __name__]


def test_every_enabled_format_has_one_contract() -> None:
    named = sorted(contract.format_name for contract in _contracts())
    enabled = sorted(f.display_name for f in all_formats() if f.enabled)
    assert named == enabled


# --- COCO as ours: what pycocotools should find ------------------------------------------


def coco_objects(shapes: list[Seen]) -> list[tuple[int, str, list[float], float, float]]:
    """What COCO holds for ``shapes``: (frame, label, box [x, y, w, h], area, how far the
    area may be from ours), one object per shape or group of shapes."""
    kept = [s for s in shapes if s.kind in ("rectangle", "polygon", "ellipse", "mask")]
    groups: dict[tuple[int, int], list[Seen]] = {}
    objects = []
    for shape in kept:
        if shape.group:
            groups.setdefault((shape.frame, shape.group), []).append(shape)
        else:
            objects.append([shape])
    objects += groups.values()
    result = []
    for parts in objects:
        boxes = [p.box for p in parts if p.kind == "rectangle"] or [p.box for p in parts]
        x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        if len(parts) > 1 or parts[0].kind == "rectangle":
            area, slack = (x2 - x1) * (y2 - y1), 0.0
        else:
            area, slack = _area(parts[0])
        if parts[0].kind == "mask":  # its box is of pixels, right and bottom included
            x2, y2 = x2 + 1, y2 + 1
        result.append((parts[0].frame, parts[0].label, [x1, y1, x2 - x1, y2 - y1], area, slack))
    return result


def _area(shape: Seen) -> tuple[float, float]:
    """A shape's area, and how far a drawing of it in pixels may be off (half its outline)."""
    if shape.kind == "mask":
        return sum(shape.points[1:-4:2]), 0.0
    if shape.kind == "ellipse":
        x1, y1, x2, y2 = shape.box
        rx, ry = (x2 - x1) / 2, (y2 - y1) / 2
        return math.pi * rx * ry, math.pi * math.sqrt((rx * rx + ry * ry) / 2)
    xs, ys = shape.points[0::2], shape.points[1::2]
    corners = list(zip(xs, ys, strict=True))
    edges = list(zip(corners, corners[1:] + corners[:1], strict=True))
    twice = sum(a[0] * b[1] - b[0] * a[1] for a, b in edges)
    outline = sum(math.dist(a, b) for a, b in edges)
    return abs(twice) / 2, outline / 2

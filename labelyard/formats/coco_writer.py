"""COCO 1.0 instances written as Datumaro's ``coco_instances`` exporter writes them (with
``segmentation_mode="guess"``, the format's options), for the shapes it writes one
instance each of: rectangles (a box), polygons and ellipses (a polygon), masks (an
uncompressed RLE, ``iscrowd`` 1). Tags, polylines, points and cuboids are no instance.

The JSON goes into the archive a chunk of frames at a time; its numbers are Datumaro's
to the bit: coordinates float32 rounded to 2 decimals, then boxes, areas and ``bbox``
computed and rounded as its exporter does (pycocotools for a polygon's area)."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pycocotools.mask as mask_utils
from datumaro.components.annotation import Ellipse

from labelyard.formats.items import (
    Items,
    ItemShape,
    Progress,
    box_corners,
    image_file_name,
    image_sizes,
    round2,
    rounded,
)
from labelyard.formats.mapping import _mask_image

INSTANCE_KINDS = frozenset({"rectangle", "polygon", "ellipse", "mask"})
HEADER = {
    "licenses": [{"name": "", "id": 0, "url": ""}],
    "info": {"contributor": "", "date_created": "", "description": "", "url": "",
             "version": "", "year": ""},
}  # fmt: skip


def write_coco(
    items: Items, bundle: zipfile.ZipFile, images: Mapping[int, Path] | None, progress: Progress
) -> None:
    """``annotations/instances_<subset>.json``, and ``images/<subset>/...`` with the
    images."""
    frames = items.frames
    sizes = image_sizes(frames, images)
    if images is not None:
        for frame in frames:
            name = image_file_name(frame, images)
            bundle.write(images[frame.number], f"images/{items.subset}/{name}")
    categories = [
        {"id": position + 1, "name": label.name, "supercategory": ""}
        for position, label in enumerate(items.labels)
    ]
    entries = [
        {"id": position + 1, "width": width, "height": height,
         "file_name": image_file_name(frame, images), "license": 0, "flickr_url": "",
         "coco_url": "", "date_captured": 0}
        for position, (frame, (width, height)) in enumerate(zip(frames, sizes, strict=True))
    ]  # fmt: skip
    # Per frame: its image's id (the item's place, from 1) and size, and the frame's
    # own size (mapping draws masks that large; an image's may differ).
    images_of = {
        frame.number: (position + 1, height, width, frame.height, frame.width)
        for position, (frame, (width, height)) in enumerate(zip(frames, sizes, strict=True))
    }
    name = f"annotations/instances_{items.subset}.json"
    with bundle.open(name, "w", force_zip64=True) as file:
        # The header and the images as one object, left open for the annotations.
        file.write(orjson.dumps(HEADER | {"categories": categories, "images": entries})[:-1])
        file.write(b',"annotations":[')
        next_id, done = 1, 0
        for chunk in items.chunks():
            instances = [
                (frame.number, shape)
                for frame, shapes in chunk
                for shape in shapes
                if shape.kind in INSTANCE_KINDS
            ]
            if instances:
                # Datumaro numbers the instances it writes from 1, in order.
                written = orjson.dumps(_annotations(instances, images_of, next_id))
                file.write((b"," if next_id > 1 else b"") + written[1:-1])
                next_id += len(instances)
            done += len(chunk)
            progress(done / len(frames))
        file.write(b"]}")


def _annotations(
    instances: list[tuple[int, ItemShape]],
    images_of: dict[int, tuple[int, int, int, int, int]],
    first_id: int,
) -> list[dict[str, Any]]:
    # A shape's attributes always hold "occluded": never empty, always written.
    return [
        {"id": number, "image_id": images_of[frame][0], "category_id": shape.label + 1,
         "segmentation": segmentation, "area": area, "bbox": bbox, "iscrowd": crowd,
         "attributes": shape.attributes}
        for number, ((frame, shape), (segmentation, area, bbox, crowd)) in enumerate(
            zip(instances, _geometries(instances, images_of), strict=True), start=first_id
        )
    ]  # fmt: skip


def _geometries(
    instances: list[tuple[int, ItemShape]], images_of: dict[int, tuple[int, int, int, int, int]]
) -> list[tuple[Any, float, list[float], int]]:
    """Each instance's segmentation, area, bbox and iscrowd."""
    boxes = _boxes([shape for _, shape in instances if shape.kind == "rectangle"])
    if len(boxes) == len(instances):
        return boxes
    # A polygon's coordinates as Datumaro keeps them, for all of the chunk's at once.
    polygons = rounded(
        [v for _, shape in instances if shape.kind == "polygon" for v in shape.points]
    )
    next_box = iter(boxes)
    at = 0
    geometries = []
    for frame, shape in instances:
        _, height, width, frame_height, frame_width = images_of[frame]
        if shape.kind == "rectangle":
            geometries.append(next(next_box))
        elif shape.kind == "polygon":
            points = polygons[at : at + len(shape.points)]
            at += len(shape.points)
            xs, ys = points[0::2], points[1::2]
            bbox, _, _ = _box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
            geometries.append(([points], _polygons_area([points], height, width), bbox, 0))
        elif shape.kind == "ellipse":
            # mapping's Ellipse: given by its centre and a corner, as the box around it.
            cx, cy, right, top = shape.points
            rx, ry = abs(right - cx), abs(cy - top)
            ellipse = Ellipse(cx - rx, cy - ry, cx + rx, cy + ry)
            bbox, _, _ = _box(*ellipse.get_bbox())
            segmentation = [[float(v) for v in ellipse.as_polygon()]]
            geometries.append((segmentation, _polygons_area(segmentation, height, width), bbox, 0))
        else:
            geometries.append((*_mask(shape.points, frame_height, frame_width), 1))
    return geometries


def _boxes(rectangles: list[ItemShape]) -> list[tuple[Any, float, list[float], int]]:
    """Each rectangle's geometry, for all of them at once: its corners as the Bbox(x, y,
    w, h) Datumaro is given has them, float32 rounded; then max_bbox of the one box, its
    area unrounded and its ``bbox`` rounded to 2 decimals."""
    kept = box_corners([shape.points for shape in rectangles])
    x, y = kept[:, 0], kept[:, 1]
    width, height = (x + (kept[:, 2] - x)) - x, (y + (kept[:, 3] - y)) - y
    bboxes = round2(np.stack([x, y, width, height], axis=1))
    return [
        ([], area, bbox, 0) for bbox, area in zip(bboxes, (width * height).tolist(), strict=True)
    ]


def _box(x: float, y: float, w: float, h: float) -> tuple[list[float], float, float]:
    """The instance's ``bbox`` (Datumaro's max_bbox of its one shape, rounded to 2
    decimals) and the box's width and height, unrounded."""
    right, bottom = x + w, y + h
    width, height = right - x, bottom - y
    return [round(float(v), 2) for v in (x, y, width, height)], width, height


def _polygons_area(polygons: list[list[float]], height: int, width: int) -> float:
    rles = mask_utils.frPyObjects(polygons, height, width)
    return float(mask_utils.area(mask_utils.merge(rles)))


def _mask(
    points: list[float], height: int, width: int
) -> tuple[dict[str, list[int]], float, list[float]]:
    """CVAT's mask as COCO's uncompressed RLE (column by column, off first) of the whole
    frame, as mapping draws it, then its area and box."""
    image = _mask_image(points, (height, width))()
    flat = image.ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], changes, [flat.size]))).tolist()
    if flat[0]:
        counts.insert(0, 0)
    rows, columns = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    top, left = int(rows[0]), int(columns[0])
    bbox, _, _ = _box(left, top, int(columns[-1]) - left + 1, int(rows[-1]) - top + 1)
    segmentation = {"counts": counts, "size": [int(image.shape[0]), int(image.shape[1])]}
    return segmentation, float(np.count_nonzero(flat)), bbox

"""YOLO 1.1 written as Datumaro's ``yolo`` exporter writes it: ``obj.names``,
``obj.data``, the list of images (``train.txt`` for the default subset) and, per image,
``obj_<subset>_data/<item>.txt`` with a line per rectangle (tracks' included): the
label's position, then the box's centre and size relative to the image, to 6 decimals.
Other shapes are left out, as there."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from labelyard.formats.items import (
    Items,
    ItemShape,
    Progress,
    box_corners,
    image_file_name,
    image_sizes,
)

# Datumaro's line: the label's position, the box's centre and size, "%.6f" each.
LINE = "%d %.6f %.6f %.6f %.6f\n"


def write_yolo(
    items: Items, bundle: zipfile.ZipFile, images: Mapping[int, Path] | None, progress: Progress
) -> None:
    sizes = image_sizes(items.frames, images)
    subset = "train" if items.subset == "default" else items.subset
    folder = f"obj_{subset}_data"
    bundle.writestr("obj.names", "".join(f"{label.name}\n" for label in items.labels))
    listed = []
    done = 0
    for chunk in items.chunks():
        rectangles = [
            (position, shape)
            for position, (_, shapes) in enumerate(chunk)
            for shape in shapes
            if shape.kind == "rectangle"
        ]
        # Per item: its rectangles' labels and boxes, one line each.
        values: list[list[float]] = [[] for _ in chunk]
        for (position, shape), box in zip(rectangles, _boxes(rectangles, sizes, done), strict=True):
            values[position] += (shape.label, *box)
        for (frame, _), numbers in zip(chunk, values, strict=True):
            name = image_file_name(frame, images)
            text = LINE * (len(numbers) // 5) % tuple(numbers)
            bundle.writestr(f"{folder}/{frame.item_id}.txt", text)
            if images is not None:
                bundle.write(images[frame.number], f"{folder}/{name}")
            listed.append(f"data/{folder}/{name}\n")
        done += len(chunk)
        progress(done / len(items.frames))
    bundle.writestr(f"{subset}.txt", "".join(listed))
    bundle.writestr(
        "obj.data",
        f"classes = {len(items.labels)}\n{subset} = data/{subset}.txt\n"
        "names = data/obj.names\nbackup = backup/\n",
    )


def _boxes(
    rectangles: list[tuple[int, ItemShape]], sizes: list[tuple[int, int]], first: int
) -> list[list[float]]:
    """Each rectangle's centre and size relative to its image, for all at once, from its
    corners as Datumaro keeps them."""
    if not rectangles:
        return []
    x1, y1, x2, y2 = box_corners([shape.points for _, shape in rectangles]).T
    places = np.fromiter((first + position for position, _ in rectangles), dtype=np.int64)
    width, height = np.asarray(sizes, dtype=np.int64)[places].T
    return np.stack(
        [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height],
        axis=1,
    ).tolist()

"""YOLO 1.1: one text file of normalised boxes per image."""

from labelyard.formats.registry import Format

FORMATS = [
    Format("YOLO", "1.1", exporter="yolo", importer="yolo", import_needs="image_info"),
]  # fmt: skip

"""LabelMe 3.0: one XML file per image (boxes, polygons, masks)."""

from labelyard.formats.registry import Format

FORMATS = [
    Format("LabelMe", "3.0", exporter="label_me", importer="label_me"),
]  # fmt: skip

"""PASCAL VOC 1.1: boxes per image (XML), class and instance masks, image-level labels."""

from labelyard.formats.registry import Format

FORMATS = [
    Format("PASCAL VOC", "1.1", exporter="voc", importer="voc",
           export_options={"label_map": "source"}),
]  # fmt: skip

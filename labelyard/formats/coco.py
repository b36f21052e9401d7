"""COCO 1.0: instances (boxes, polygons, masks) and image info in one JSON file."""

from labelyard.formats.registry import Format

FORMATS = [
    Format(
        "COCO", "1.0", exporter="coco_instances", importer="coco_instances",
        export_options={"segmentation_mode": "guess"}, import_needs="image_files",
        boxes_of_shapes=True,
    ),
]  # fmt: skip

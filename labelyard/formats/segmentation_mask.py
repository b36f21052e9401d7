"""Segmentation mask 1.1: PNG class and instance masks in VOC's layout; polygons and
boxes are drawn into the masks, as CVAT does."""

from labelyard.formats.registry import Format

FORMATS = [
    Format("Segmentation mask", "1.1", exporter="voc_segmentation", importer="voc_segmentation",
           export_options={"label_map": "source"},
           transforms=(("polygons_to_masks", {}), ("boxes_to_masks", {}),
                       ("merge_instance_segments", {}))),
]  # fmt: skip

"""CVAT's own XML: for images (shapes per image) and for video (tracks)."""

from labelyard.formats.registry import Format

FORMATS = [
    Format(
        "CVAT for images", "1.1", exporter="cvat", importer="cvat", import_needs="image_files",
        carries=frozenset({"tag", "rectangle", "polygon", "polyline", "points",
                           "attributes", "occluded", "z_order", "group"}),
    ),
    Format(
        "CVAT for video", "1.1", exporter="cvat", importer="cvat", import_needs="image_files",
        export_options={"use_track": True},
        carries=frozenset({"rectangle", "polygon", "polyline", "points", "attributes",
                           "occluded", "track"}),
    ),
]  # fmt: skip

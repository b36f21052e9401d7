"""CVAT's own XML: for images (shapes per image) and for video (tracks). One reader
takes both, which CVAT 1.x's importer list calls ``CVAT 1.1``."""

from labelyard.formats.registry import Format

FORMATS = [
    Format(
        "CVAT for images", "1.1", exporter="cvat", importer="cvat", import_needs="image_files",
        cvat_xml="images", import_ext="XML, ZIP", importer_name="CVAT 1.1",
    ),
    Format(
        "CVAT for video", "1.1", exporter="cvat", importer="cvat", import_needs="image_files",
        export_options={"use_track": True}, tracks_only=True, cvat_tracks=True,
        cvat_xml="video", import_ext="XML, ZIP",
    ),
]  # fmt: skip

"""Datumaro 1.0: Datumaro's own JSON, which keeps everything labelyard has."""

from labelyard.formats.registry import Format

FORMATS = [
    Format(
        "Datumaro", "1.0", exporter="datumaro", importer="datumaro",
    ),
]  # fmt: skip

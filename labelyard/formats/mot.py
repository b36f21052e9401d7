"""MOT 1.1: MOT challenge ground truth (boxes with track ids), frames counted from 1."""

from labelyard.formats.registry import Format

FORMATS = [
    Format("MOT", "1.1", exporter="mot_seq_gt", importer="mot_seq", numbered_items=True),
]  # fmt: skip

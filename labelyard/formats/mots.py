"""MOTS PNG 1.0: per-frame instance masks of tracks; polygons and boxes are drawn into
masks first."""

from labelyard.formats.mapping import BinaryMasks
from labelyard.formats.registry import Format

FORMATS = [
    Format("MOTS PNG", "1.0", exporter="mots_png", importer="mots", numbered_items=True,
           tracks_only=True,
           transforms=(("polygons_to_masks", {}), ("boxes_to_masks", {}), (BinaryMasks, {}))),
]  # fmt: skip

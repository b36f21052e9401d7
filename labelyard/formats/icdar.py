"""ICDAR, under seed 001's names: OCR DETECTION (text boxes and polygons) and OCR
RECOGNITION (a transcription per image); CVAT 1.x's names for them are taken too."""

from labelyard.formats.mapping import TextCaptions
from labelyard.formats.registry import Format

FORMATS = [
    Format("OCR DETECTION", "1.0", exporter="icdar_text_localization",
           importer="icdar_text_localization", aliases=("ICDAR Localization 1.0",)),
    Format("OCR RECOGNITION", "1.0", exporter="icdar_word_recognition",
           importer="icdar_word_recognition", aliases=("ICDAR Recognition 1.0",),
           transforms=((TextCaptions, {}),)),
]  # fmt: skip

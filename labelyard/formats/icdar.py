"""ICDAR, under seed 001's names: OCR DETECTION (text boxes and polygons) and OCR
RECOGNITION (a transcription per image)."""

from labelyard.formats.mapping import TextCaptions
from labelyard.formats.registry import Format

FORMATS = [
    Format("OCR DETECTION", "1.0", exporter="icdar_text_localization",
           importer="icdar_text_localization"),
    Format("OCR RECOGNITION", "1.0", exporter="icdar_word_recognition",
           importer="icdar_word_recognition",
           transforms=((TextCaptions, {}),)),
]  # fmt: skip

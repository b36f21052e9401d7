"""TFRecord 1.0 (TensorFlow Object Detection API): needs TensorFlow, so it is listed as
disabled unless TensorFlow is installed."""

from labelyard.formats.registry import Format

FORMATS = [
    Format("TFRecord", "1.0", exporter="tf_detection_api", importer="tf_detection_api",
           requires="tensorflow"),
]  # fmt: skip

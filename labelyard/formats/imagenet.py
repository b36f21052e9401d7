"""ImageNet 1.0: images in one folder per label (tags only); always with the images."""

from labelyard.formats.registry import Format

FORMATS = [
    Format("ImageNet", "1.0", exporter="imagenet", importer="imagenet", images_always=True),
]  # fmt: skip

"""The annotation formats: each declared once, in a module of its own, with what it can do.

A format's name and version are CVAT's (``COCO 1.0``); clients pass ``name version`` as
``format=``. The conversions run through Datumaro (``labelyard.formats.mapping``). What a
round trip through each format keeps, and what it cannot, is declared and checked by its
contract in ``tests/formats/test_contracts.py``."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

from labelyard.services.errors import InvalidInput, LabelyardError


@dataclass(frozen=True)
class Format:
    name: str
    version: str
    # Datumaro's format ids; None where the format cannot go that way.
    exporter: str | None
    importer: str | None
    ext: str = "ZIP"
    # What the importer takes, where it is more than ``ext`` (CVAT's XML as it is).
    import_ext: str | None = None
    dimension: str = "2D"
    # Options for Datumaro's exporter (e.g. which COCO tasks).
    export_options: dict[str, Any] = field(default_factory=dict)
    # A Python module the format needs that is not installed with labelyard.
    requires: str | None = None
    # Datumaro transforms run before the export (e.g. shapes drawn into masks).
    transforms: tuple[tuple[str | type, dict[str, Any]], ...] = ()
    # The format is folders of images: exported with them even when only annotations
    # are asked for.
    images_always: bool = False
    # Items are the frame numbers counted from 1 (MOT), not the frames' names.
    numbered_items: bool = False
    # Imported boxes grouped with a polygon or mask are those shapes' boxes (COCO).
    boxes_of_shapes: bool = False
    # A tracking format: only tracks are exported.
    tracks_only: bool = False
    # Tracks as CVAT for video writes them: shapes as tracks of one frame, and an
    # outside shape where a track ends.
    cvat_tracks: bool = False
    # CVAT's XML, "images" or "video", written and read by formats/cvat_xml.py rather
    # than Datumaro (which still writes a project's several tasks).
    cvat_xml: str | None = None
    # What Datumaro's importer needs besides the file: "image_files" (the frames as
    # empty files under images/, for the checks it makes), "image_info" (frame sizes).
    import_needs: str | None = None
    # Other names clients ask for the format by, both ways: CVAT 1.x's, where it differs.
    aliases: tuple[str, ...] = ()
    # CVAT 1.x's name for this format's importer where the importer has a name of its own
    # ("CVAT 1.1" reads both of CVAT's XML): accepted for imports and listed with them.
    importer_name: str | None = None

    @property
    def display_name(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def enabled(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    def names(self, *, exporting: bool) -> tuple[str, ...]:
        """Every name this format answers to, going that way."""
        importer = () if exporting or self.importer_name is None else (self.importer_name,)
        return (self.display_name, *self.aliases, *importer)

    def describe(self, name: str | None = None, *, importing: bool = False) -> dict[str, Any]:
        """CVAT's entry in ``server/annotation/formats`` (under ``name``, if given)."""
        return {
            "name": name or self.display_name,
            "ext": (self.import_ext or self.ext) if importing else self.ext,
            "version": self.version,
            "enabled": self.enabled,
            "dimension": self.dimension,
        }


class FormatDisabled(LabelyardError):
    """The format is known but cannot run here (405, as CVAT answers)."""


def all_formats() -> list[Format]:
    from labelyard.formats import (
        coco,
        cvat,
        datumaro,
        icdar,
        imagenet,
        labelme,
        mot,
        mots,
        segmentation_mask,
        tfrecord,
        voc,
        yolo,
    )

    modules = (coco, cvat, datumaro, voc, yolo, imagenet, labelme, segmentation_mask, mot,
               mots, icdar, tfrecord)  # fmt: skip
    return [declared for module in modules for declared in module.FORMATS]


def find(name: str, *, exporting: bool) -> Format:
    """The format called ``name`` (``COCO 1.0``, or a CVAT 1.x name of it) that can export
    (or import)."""
    wanted = name.strip().lower()
    for candidate in all_formats():
        if wanted in (known.lower() for known in candidate.names(exporting=exporting)):
            if (candidate.exporter if exporting else candidate.importer) is None:
                way = "export" if exporting else "import"
                raise InvalidInput.on("format", f"{candidate.display_name} cannot {way}.")
            if not candidate.enabled:
                raise FormatDisabled(
                    f"{candidate.display_name} needs {candidate.requires}, which is not "
                    "installed on this server."
                )
            return candidate
    raise InvalidInput.on(
        "format", f"Unknown format {name!r}: see /api/v1/server/annotation/formats."
    )


def describe_all() -> dict[str, list[dict[str, Any]]]:
    formats = all_formats()
    importers = [f.describe(importing=True) for f in formats if f.importer is not None]
    for f in formats:
        listed = {entry["name"] for entry in importers}
        if f.importer is not None and f.importer_name and f.importer_name not in listed:
            importers.append(f.describe(f.importer_name, importing=True))
    return {
        "importers": importers,
        "exporters": [f.describe() for f in formats if f.exporter is not None],
    }

"""CVAT's XML as CVAT writes it, read without Datumaro: what the contracts' own files do
not show (a mask inside a track, an ellipse, a file that is not XML)."""

from __future__ import annotations

import pytest

from labelyard.formats import cvat_xml
from labelyard.formats.mapping import FrameInfo, LabelInfo, SpecInfo

LABELS = [LabelInfo(7, "car", (SpecInfo(1, "model", "select", mutable=False),
                               SpecInfo(2, "parked", "checkbox")))]  # fmt: skip
FRAMES = [FrameInfo(n, f"img_{n}.jpg", 40, 30) for n in range(4)]

VIDEO = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <track id="0" label="car" source="manual" group_id="3">
    <mask frame="1" keyframe="1" outside="0" occluded="0" rle="0, 2, 2" left="4" top="5"
          width="2" height="2" z_order="0">
      <attribute name="model">Audi</attribute>
      <attribute name="parked">true</attribute>
    </mask>
    <mask frame="2" keyframe="0" outside="0" occluded="1" rle="0, 2, 2" left="4" top="5"
          width="2" height="2" z_order="0">
      <attribute name="model">Audi</attribute>
      <attribute name="parked">true</attribute>
    </mask>
  </track>
  <track id="1" label="truck" source="manual">
    <box frame="0" keyframe="1" outside="0" occluded="0" xtl="1" ytl="1" xbr="2" ybr="2"/>
  </track>
</annotations>
"""

IMAGES = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <image id="0" name="img_2.jpg" width="40" height="30">
    <ellipse label="car" source="manual" occluded="0" cx="10.50" cy="8.00" rx="3.00"
             ry="2.00" rotation="30.00" z_order="1"/>
  </image>
  <image id="1" name="elsewhere.jpg" width="40" height="30"/>
</annotations>
"""


def _read(tmp_path, text: str):
    (tmp_path / "annotations.xml").write_text(text)
    return cvat_xml.read(tmp_path, LABELS, FRAMES)


def test_a_mask_track_comes_back_with_its_attributes_and_its_end(tmp_path):
    imported = _read(tmp_path, VIDEO)
    assert imported.unknown_labels == {"truck"}
    [track] = imported.objects["tracks"]
    assert track["group"] == 3
    assert track["attributes"] == [{"spec_id": 1, "value": "Audi"}]
    assert [(s["frame"], s["outside"], s["points"]) for s in track["shapes"]] == [
        (1, False, [0.0, 2.0, 2.0, 4.0, 5.0, 5.0, 6.0]),
        # Frame 2 is no keyframe but shows the track; it ends on frame 3.
        (3, True, [0.0, 2.0, 2.0, 4.0, 5.0, 5.0, 6.0]),
    ]
    assert track["shapes"][0]["attributes"] == [{"spec_id": 2, "value": "true"}]


def test_an_ellipse_and_images_the_task_lacks(tmp_path):
    imported = _read(tmp_path, IMAGES)
    [ellipse] = imported.objects["shapes"]
    assert (ellipse["type"], ellipse["frame"], ellipse["points"]) == (
        "ellipse", 2, [10.5, 8.0, 13.5, 6.0],
    )  # fmt: skip
    assert (ellipse["rotation"], ellipse["z_order"]) == (30.0, 1)
    assert imported.unknown_items == {"elsewhere.jpg"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<annotations><image name='img_0.jpg'>", "annotations.xml"),
        ("<dataset/>", "holds no <annotations>"),
        (
            "<annotations><image name='img_0.jpg'><box label='car' xtl='x'/></image></annotations>",
            "needs a number xtl",
        ),
    ],
)
def test_a_broken_file_says_why(tmp_path, text, reason):
    with pytest.raises(ValueError, match=reason):
        _read(tmp_path, text)

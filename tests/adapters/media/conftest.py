"""Sample videos, made once per test run (encoding is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.media.samples import truncated_copy, write_video


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def video(media_dir: Path) -> Path:
    """120 frames of 320x240 at 25 fps, a keyframe every 30 frames, no B-frames."""
    return write_video(media_dir / "clip.mp4")


@pytest.fixture(scope="session")
def bframe_video(media_dir: Path) -> Path:
    """As ``video``, with B-frames: packets come in another order than frames are shown."""
    return write_video(media_dir / "bframes.mp4", bframes=2)


@pytest.fixture(scope="session")
def faststart_video(media_dir: Path) -> Path:
    """As ``video``, with the index (moov) before the frames."""
    return write_video(media_dir / "faststart.mp4", faststart=True)


@pytest.fixture(scope="session")
def truncated_video(video: Path, media_dir: Path) -> Path:
    return truncated_copy(video, media_dir / "truncated.mp4")

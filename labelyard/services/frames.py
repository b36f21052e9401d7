"""A task's frames as the API serves them: meta, chunks (cached in storage), single
frames and previews, decoded from the dataset's assets."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from PIL import Image
from sqlalchemy import select

from labelyard.adapters.media.chunks import image_chunk, jpeg_zip, original_chunk, video_chunk
from labelyard.adapters.media.images import encode_jpeg, load_image, make_preview
from labelyard.adapters.media.video import read_frames
from labelyard.adapters.storage import Storage
from labelyard.config import Settings
from labelyard.domain import Asset, AssetKind, Task, TaskFrame
from labelyard.services.errors import NotFound
from labelyard.services.uow import UnitOfWork

CODEC_THREADS = min(4, os.cpu_count() or 1)
Quality = Literal["compressed", "original"]
QUALITIES: tuple[Quality, ...] = ("compressed", "original")
# Builders of one chunk take turns; a fixed set of locks, so the set does not grow with
# every chunk ever read.
_CHUNK_LOCKS = [threading.Lock() for _ in range(64)]


@dataclass(frozen=True)
class FrameRef:
    """Where one task frame comes from."""

    frame: int
    asset_id: int
    asset_frame: int
    name: str


def chunk_key(task_id: int, quality: Quality, number: int, video: bool) -> str:
    return f"tasks/{task_id}/chunks/{quality}-{number}.{'mp4' if video else 'zip'}"


def preview_key(task_id: int) -> str:
    return f"tasks/{task_id}/preview.jpeg"


def is_video_chunk(task: Task, quality: Quality) -> bool:
    kind = task.compressed_chunk_type if quality == "compressed" else task.original_chunk_type
    return kind == "video"


def chunk_media_type(task: Task, quality: Quality) -> str:
    return "video/mp4" if is_video_chunk(task, quality) else "application/zip"


class AssetFiles:
    """Local files of assets: the storage's own file when it has one, else a download kept
    in the data dir's cache."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.cache = settings.data_dir / "cache" / "assets"

    def path(self, asset: Asset) -> Path:
        local = self.storage.local_path(asset.storage_key)
        if local is not None:
            return local
        digest = hashlib.sha256(asset.storage_key.encode()).hexdigest()[:32]
        target = self.cache / f"{digest}{PurePosixPath(asset.name).suffix}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".part")
            self.storage.download(asset.storage_key, partial)
            partial.replace(target)
        return target


def frame_refs(uow: UnitOfWork, task_id: int, first: int, last: int) -> list[FrameRef]:
    rows = uow.session.execute(
        select(TaskFrame.frame, TaskFrame.asset_id, TaskFrame.asset_frame, TaskFrame.name)
        .where(TaskFrame.task_id == task_id, TaskFrame.frame.between(first, last))
        .order_by(TaskFrame.frame)
    )
    return [FrameRef(*row) for row in rows]


def decode(
    refs: Sequence[FrameRef], assets: dict[int, Asset], files: AssetFiles
) -> Iterator[Image.Image]:
    """The frames, in order; consecutive frames of one video are decoded in one pass."""
    index = 0
    while index < len(refs):
        ref = refs[index]
        asset = assets[ref.asset_id]
        if asset.kind == AssetKind.IMAGE:
            yield load_image(files.path(asset), name=asset.name)
            index += 1
            continue
        run = [ref]
        while (
            index + len(run) < len(refs)
            and refs[index + len(run)].asset_id == ref.asset_id
            and refs[index + len(run)].asset_frame > run[-1].asset_frame
        ):
            run.append(refs[index + len(run)])
        step = run[1].asset_frame - run[0].asset_frame if len(run) > 1 else 1
        wanted = {r.asset_frame for r in run}
        pts = (asset.extra or {}).get("keyframe_pts") or None
        for number, image in zip(
            range(run[0].asset_frame, run[-1].asset_frame + 1, step),
            read_frames(files.path(asset), run[0].asset_frame, run[-1].asset_frame + 1, step,
                        keyframes=asset.keyframes, keyframe_pts=pts),
            strict=False,
        ):  # fmt: skip
            if number in wanted:
                yield image
        index += len(run)


def load_assets(uow: UnitOfWork, refs: Sequence[FrameRef]) -> dict[int, Asset]:
    ids = {ref.asset_id for ref in refs}
    return {a.id: a for a in uow.session.scalars(select(Asset).where(Asset.id.in_(ids)))}


def build_chunk(
    task: Task,
    quality: Quality,
    refs: Sequence[FrameRef],
    assets: dict[int, Asset],
    files: AssetFiles,
) -> bytes:
    if quality == "original" and not is_video_chunk(task, quality):
        entries = []
        for offset, ref in enumerate(refs):
            asset = assets[ref.asset_id]
            if asset.kind == AssetKind.IMAGE:
                entries.append((f"{offset:06d}{PurePosixPath(asset.name).suffix}",
                                files.path(asset)))  # fmt: skip
        if len(entries) == len(refs):
            return original_chunk(entries)
    if all(assets[ref.asset_id].kind == AssetKind.IMAGE for ref in refs) and not (
        is_video_chunk(task, quality)
    ):
        # Pillow releases the GIL while it decodes and encodes: use every core.
        quality_value = max(task.image_quality, 1)

        def encoded(ref: FrameRef) -> bytes:
            asset = assets[ref.asset_id]
            return encode_jpeg(load_image(files.path(asset), name=asset.name), quality_value)

        with ThreadPoolExecutor(max_workers=CODEC_THREADS) as pool:
            return jpeg_zip(pool.map(encoded, refs))
    images = decode(refs, assets, files)
    video_assets = [a for a in assets.values() if a.kind == AssetKind.VIDEO]
    if is_video_chunk(task, quality):
        fps = video_assets[0].fps or 25.0
        return video_chunk(images, fps, 100 if quality == "original" else task.image_quality)
    return image_chunk(images, max(task.image_quality, 1))


def read_chunk(
    uow: UnitOfWork,
    storage: Storage,
    files: AssetFiles,
    task: Task,
    quality: Quality,
    number: int,
) -> str:
    """The storage key of chunk ``number``, built and stored first if it is not there yet
    (one builder per chunk at a time)."""
    if not task.chunk_size or task.size == 0:
        raise NotFound("The task has no data yet.")
    if not 0 <= number <= (task.size - 1) // task.chunk_size:
        raise NotFound(f"There is no chunk {number}.")
    key = chunk_key(task.id, quality, number, is_video_chunk(task, quality))
    if storage.exists(key):
        return key
    with _lock_for(key):
        if storage.exists(key):
            return key
        first = number * task.chunk_size
        refs = frame_refs(uow, task.id, first, min(first + task.chunk_size, task.size) - 1)
        storage.put_bytes(key, build_chunk(task, quality, refs, load_assets(uow, refs), files))
    return key


def read_frame(
    uow: UnitOfWork, files: AssetFiles, task: Task, quality: Quality, number: int
) -> tuple[bytes, str]:
    if not 0 <= number < task.size:
        raise NotFound(f"There is no frame {number}.")
    refs = frame_refs(uow, task.id, number, number)
    assets = load_assets(uow, refs)
    asset = assets[refs[0].asset_id]
    if quality == "original" and asset.kind == AssetKind.IMAGE:
        path = files.path(asset)
        return path.read_bytes(), Image.MIME.get(Image.open(path).format or "", "image/jpeg")
    image = next(decode(refs, assets, files))
    return encode_jpeg(image, 100 if quality == "original" else max(task.image_quality, 1)), (
        "image/jpeg"
    )


def read_preview(uow: UnitOfWork, storage: Storage, files: AssetFiles, task: Task) -> str:
    if task.size == 0:
        raise NotFound("The task has no data yet.")
    key = preview_key(task.id)
    if not storage.exists(key):
        refs = frame_refs(uow, task.id, 0, 0)
        image = next(decode(refs, load_assets(uow, refs), files))
        storage.put_bytes(key, make_preview(image))
    return key


def forget_chunk(storage: Storage, task_id: int, number: int) -> None:
    for quality in QUALITIES:
        for video in (False, True):
            storage.delete(chunk_key(task_id, quality, number, video))


def forget_media(storage: Storage, task_id: int) -> None:
    """Drop a deleted task's cached chunks and preview."""
    storage.delete_prefix(f"tasks/{task_id}/")


def _lock_for(key: str) -> threading.Lock:
    return _CHUNK_LOCKS[hash(key) % len(_CHUNK_LOCKS)]

"""Turning uploads, share paths and remote URLs into stored, probed assets of a dataset.

Runs inside operations. Files are gathered into a work directory (archives unpacked,
remote files downloaded), each is probed (so a broken image is found before anything is
kept), then stored and recorded as assets.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from sqlalchemy import insert

from labelyard.adapters import network
from labelyard.adapters.media.archives import extract_archive
from labelyard.adapters.media.errors import MediaError
from labelyard.adapters.media.images import probe_image
from labelyard.adapters.media.kinds import classify
from labelyard.adapters.media.video import probe_video
from labelyard.adapters.network import AddressRefused
from labelyard.adapters.storage import Storage
from labelyard.config import Settings
from labelyard.domain import Asset, AssetKind, Batch, Dataset
from labelyard.services.operations import UserFacingError
from labelyard.services.uow import UnitOfWork

MAX_REMOTE_BYTES = 4 * 1024**3
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class GatheredFile:
    name: str  # the path it will have in its batch
    path: Path
    source: str  # what the user named: an upload, a share path, a URL
    kind: str | None = None  # already classified: "image" or "video"


@dataclass(frozen=True)
class ProbedFile:
    file: GatheredFile
    kind: AssetKind
    width: int
    height: int
    frame_count: int
    fps: float | None
    keyframes: list[int] | None
    size_bytes: int
    extra: dict[str, Any]


@contextmanager
def work_dir(settings: Settings) -> Iterator[Path]:
    """A scratch directory under the data dir, removed afterwards."""
    root = settings.data_dir / "work"
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def gather(
    sources: list[dict[str, Any]], storage: Storage, settings: Settings, into: Path
) -> list[GatheredFile]:
    """Bring every source into ``into`` as local files; archives are unpacked in place of
    themselves. Raises UserFacingError naming the source that cannot be had."""
    files: list[GatheredFile] = []
    for index, source in enumerate(sources):
        slot = into / f"{index:06d}"
        slot.mkdir(parents=True)
        kind = source["kind"]
        if kind == "staged":
            name = source["name"]
            stored = storage.local_path(source["key"])
            local = stored or slot / PurePosixPath(name).name
            if stored is None:
                storage.download(source["key"], local)
        elif kind == "share":
            name = source["path"]
            local = share_file(settings, name)
        elif kind == "remote":
            name = remote_name(source["url"], index)
            local = slot / PurePosixPath(name).name
            download(source["url"], local, allow_private=settings.allow_private_urls)
        else:
            raise ValueError(f"unknown source kind {kind!r}")
        files.extend(_unpack(name, local, slot / "unpacked"))
    return files


def _unpack(name: str, local: Path, dest: Path) -> list[GatheredFile]:
    if local.stat().st_size == 0:
        raise UserFacingError(f"{name}: the file is empty")
    try:
        kind = classify(local)
    except MediaError as exc:
        raise UserFacingError(_named(exc, name)) from None
    if kind != "archive":
        return [GatheredFile(name, local, name, kind)]
    dest.mkdir()
    try:
        members = extract_archive(local, dest)
    except MediaError as exc:
        raise UserFacingError(_named(exc, name)) from None
    return [
        GatheredFile(member.relative_to(dest).as_posix(), member, f"{name}:{member.name}")
        for member in members
    ]


def _named(error: MediaError, name: str) -> str:
    """Media errors name the local file; the user knows it by the name they gave."""
    message = str(error)
    _, _, reason = message.partition(": ")
    return f"{name}: {reason or message}"


def probe(file: GatheredFile) -> ProbedFile:
    """What the file is and its dimensions; UserFacingError naming it when it is broken or
    not media."""
    size = file.path.stat().st_size
    try:
        kind = file.kind or classify(file.path)
        if kind == "image":
            image = probe_image(file.path, thorough=False)
            return ProbedFile(
                file, AssetKind.IMAGE, image.width, image.height, 1, None, None, size, {}
            )
        if kind == "video":
            video = probe_video(file.path)
            if video.frame_count < 1:
                raise UserFacingError(f"{file.name}: the video has no frames")
            extra = {"keyframe_pts": list(video.keyframe_pts)}
            return ProbedFile(
                file, AssetKind.VIDEO, video.width, video.height, video.frame_count,
                video.fps, video.keyframes, size, extra,
            )  # fmt: skip
    except MediaError as exc:
        raise UserFacingError(_named(exc, file.name)) from None
    raise UserFacingError(f"{file.name}: an archive inside an archive is not supported")


def put_files(storage: Storage, prefix: str, probed: list[ProbedFile]) -> list[Asset]:
    """Store the files under ``prefix`` and describe them as (unsaved) assets. Names taken
    twice get a numbered suffix."""
    taken: set[str] = set()
    assets = []
    for item in probed:
        name = _free_name(item.file.name, taken)
        key = f"{prefix}/{name}"
        storage.put_file(key, item.file.path)
        assets.append(
            Asset(
                name=name,
                kind=item.kind.value,
                storage_key=key,
                size_bytes=item.size_bytes,
                width=item.width,
                height=item.height,
                frame_count=item.frame_count,
                fps=item.fps,
                keyframes=item.keyframes,
                extra=item.extra,
            )
        )
    return assets


def insert_assets(uow: UnitOfWork, batch: Batch, assets: list[Asset]) -> None:
    """Record the assets in one insert; their ``id`` is set afterwards."""
    if not assets:
        return
    rows = [
        {column: getattr(asset, column) for column in ASSET_COLUMNS}
        | {"dataset_id": batch.dataset_id, "batch_id": batch.id}
        for asset in assets
    ]
    result = uow.session.execute(
        insert(Asset).returning(Asset.id, sort_by_parameter_order=True), rows
    )
    for asset, row in zip(assets, result, strict=True):
        asset.id, asset.dataset_id, asset.batch_id = row[0], batch.dataset_id, batch.id


ASSET_COLUMNS = ("name", "kind", "storage_key", "size_bytes", "width", "height",
                 "frame_count", "fps", "keyframes", "extra")  # fmt: skip


def _free_name(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    path = PurePosixPath(name)
    while candidate in taken:
        candidate = str(path.with_name(f"{path.stem}_{number}{path.suffix}"))
        number += 1
    taken.add(candidate)
    return candidate


def remove_dataset_media(storage: Storage, dataset: Dataset) -> None:
    storage.delete_prefix(dataset.storage_prefix + "/")


# --- sources outside the request ------------------------------------------------------


def share_file(settings: Settings, relative: str) -> Path:
    """A file under the share directory; UserFacingError for anything outside it."""
    if settings.share_dir is None:
        raise UserFacingError("server_files: this server has no share directory")
    path = _in_share(settings.share_dir, relative)
    if path is None or not path.is_file():
        raise UserFacingError(f"{relative}: no such file in the share")
    return path


def _in_share(share_dir: Path, relative: str) -> Path | None:
    """``relative`` resolved under the share, or None where it leads out of it or is no
    path the system can hold (too long, a NUL byte, a loop of links)."""
    root = share_dir.resolve()
    try:
        path = (root / relative.lstrip("/")).resolve()
        path.stat()
    except (OSError, ValueError):
        return None
    return path if path.is_relative_to(root) else None


def share_listing(settings: Settings, directory: str) -> list[dict[str, str]]:
    """CVAT's /server/share answer: the entries of one share directory."""
    if settings.share_dir is None:
        return []
    path = _in_share(settings.share_dir, directory)
    if path is None or not path.is_dir():
        raise UserFacingError(f"{directory}: no such directory in the share")
    entries = []
    for entry in sorted(path.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        kind = "DIR" if entry.is_dir() else "REG"
        entries.append({"name": entry.name, "type": kind})
    return entries


def remote_name(url: str, index: int) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return name or f"remote_{index}"


def check_public_url(url: str, *, allow_private: bool) -> None:
    """Only http(s) URLs whose host resolves to public addresses (no loopback, private,
    link-local or reserved ones: the server must not be a way into its own network).
    Where it is connected to, ``network.pinned`` checks again, and connects to the
    address it checked."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserFacingError(f"{url}: only http and https URLs can be fetched")
    if allow_private:
        return
    try:
        network.resolve(parts.hostname, parts.port or 443)
    except AddressRefused as exc:
        raise UserFacingError(f"{url}: {exc}") from None


def pinned(url: str, *, allow_private: bool) -> network.PinnedRequest:
    """``url`` to send to the public address it was checked at (UserFacingError else)."""
    try:
        return network.pinned(url, allow_private=allow_private)
    except ValueError as exc:  # AddressRefused too
        raise UserFacingError(f"{url}: {exc}") from None


def download(
    url: str,
    into: Path,
    *,
    allow_private: bool,
    max_bytes: int = MAX_REMOTE_BYTES,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Stream ``url`` to ``into``, checking every redirect's address."""
    current = url
    with httpx.Client(timeout=httpx.Timeout(30.0), follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            request = pinned(current, allow_private=allow_private)
            try:
                with client.stream(
                    "GET", request.url, headers=request.headers, extensions=request.extensions
                ) as response:
                    if response.is_redirect:
                        current = urljoin(current, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise UserFacingError(f"{url}: the server answered {response.status_code}")
                    _save(response, into, url, max_bytes, progress)
                    return
            except httpx.HTTPError as exc:
                raise UserFacingError(f"{url}: {exc or type(exc).__name__}") from None
    raise UserFacingError(f"{url}: too many redirects")


def _save(
    response: httpx.Response,
    into: Path,
    url: str,
    max_bytes: int,
    progress: Callable[[int], None] | None,
) -> None:
    written = 0
    with into.open("wb") as out:
        for chunk in response.iter_bytes(1 << 20):
            written += len(chunk)
            if written > max_bytes:
                raise UserFacingError(f"{url}: larger than {max_bytes} bytes")
            out.write(chunk)
            if progress:
                progress(len(chunk))

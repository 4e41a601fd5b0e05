"""Torrents for files the agent seeds: made by the recipe, kept in the cache, published.

    torrent = keep_recipe_torrent(cache, sha256, path, web_seeds=[url], trackers=[])
    imported = import_file(cache, Path("dist/demo-1.0-py3-none-any.whl"), trackers=[])
    publish_torrent(Path("public/torrents"), sha256, torrent.data)   # <dir>/ab/abc….torrent

The recipe makes the same info dictionary from the same bytes and name, so a torrent
made here has the infohashes any index or peer computes for the file; web seeds and
trackers, outside the info dictionary, only add sources.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torrip.cache import DistributionCache, sha256_of
from torrip.errors import TorrentError, TorripError
from torrip.fsutil import atomic_write
from torrip.index.torrents import torrent_index_url
from torrip.transport.recipe import TorrentFile, make_torrent, parse_torrent

__all__ = [
    "ImportedFile",
    "import_file",
    "keep_recipe_torrent",
    "publish_torrent",
    "published_path",
]


@dataclass(frozen=True)
class ImportedFile:
    sha256: str
    path: Path  # in the cache
    torrent: TorrentFile


def keep_recipe_torrent(
    cache: DistributionCache,
    sha256: str,
    path: Path,
    *,
    web_seeds: Sequence[str] = (),
    trackers: Sequence[str] = (),
) -> TorrentFile:
    """Recipe 1's torrent of the cached file at ``path``, kept in the cache; returns it.

    A kept torrent with the same infohash and these web seeds and trackers is reused;
    otherwise the new one (with them) replaces it.
    """
    kept = _kept(cache, sha256)
    if (
        kept is not None
        and kept.name == path.name
        and set(web_seeds) <= set(kept.web_seeds)
        and set(trackers) <= set(kept.trackers)
    ):
        return kept
    torrent = make_torrent(path, web_seeds=web_seeds, trackers=trackers)
    if kept is not None and kept.info != torrent.info:
        # The kept one was checked against the file when it was cached: it cannot differ.
        raise TorrentError(f"{path.name}: the cached torrent does not describe the cached file")
    cache.add_torrent(sha256, torrent.data)
    return torrent


def import_file(
    cache: DistributionCache, source: Path, *, trackers: Sequence[str] = ()
) -> ImportedFile:
    """Copy a distribution file the user vouches for into the cache, with its torrent."""
    if not source.is_file():
        raise TorripError(f"{source} is not a file", hint="Give paths of wheels or sdists.")
    # Hash the copy, not the source: the bytes that enter the cache are the ones hashed.
    handle, name = tempfile.mkstemp(dir=cache.temp_dir(), prefix=".import-")
    os.close(handle)
    temp = Path(name)
    try:
        try:
            shutil.copyfile(source, temp)
            sha256 = sha256_of(temp)
        except OSError as error:
            raise TorripError(f"cannot copy {source}: {error.strerror or error}") from None
        with cache.lock(sha256):
            cached = cache.get(sha256, source.name)
            if cached is None:
                cached = cache.add_file(temp, sha256, source.name)
    finally:
        temp.unlink(missing_ok=True)
    torrent = keep_recipe_torrent(cache, sha256, cached, trackers=trackers)
    return ImportedFile(sha256, cached, torrent)


def published_path(directory: Path, sha256: str) -> Path:
    """Where a torrent index keeps the torrent of the file with this sha256."""
    return Path(torrent_index_url(str(directory), sha256))


def publish_torrent(directory: Path, sha256: str, data: bytes) -> Path:
    """Write ``<directory>/<sha256[:2]>/<sha256>.torrent`` atomically; returns its path."""
    path = published_path(directory, sha256)
    try:
        atomic_write(path, data)
    except OSError as error:
        raise TorripError(
            f"cannot write {path}: {error.strerror or error}",
            hint="Check that the --publish folder is writable.",
        ) from None
    return path


def _kept(cache: DistributionCache, sha256: str) -> TorrentFile | None:
    data = cache.torrent(sha256)
    if data is None:
        return None
    try:
        return parse_torrent(data)
    except TorripError:
        return None

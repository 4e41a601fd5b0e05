"""The cache folder as a whole: files and bytes per area, and cleaning all of them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from torrip.cache import DistributionCache, UnpackedCache
from torrip.cachedir import clean_cache, measure_cache

WHEEL = b"wheel bytes " * 100
OTHER = b"other wheel " * 50


def fill(root: Path) -> DistributionCache:
    """Two contents (one under two names), a partial download, an unpacked wheel (two files),
    metadata and two pages."""
    cache = DistributionCache(root)
    for data, name in ((WHEEL, "a-1.0-py3-none-any.whl"), (OTHER, "b-1.0.tar.gz")):
        partial = cache.temp_dir() / "x.part"
        partial.write_bytes(data)
        cache.add_file(partial, hashlib.sha256(data).hexdigest(), name)
    # The same bytes asked for under a second name become a hard link.
    assert cache.get(hashlib.sha256(WHEEL).hexdigest(), "A-1.0-py3-none-any.whl") is not None
    (cache.temp_dir() / f"{'c' * 64}.part").write_bytes(b"half")
    unpacked = UnpackedCache(root)
    with unpacked.staging("f" * 64) as staging:
        (staging / "tree" / "a").mkdir(parents=True)
        (staging / "tree" / "a" / "__init__.py").write_bytes(b"x = 1\n")
        (staging / "tree" / "a" / "core.py").write_bytes(b"y = 2\n")
        (staging / ".manifest.json").write_bytes(b"{}")
        unpacked.publish(staging, "f" * 64)
    metadata = root / "metadata-v1" / "ab"
    metadata.mkdir(parents=True)
    (metadata / f"{'ab' * 32}.metadata").write_bytes(b"Name: a\n")
    pages = root / "http-v1" / "cd"
    pages.mkdir(parents=True)
    (pages / "page.json").write_bytes(b"{}")
    (pages / "page.body").write_bytes(b"<html></html>")
    interpreters = root / "interpreters-v1"
    interpreters.mkdir()
    (interpreters / "a.json").write_bytes(b"{}")
    lockfiles = root / "lockfiles-v1"
    lockfiles.mkdir()
    (lockfiles / f"{'e' * 64}.json").write_bytes(b"{}")
    resolutions = root / "resolutions-v1" / "ab"
    resolutions.mkdir(parents=True)
    (resolutions / f"{'ab' * 32}.pickle").write_bytes(b"pkl")
    return cache


def test_measure_counts_files_and_bytes_per_area(tmp_path: Path) -> None:
    fill(tmp_path)
    usage = measure_cache(tmp_path)
    areas = {area.name: (area.files, area.size) for area in usage.areas}
    # Hard-linked names count as files, their bytes once; .entry.json, .manifest.json and
    # locks not at all.
    assert areas == {
        "dists-v1": (4, len(WHEEL) + len(OTHER) + 4),
        "unpacked-v1": (2, 12),
        "metadata-v1": (1, 8),
        "http-v1": (2, 2 + 13),
        "interpreters-v1": (1, 2),
        "lockfiles-v1": (1, 2),
        "resolutions-v1": (1, 3),
    }
    total = len(WHEEL) + len(OTHER) + 4 + 12 + 8 + 15 + 2 + 2 + 3
    assert (usage.files, usage.size) == (12, total)


def test_measure_of_a_missing_cache_is_zero(tmp_path: Path) -> None:
    usage = measure_cache(tmp_path / "nothing")
    assert [area.name for area in usage.areas] == [
        "dists-v1",
        "unpacked-v1",
        "metadata-v1",
        "http-v1",
        "interpreters-v1",
        "lockfiles-v1",
        "resolutions-v1",
    ]
    assert (usage.files, usage.size) == (0, 0)


def test_clean_frees_everything_but_a_download_in_progress(tmp_path: Path) -> None:
    cache = fill(tmp_path)
    busy = "d" * 64
    with cache.lock(busy):
        cache.partial_path(busy).write_bytes(b"being written")
        result = clean_cache(tmp_path)
    assert result.after.files == 1 and result.after.size == len(b"being written")
    assert result.files_removed == 12
    assert result.bytes_freed == len(WHEEL) + len(OTHER) + 4 + 12 + 8 + 15 + 2 + 2 + 3
    assert cache.partial_path(busy).read_bytes() == b"being written"
    assert list(cache.entries()) == []
    assert UnpackedCache(tmp_path).info().wheels == 0
    assert list((tmp_path / "http-v1").iterdir()) == []
    assert clean_cache(tmp_path).files_removed == 1  # the download, now idle
    assert clean_cache(tmp_path).files_removed == 0

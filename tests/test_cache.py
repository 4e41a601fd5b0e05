"""The content-addressed distribution cache: layout, verification shortcuts, races, cleaning."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from torrip.cache import DistributionCache, UnpackedCache, sha256_of
from torrip.config import load_settings
from torrip.errors import CacheError

DATA = b"wheel bytes " * 1000
SHA = hashlib.sha256(DATA).hexdigest()
NAME = "demo-1.0-py3-none-any.whl"


def _temp(cache: DistributionCache, data: bytes = DATA, name: str = "x.part") -> Path:
    path = cache.temp_dir() / name
    path.write_bytes(data)
    return path


def test_layout_keeps_the_original_filename(tmp_path: Path) -> None:
    cache = DistributionCache(tmp_path)
    path = cache.add_file(_temp(cache), SHA, NAME)
    assert path == tmp_path / "dists-v1" / SHA[:2] / SHA / NAME
    assert path.read_bytes() == DATA
    assert not (cache.temp_dir() / "x.part").exists()
    assert cache.get(SHA, NAME) == path
    assert sha256_of(path) == SHA


def test_miss(tmp_path: Path) -> None:
    assert DistributionCache(tmp_path).get(SHA, NAME) is None


def test_size_is_rechecked(tmp_path: Path) -> None:
    cache = DistributionCache(tmp_path)
    path = cache.add_file(_temp(cache), SHA, NAME)
    path.chmod(0o644)
    path.write_bytes(DATA[:-1])  # damaged behind torrip's back
    assert cache.get(SHA, NAME) is None
    # A fresh verified copy replaces the damaged one.
    assert cache.add_file(_temp(cache), SHA, NAME).read_bytes() == DATA
    assert cache.get(SHA, NAME) == path


def test_second_name_is_linked(tmp_path: Path) -> None:
    cache = DistributionCache(tmp_path)
    first = cache.add_file(_temp(cache), SHA, NAME)
    other = cache.get(SHA, "Demo-1.0-py3-none-any.whl")
    assert other is not None and other.parent == first.parent
    assert other.stat().st_ino == first.stat().st_ino
    assert sorted(entry.filename for entry in cache.entries()) == sorted([NAME, other.name])
    info = cache.info()
    assert (info.files, info.names, info.size) == (1, 2, len(DATA))
    assert cache.clean() == len(DATA)  # linked names are counted once


def test_first_writer_wins(tmp_path: Path) -> None:
    cache = DistributionCache(tmp_path)
    first = cache.add_file(_temp(cache, name="a.part"), SHA, NAME)
    inode = first.stat().st_ino
    again = cache.add_file(_temp(cache, name="b.part"), SHA, NAME)
    assert again == first and first.stat().st_ino == inode
    assert list(cache.temp_dir().iterdir()) == []


def test_concurrent_adds(tmp_path: Path) -> None:
    cache = DistributionCache(tmp_path)
    temps = [_temp(cache, name=f"{n}.part") for n in range(8)]
    barrier = threading.Barrier(len(temps))
    paths: list[Path] = []

    def add(temp: Path) -> None:
        barrier.wait()
        paths.append(cache.add_file(temp, SHA, NAME))

    threads = [threading.Thread(target=add, args=(temp,)) for temp in temps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 1 and paths[0].read_bytes() == DATA
    assert [entry.sha256 for entry in cache.entries()] == [SHA]


def test_lock_excludes_threads(tmp_path: Path) -> None:
    cache = DistributionCache(tmp_path)
    inside = 0
    most = 0
    guard = threading.Lock()

    def hold() -> None:
        nonlocal inside, most
        with cache.lock(SHA):
            with guard:
                inside += 1
                most = max(most, inside)
            threading.Event().wait(0.02)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_entries_info_and_clean(tmp_path: Path) -> None:
    cache = DistributionCache(tmp_path)
    other = b"other" * 100
    other_sha = hashlib.sha256(other).hexdigest()
    cache.add_file(_temp(cache), SHA, NAME)
    cache.add_file(_temp(cache, other), other_sha, "other-1.0.tar.gz")
    cache.partial_path(SHA).write_bytes(b"12345")
    entries = {entry.filename: entry for entry in cache.entries()}
    assert entries[NAME].size == len(DATA) and entries[NAME].sha256 == SHA
    assert entries["other-1.0.tar.gz"].path.read_bytes() == other
    assert entries[NAME].atime > 0
    info = cache.info()
    assert (info.files, info.size, info.partial_size) == (2, len(DATA) + len(other), 5)
    assert cache.clean() == len(DATA) + len(other) + 5
    assert list(cache.entries()) == []
    assert cache.get(SHA, NAME) is None


def test_clean_keeps_partials_being_written(tmp_path: Path) -> None:
    cache = DistributionCache(tmp_path)
    cache.partial_path(SHA).write_bytes(b"123")
    with cache.lock(SHA):
        assert cache.clean() == 0
        assert cache.partial_path(SHA).exists()
    assert cache.clean() == 3


@pytest.mark.parametrize("name", ["", ".entry.json", "../evil.whl", "a/b.whl"])
def test_unsafe_names_refused(tmp_path: Path, name: str) -> None:
    cache = DistributionCache(tmp_path)
    with pytest.raises(CacheError):
        cache.add_file(_temp(cache), SHA, name)


def test_bad_digest_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        DistributionCache(tmp_path).get("../" + SHA[3:], NAME)


def test_location_follows_settings(tmp_path: Path) -> None:
    environ = {"TORRIP_CONFIG_FILE": str(tmp_path / "none.toml")}
    moved = load_settings(environ={**environ, "TORRIP_CACHE_DIR": str(tmp_path / "c")})
    assert DistributionCache(moved.cache_dir).store == tmp_path / "c" / "dists-v1"
    xdg = load_settings(environ={**environ, "XDG_CACHE_HOME": str(tmp_path / "x")})
    assert DistributionCache(xdg.cache_dir).store == tmp_path / "x" / "torrip" / "dists-v1"


# -- the unpacked wheels ---------------------------------------------------------------------


def _fill(store: UnpackedCache, sha256: str, files: dict[str, bytes]) -> Path:
    with store.lock(sha256), store.staging(sha256) as staging:
        for name, data in files.items():
            path = staging / "tree" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (staging / ".manifest.json").write_text("{}")
        return store.publish(staging, sha256)


def test_unpacked_entries_live_next_to_the_distributions(tmp_path: Path) -> None:
    store = UnpackedCache(tmp_path)
    entry = _fill(store, SHA, {"pkg/__init__.py": b"x = 1\n", "pkg/data.bin": DATA})
    assert entry == tmp_path / "unpacked-v1" / SHA[:2] / SHA == store.entry_dir(SHA)
    assert (entry / "tree" / "pkg" / "data.bin").read_bytes() == DATA
    assert list((store.store / "tmp").iterdir()) == []
    info = store.info()
    assert (info.wheels, info.files, info.size) == (1, 2, len(DATA) + 6)


def test_unpacked_staging_is_removed_on_failure(tmp_path: Path) -> None:
    store = UnpackedCache(tmp_path)
    with pytest.raises(RuntimeError), store.staging(SHA) as staging:
        (staging / "half").write_bytes(b"half")
        raise RuntimeError("unpacking failed")
    assert list((store.store / "tmp").iterdir()) == []
    assert not store.entry_dir(SHA).exists()


def test_unpacked_first_publisher_wins(tmp_path: Path) -> None:
    store = UnpackedCache(tmp_path)
    first = _fill(store, SHA, {"a": b"first"})
    second = _fill(store, SHA, {"a": b"second"})
    assert first == second and (first / "tree" / "a").read_bytes() == b"first"
    assert list((store.store / "tmp").iterdir()) == []


def test_unpacked_discard_then_clean(tmp_path: Path) -> None:
    store = UnpackedCache(tmp_path)
    _fill(store, SHA, {"a": DATA})
    store.discard(SHA)
    assert not store.entry_dir(SHA).exists()
    assert list((store.store / "tmp").iterdir()) == []
    _fill(store, SHA, {"a": DATA})
    other = "e" * 64
    with store.lock(other), store.staging(other) as busy:  # another process, unpacking
        (busy / "partial").write_bytes(b"12345")
        assert store.clean() == len(DATA) + len(b"{}")
        assert (busy / "partial").exists()
    assert store.info().wheels == 0
    assert store.clean() == 0


def test_unpacked_clean_keeps_files_environments_link(tmp_path: Path) -> None:
    store = UnpackedCache(tmp_path)
    entry = _fill(store, SHA, {"a": DATA})
    installed = tmp_path / "site-packages-a"
    installed.hardlink_to(entry / "tree" / "a")
    store.clean()
    assert installed.read_bytes() == DATA  # the environment keeps working


def test_a_known_size_spares_the_entry_record(tmp_path: Path) -> None:
    """With the size the index gave, a cached file is found by one stat; a size it does not
    have falls back to the record, so a damaged file is still no hit."""
    cache = DistributionCache(tmp_path)
    data = b"wheel bytes"
    sha256 = hashlib.sha256(data).hexdigest()
    temp = cache.temp_dir() / "download"
    temp.write_bytes(data)
    path = cache.add_file(temp, sha256, "demo-1.0-py3-none-any.whl")
    record = cache.entry_dir(sha256) / ".entry.json"
    record.rename(record.with_name("moved"))  # the record cannot be read now
    assert cache.get(sha256, "demo-1.0-py3-none-any.whl", size=len(data)) == path
    assert cache.get(sha256, "demo-1.0-py3-none-any.whl", size=len(data) + 1) is None
    assert cache.get(sha256, "demo-1.0-py3-none-any.whl") is None

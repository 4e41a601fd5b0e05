"""The agent serves cached files to peers: exactly, after kills, and never corrupt bytes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from fixtures.agent import AgentHome, CachedFile, Leecher, wait_for
from torrip.cache import UnpackedCache

Home = Callable[..., AgentHome]
NAME = "demo-1.0-py3-none-any.whl"


def _complete(leecher: Leecher, handle: object, timeout: float = 30) -> None:
    def done() -> bool:
        leecher.poll()
        return bool(handle.status().is_seeding)  # type: ignore[attr-defined]

    wait_for(done, timeout, lambda: f"download stuck at {handle.status().progress:.0%}")  # type: ignore[attr-defined]


def test_a_peer_downloads_a_cached_file_from_the_agent(agent_home: Home, tmp_path: Path) -> None:
    home = agent_home()
    cached = home.cache_file(NAME, 600_000)
    home.start()
    home.wait_seeding(1)
    leecher = Leecher(tmp_path / "leech")
    try:
        handle = leecher.download(cached.torrent, home.port())
        _complete(leecher, handle)
    finally:
        leecher.close()
    assert (tmp_path / "leech" / NAME).read_bytes() == cached.path.read_bytes()
    wait_for(lambda: home.status()["uploaded_run"] >= 600_000, 10, lambda: str(home.status()))
    status = home.status()
    assert status["uploaded_total"] == status["uploaded_run"]
    # Read-only: the agent never wrote to the cache.
    assert oct(cached.path.stat().st_mode & 0o777) == "0o444"


def test_kill_9_mid_seed_then_restart_resumes(agent_home: Home, tmp_path: Path) -> None:
    home = agent_home()
    cached = home.cache_file(NAME, 1_000_000)
    home.cache_file("other-1.0-py3-none-any.whl", 40_000, seed=2)
    home.start()
    home.wait_seeding(2)
    home.torrip("agent", "stop")  # a clean stop writes the state ...
    saved = json.loads(home.paths.state_file.read_text())
    assert len(saved["files"]) == 2
    home.start()
    home.wait_seeding(2)
    leecher = Leecher(tmp_path / "leech", rate=300_000)
    try:
        handle = leecher.download(cached.torrent, home.port())
        wait_for(lambda: handle.status().progress > 0.1, 20, lambda: "no progress")
        wait_for(lambda: home.status()["peers"] == 1, 10, lambda: str(home.status()))
        home.kill()  # ... a kill -9 writes nothing more
        assert handle.status().progress < 1.0
        survived = json.loads(home.paths.state_file.read_text())  # whole: atomic writes
        assert survived["files"].keys() == saved["files"].keys()
        home.start()
        status = home.wait_seeding(2)
        assert status["state_rebuilt"] is None
        assert status["uploaded_total"] == survived["uploaded"]  # totals carried over
        leecher.session.apply_settings({"download_rate_limit": 0})  # the rest at full speed
        handle.connect_peer(("127.0.0.1", home.port()))
        _complete(leecher, handle, timeout=60)
        assert leecher.hash_failures == 0
    finally:
        leecher.close()
    assert (tmp_path / "leech" / NAME).read_bytes() == cached.path.read_bytes()


def test_a_damaged_state_is_rebuilt_from_the_cache(agent_home: Home) -> None:
    home = agent_home()
    for number in range(3):
        home.cache_file(f"pkg{number}-1.0-py3-none-any.whl", 30_000, seed=number)
    home.start()
    home.wait_seeding(3)
    home.torrip("agent", "remove", "pkg0-1.0-py3-none-any.whl")
    home.torrip("agent", "stop")
    state = home.paths.state_file
    state.write_bytes(state.read_bytes()[:100])  # truncated
    home.start()
    status = home.wait_seeding(3)  # the removal was in the lost state: all three again
    assert "damaged" in status["state_rebuilt"]
    home.torrip("agent", "stop")
    rebuilt = json.loads(state.read_text())
    assert len(rebuilt["files"]) == 3
    state.write_bytes(os.urandom(512))  # garbage
    home.start()
    assert "damaged" in home.wait_seeding(3)["state_rebuilt"]


def _corrupt_in_place(cached: CachedFile, offset: int) -> None:
    """Flip bytes of a cached file, keeping its size and modification time."""
    info = cached.path.stat()
    cached.path.chmod(0o644)
    with cached.path.open("r+b") as file:
        file.seek(offset)
        original = file.read(16)
        file.seek(offset)
        file.write(bytes(b ^ 0xFF for b in original))
    cached.path.chmod(0o444)
    os.utime(cached.path, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_a_file_corrupted_on_disk_is_never_served(agent_home: Home, tmp_path: Path) -> None:
    home = agent_home()
    cached = home.cache_file(NAME, 400_000)
    home.start()
    home.wait_seeding(1)
    _corrupt_in_place(cached, 5 * 16384 + 100)  # piece 5; size and mtime unchanged
    leecher = Leecher(tmp_path / "leech")
    try:
        handle = leecher.download(cached.torrent, home.port())
        wait_for(lambda: home.status()["discarded_corrupt"] == 1, 20, lambda: str(home.status()))
        leecher.poll()
        assert leecher.hash_failures == 0  # the bad piece never left the agent
        assert handle.status().total_failed_bytes == 0
        assert not handle.status().is_seeding
    finally:
        leecher.close()
    status = home.status()
    assert status["files_seeding"] == 0 and status["files_known"] == 0
    # Deleted from the cache, so the next install fetches (and verifies) it again.
    wait_for(lambda: not cached.path.exists(), 10, lambda: "still cached")
    listed = home.torrip("agent", "list").stdout
    assert NAME not in listed


def test_a_file_changed_on_disk_is_checked_before_it_is_served(agent_home: Home) -> None:
    home = agent_home()
    good = home.cache_file(NAME, 200_000)
    bad = home.cache_file("bad-1.0-py3-none-any.whl", 200_000, seed=3)
    home.start()
    home.wait_seeding(2)
    home.torrip("agent", "stop")
    os.utime(good.path)  # touched, bytes intact: checked, then seeded
    bad.path.chmod(0o644)
    with bad.path.open("r+b") as file:
        file.seek(1000)
        file.write(b"\x00" * 8)  # changed: found before anyone asks for it
    home.start()
    status = home.wait_seeding(1)
    assert status["discarded_corrupt"] == 1
    listed = json.loads(home.torrip("agent", "list", "--json").stdout)
    assert [(row["filename"], row["state"]) for row in listed] == [(NAME, "seeding")]
    assert not bad.path.exists()


def test_limits_on_files_and_the_disk_quota(agent_home: Home, tmp_path: Path) -> None:
    home = agent_home()
    site = tmp_path / "site-packages"
    (site / "needed-1.0.dist-info").mkdir(parents=True)
    needed = home.cache_file("needed-1.0-py3-none-any.whl", 300_000, seed=1)
    old = home.cache_file("old-1.0-py3-none-any.whl", 300_000, seed=2)
    new = home.cache_file("new-1.0-py3-none-any.whl", 300_000, seed=3)
    for age, cached in ((300, needed), (200, old), (100, new)):  # seconds since last use
        entry = cached.path.parent / ".entry.json"
        os.utime(entry, (entry.stat().st_atime - age, entry.stat().st_mtime - age))
    home.start("--seed-torrents", "2")
    home.wait_seeding(2)
    states = {row["filename"]: row["state"] for row in home.call("list")["files"]}
    assert states["needed-1.0-py3-none-any.whl"] == "stopped: limit"  # least recently used
    home.call("add", files=[needed.sha256], environments=[str(site)])
    home.torrip("agent", "stop")

    # 900 kB cached, 700 kB allowed: the least recently used file no environment needs goes.
    home.start("--seed-quota", "700k", "--seed-torrents", "0")
    status = home.wait_seeding(2)
    assert status["evicted"] == 1
    wait_for(lambda: not old.path.exists(), 10, lambda: "not evicted")
    assert needed.path.exists() and new.path.exists()


def test_the_quota_counts_and_removes_a_wheels_unpacked_tree(agent_home: Home) -> None:
    home = agent_home()
    old = home.cache_file("old-1.0-py3-none-any.whl", 300_000, seed=4)
    new = home.cache_file("new-1.0-py3-none-any.whl", 300_000, seed=5)
    for age, cached in ((200, old), (100, new)):  # seconds since last use
        entry = cached.path.parent / ".entry.json"
        os.utime(entry, (entry.stat().st_atime - age, entry.stat().st_mtime - age))
    # The old wheel was installed once: its unpacked tree (500 kB) is in the cache too.
    unpacked = UnpackedCache(home.cache_dir).entry_dir(old.sha256)
    (unpacked / "tree").mkdir(parents=True)
    (unpacked / "tree" / "blob.bin").write_bytes(b"x" * 500_000)
    manifest = {"files": [["old/blob.bin", "0" * 64, 500_000, False, 0]]}
    (unpacked / ".manifest.json").write_text(json.dumps(manifest))
    # 600 kB of wheels fit in 700 kB; with the 500 kB tree they do not: the old one goes.
    home.start("--seed-quota", "700k")
    status = home.wait_seeding(1)
    assert status["evicted"] == 1
    wait_for(lambda: not old.path.exists() and not unpacked.exists(), 10, lambda: "not evicted")
    assert new.path.exists()

"""The agent's libtorrent session: every eligible cached file with a torrent, seeded in place.

    seeder = Seeder(settings, state, log=print)
    seeder.open()                      # the session (network manners: torrip.transport.session)
    seeder.refresh()                   # scan the cache, apply the limits, queue what to seed
    while running:
        seeder.poll()                  # alerts, queued additions, periodic work; never blocks long
    seeder.close()

Files are seeded straight from the cache: ``save_path`` is the file's cache entry
folder and the torrent's name is the file's name there. A torrent is added in seed
mode (no hashing: torrip verified the sha256 before the file entered the cache),
in upload mode (it never requests a piece, so it never writes to the cache), not
auto-managed (libtorrent's queue never parks it).

A cache file corrupted on disk is never served as good data:

- before a file is seeded, its size and modification time are compared with those
  recorded when it was last known good; if they differ, the whole file is checked
  against its torrent first (in a worker thread);
- in seed mode libtorrent checks each piece against its hash the first time a peer
  asks for it, and does not send a piece that fails; the agent then drops the
  torrent and deletes the file from the cache, so the next install fetches it again.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torrip.agent.limits import (
    AgentLimits,
    CacheUse,
    Candidate,
    choose_evictions,
    choose_seeded,
    installed_in,
)
from torrip.agent.state import AgentState, FileRecord
from torrip.cache import DistributionCache, UnpackedCache
from torrip.config import Settings
from torrip.errors import TorripError
from torrip.transport.recipe import TorrentFile, make_torrent, parse_torrent, verify_file
from torrip.transport.session import close_session, load_libtorrent, open_session

__all__ = ["FileToSeed", "Seeder"]

Log = Callable[[str], None]

# Torrents added per poll: a large cache is announced within a few polls while the
# control socket keeps answering.
ADD_BATCH = 250
UPDATE_INTERVAL = 1.0  # torrent status updates (uploads, peers)
STATS_INTERVAL = 5.0  # session counters (DHT nodes)
SAVE_INTERVAL = 30.0  # state written when it changed
REFRESH_INTERVAL = 600.0  # rescan the cache, apply seeding limits and the quota


@dataclass(frozen=True)
class FileToSeed:
    """A cached file to seed; an install also says which torrent its index announced."""

    sha256: str
    filename: str | None = None
    btih: str | None = None
    btmh: str | None = None
    url: str | None = None  # where the origin serves it: the torrent's web seed


@dataclass
class _Seeding:
    """A file in the session."""

    sha256: str
    btih: str
    handle: Any = None  # None until libtorrent confirms the addition
    last_upload: int = 0  # the torrent's payload upload counter when last read
    peers: int = 0
    upload_rate: int = 0


class Seeder:
    def __init__(self, settings: Settings, state: AgentState, *, log: Log) -> None:
        self.settings = settings
        self.limits = AgentLimits.from_settings(settings)
        self.cache = DistributionCache(settings.cache_dir)
        self.unpacked = UnpackedCache(settings.cache_dir)
        self.state = state
        self.log = log
        self.session: Any = None
        self.seeding: dict[str, _Seeding] = {}
        self._by_btih: dict[str, str] = {}
        self.pending: deque[str] = deque()
        self.verifying: dict[str, Future[str | None]] = {}
        self.making: dict[str, tuple[Future[TorrentFile | str], list[str]]] = {}
        self.stopped: dict[str, str] = {}  # sha256 -> why it is not seeded
        self.uploaded_run = 0
        self.discarded = 0  # files found corrupt and deleted from the cache
        self.evicted = 0  # files deleted for the disk quota
        self.listen: list[str] = []
        self.dht_nodes = 0
        self.dirty = False
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="torrip-agent-io")
        self._next: dict[str, float] = {}

    # -- lifetime ---------------------------------------------------------------------

    def open(self) -> None:
        self.session = open_session(self.settings, role="agent")
        deadline = time.monotonic() + 2.0
        while not self.listen and time.monotonic() < deadline:
            self._read_alerts()
            time.sleep(0.02)
        if not self.listen:
            self.log(f"warning: not listening for peers ({','.join(self.settings.listen)})")

    def close(self) -> None:
        self._read_updates_now()
        self._worker.shutdown(wait=True, cancel_futures=True)
        if self.session is not None:
            close_session(self.session)
            self.session = None

    # -- the cache and the limits -----------------------------------------------------

    def refresh(self) -> None:
        """Scan the cache: learn new files, forget vanished ones, apply limits and quota."""
        last_used = self._scan_cache()
        now = time.time()
        self._enforce_quota(last_used)
        candidates = [
            Candidate(
                record.sha256,
                record.size,
                last_used.get(record.sha256, record.added),
                record.uploaded,
                record.removed,
            )
            for record in self.state.files.values()
        ]
        plan = choose_seeded(candidates, self.limits, now=now)
        wanted = set(plan.seed)
        for sha256 in list(self.seeding):
            if sha256 not in wanted:
                self._unseed(sha256)
        for sha256, reason in plan.stopped.items():
            if not self.stopped.get(sha256, "").startswith("error"):
                self.stopped[sha256] = reason
        queued = set(self.pending) | set(self.verifying)
        for sha256 in plan.seed:
            if sha256 in self.seeding or sha256 in queued:
                continue
            if self.stopped.get(sha256, "").startswith("error"):
                continue
            self.stopped.pop(sha256, None)
            self.pending.append(sha256)
        self._next["refresh"] = time.monotonic() + REFRESH_INTERVAL

    def _scan_cache(self) -> dict[str, float]:
        """Records for every cached file with a torrent; returns sha256 -> last use, of all."""
        last_used: dict[str, float] = {}
        names: dict[str, set[str]] = {}
        for entry in self.cache.entries():
            last_used[entry.sha256] = max(entry.atime, last_used.get(entry.sha256, 0.0))
            names.setdefault(entry.sha256, set()).add(entry.filename)
        for sha256 in list(self.state.files):
            if sha256 not in names:
                self._forget(sha256, "it left the cache")
        for sha256, present in names.items():
            record = self.state.files.get(sha256)
            if record is not None and record.filename in present:
                continue
            torrent = self._torrent(sha256)
            if torrent is None or torrent.name not in present:
                continue
            path = self.cache.entry_dir(sha256) / torrent.name
            try:
                info = path.stat()
            except OSError:
                continue
            # New to the agent: the cache holds only verified bytes, so what is there now
            # is the known-good state.
            self.state.files[sha256] = FileRecord(
                sha256, torrent.name, info.st_size, info.st_mtime_ns, added=time.time()
            )
            self.dirty = True
        return last_used

    def _enforce_quota(self, last_used: dict[str, float]) -> None:
        if self.limits.quota <= 0:
            return
        sizes: dict[str, int] = {}
        for entry in self.cache.entries():  # one per name; a content counts once
            # A wheel's unpacked tree (for hard-linked installs) counts with it and goes with it.
            sizes[entry.sha256] = entry.size + self.unpacked.entry_size(entry.sha256)
        if sum(sizes.values()) <= self.limits.quota:
            return
        uses = [
            CacheUse(sha256, size, last_used.get(sha256, 0.0), needed=self._needed(sha256))
            for sha256, size in sizes.items()
        ]
        for sha256 in choose_evictions(uses, self.limits.quota):
            self.log(f"quota: removing {sha256[:12]} from the cache (least recently used)")
            self._forget(sha256, "evicted for the disk quota")
            last_used.pop(sha256, None)
            self.evicted += 1
            self._worker.submit(self._remove_from_cache, sha256)

    def _needed(self, sha256: str) -> bool:
        record = self.state.files.get(sha256)
        return record is not None and installed_in(record.filename, record.environments)

    # -- requests ---------------------------------------------------------------------

    def add(self, files: Sequence[FileToSeed], environments: Sequence[str] = ()) -> dict[str, Any]:
        """Seed these cached files (the user's or an install's request); see ``refresh``.

        A file without a torrent in the cache, but whose infohash an index announced, gets
        recipe 1's torrent made here (in the worker thread); it is kept only if its
        infohashes are the announced ones.
        """
        added: list[str] = []
        unknown: list[str] = []
        for item in files:
            sha256 = item.sha256
            record = self.state.files.get(sha256)
            if record is None:
                torrent = self._torrent(sha256)
                path = self.cache.entry_dir(sha256) / torrent.name if torrent else None
                if torrent is None or path is None or not path.is_file():
                    if self._make_torrent(item, environments):
                        added.append(sha256)
                    else:
                        unknown.append(sha256)
                    continue
                info = path.stat()
                record = FileRecord(
                    sha256, torrent.name, info.st_size, info.st_mtime_ns, added=time.time()
                )
                self.state.files[sha256] = record
            record.removed = False
            for folder in environments:
                if folder not in record.environments:
                    record.environments.append(folder)
            if self.stopped.get(sha256) == "removed":
                del self.stopped[sha256]
            added.append(sha256)
            self.dirty = True
        if any(sha256 in self.state.files for sha256 in added):
            self.refresh()
        return {"added": added, "unknown": unknown}

    def _make_torrent(self, item: FileToSeed, environments: Sequence[str]) -> bool:
        if item.sha256 in self.making:
            return True
        if not (item.btih or item.btmh) or not item.filename:
            return False
        path = self.cache.entry_dir(item.sha256) / item.filename
        if not path.is_file():
            return False
        self.making[item.sha256] = (
            self._worker.submit(_announced_torrent, path, item),
            list(environments),
        )
        return True

    def _collect_made(self) -> None:
        ready: list[tuple[FileToSeed, list[str]]] = []
        for sha256, (future, environments) in list(self.making.items()):
            if not future.done():
                continue
            del self.making[sha256]
            torrent = future.result()
            if isinstance(torrent, str):
                self.log(f"{sha256[:12]}: not seeded: {torrent}")
                continue
            try:
                self.cache.add_torrent(sha256, torrent.data)
            except TorripError as error:
                self.log(f"{torrent.name}: cannot keep its torrent: {error}")
                continue
            ready.append((FileToSeed(sha256), environments))
        for item, environments in ready:
            self.add([item], environments)

    def remove(self, keys: Sequence[str]) -> dict[str, Any]:
        """Stop seeding files named by sha256 (or a prefix of 8+ digits) or file name."""
        removed: list[str] = []
        unknown: list[str] = []
        for key in keys:
            matches = [r for r in self.state.files.values() if _matches(r, key)]
            if not matches:
                unknown.append(key)
            for record in matches:
                record.removed = True
                self._unseed(record.sha256)
                self.stopped[record.sha256] = "removed"
                removed.append(record.filename)
                self.dirty = True
        return {"removed": removed, "unknown": unknown}

    # -- the loop ---------------------------------------------------------------------

    def poll(self) -> None:
        """One round of work: add queued torrents, read alerts, periodic updates."""
        now = time.monotonic()
        self._add_pending()
        self._collect_verified()
        self._collect_made()
        self._read_alerts()
        if now >= self._next.get("updates", 0.0):
            self.session.post_torrent_updates()
            self._next["updates"] = now + UPDATE_INTERVAL
        if now >= self._next.get("stats", 0.0):
            self.session.post_session_stats()
            self._next["stats"] = now + STATS_INTERVAL
        if now >= self._next.get("refresh", now + REFRESH_INTERVAL):
            self.refresh()

    def due_save(self) -> bool:
        """Whether the state changed and was not written for a while."""
        now = time.monotonic()
        if self.dirty and now >= self._next.get("save", 0.0):
            self._next["save"] = now + SAVE_INTERVAL
            return True
        return False

    # -- adding and removing torrents ---------------------------------------------------

    def _add_pending(self) -> None:
        for _ in range(min(ADD_BATCH, len(self.pending))):
            sha256 = self.pending.popleft()
            record = self.state.files.get(sha256)
            if record is None or record.removed or sha256 in self.seeding:
                continue
            self._prepare(record)

    def _prepare(self, record: FileRecord) -> None:
        """Seed a file at once if it is as last known good, else check it first."""
        torrent = self._torrent(record.sha256)
        path = self.cache.entry_dir(record.sha256) / record.filename
        if torrent is None or torrent.name != record.filename:
            self._forget(record.sha256, "its torrent is missing or names another file")
            return
        try:
            info = path.stat()
        except OSError:
            self._forget(record.sha256, "its file is missing")
            return
        if info.st_size != record.size or info.st_size != torrent.length:
            self._discard(record.sha256, f"its size changed ({record.size} -> {info.st_size})")
            return
        if info.st_mtime_ns != record.mtime_ns:
            self.log(f"{record.filename}: changed on disk since it was verified; checking it")
            self.verifying[record.sha256] = self._worker.submit(_check_file, torrent, path)
            return
        self._seed(record.sha256, torrent)

    def _collect_verified(self) -> None:
        for sha256, future in list(self.verifying.items()):
            if not future.done():
                continue
            del self.verifying[sha256]
            problem = future.result()
            record = self.state.files.get(sha256)
            if record is None:
                continue
            if problem is not None:
                self._discard(sha256, problem)
                continue
            path = self.cache.entry_dir(sha256) / record.filename
            with contextlib.suppress(OSError):
                record.mtime_ns = path.stat().st_mtime_ns
                self.dirty = True
            torrent = self._torrent(sha256)
            if torrent is not None:
                self._seed(sha256, torrent)

    def _seed(self, sha256: str, torrent: TorrentFile) -> None:
        lt = load_libtorrent()
        assert lt is not None
        params = lt.load_torrent_buffer(torrent.data)
        params.save_path = str(self.cache.entry_dir(sha256))
        # The agent only serves: web seeds are of no use to it, trackers are.
        params.url_seeds = []
        params.trackers = list(torrent.trackers) + [
            t for t in self.settings.trackers if t not in torrent.trackers
        ]
        params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        params.flags |= lt.torrent_flags.seed_mode | lt.torrent_flags.upload_mode
        self.seeding[sha256] = _Seeding(sha256, torrent.btih)
        self._by_btih[torrent.btih] = sha256
        self.session.async_add_torrent(params)

    def _unseed(self, sha256: str) -> None:
        seeding = self.seeding.pop(sha256, None)
        if seeding is None:
            return
        self._by_btih.pop(seeding.btih, None)
        if seeding.handle is not None:
            self._count_upload(seeding, _payload_uploaded(seeding.handle))
            with contextlib.suppress(RuntimeError):
                self.session.remove_torrent(seeding.handle)

    def _forget(self, sha256: str, reason: str) -> None:
        """Stop seeding and drop the record (the file is gone or unusable)."""
        record = self.state.files.pop(sha256, None)
        self._unseed(sha256)
        self.stopped.pop(sha256, None)
        with contextlib.suppress(ValueError):
            self.pending.remove(sha256)
        if record is not None:
            self.log(f"{record.filename}: no longer seeded: {reason}")
            self.dirty = True

    def _discard(self, sha256: str, reason: str) -> None:
        """A file that does not match its torrent: never served again, deleted from the cache."""
        record = self.state.files.get(sha256)
        name = record.filename if record else sha256[:12]
        self.log(f"{name}: corrupt in the cache ({reason}); deleting it, it will be fetched again")
        self._forget(sha256, "corrupt")
        self.discarded += 1
        self._worker.submit(self._remove_from_cache, sha256)

    def _remove_from_cache(self, sha256: str) -> None:
        try:
            self.cache.remove(sha256)
            if self.unpacked.entry_dir(sha256).is_dir():
                self.unpacked.discard(sha256)  # environments keep their links to its files
        except (TorripError, OSError) as error:
            self.log(f"cannot remove {sha256[:12]} from the cache: {error}")

    def _torrent(self, sha256: str) -> TorrentFile | None:
        data = self.cache.torrent(sha256)
        if data is None:
            return None
        try:
            return parse_torrent(data)
        except TorripError as error:
            self.log(f"{sha256[:12]}: its cached torrent is unusable: {error}")
            return None

    # -- alerts -----------------------------------------------------------------------

    def _read_alerts(self) -> None:
        if self.session is None:
            return
        for alert in self.session.pop_alerts():
            kind = type(alert).__name__
            handler = _HANDLERS.get(kind)
            if handler is not None:
                handler(self, alert)

    def _on_added(self, alert: Any) -> None:
        btih = _btih(alert.handle) if alert.handle.is_valid() else None
        sha256 = self._by_btih.get(btih or "")
        if alert.error.value():
            self.log(f"libtorrent refused a torrent: {alert.error.message()}")
            if sha256:
                self.seeding.pop(sha256, None)
                self.stopped[sha256] = f"error: {alert.error.message()}"
            return
        if sha256 is None or sha256 not in self.seeding:
            with contextlib.suppress(RuntimeError):
                self.session.remove_torrent(alert.handle)  # unseeded while it was being added
            return
        self.seeding[sha256].handle = alert.handle

    def _on_checked(self, alert: Any) -> None:
        # Ready to serve. libtorrent spreads first DHT announces over its 15-minute round
        # (one torrent every 900/N seconds); a file just handed over should be found now.
        if _btih(alert.handle) in self._by_btih:
            alert.handle.force_dht_announce()

    def _on_hash_failed(self, alert: Any) -> None:
        sha256 = self._by_btih.get(_btih(alert.handle))
        if sha256 is not None:
            # The agent never downloads: a failing piece is the cached file's own.
            self._discard(sha256, f"piece {alert.piece_index} does not match its hash")

    def _on_file_error(self, alert: Any) -> None:
        sha256 = self._by_btih.get(_btih(alert.handle))
        if sha256 is None:
            return
        if not (self.cache.entry_dir(sha256)).is_dir():
            self._forget(sha256, "it left the cache")
            return
        self._unseed(sha256)
        self.stopped[sha256] = f"error: {alert.message()}"
        self.log(f"libtorrent: {alert.message()}")

    def _on_state_update(self, alert: Any) -> None:
        for status in alert.status:
            sha256 = self._by_btih.get(_btih(status.handle))
            seeding = self.seeding.get(sha256 or "")
            if seeding is None:
                continue
            self._count_upload(seeding, int(status.total_payload_upload))
            seeding.peers = int(status.num_peers)
            seeding.upload_rate = int(status.upload_payload_rate)

    def _on_stats(self, alert: Any) -> None:
        self.dht_nodes = int(alert.values.get("dht.dht_nodes", 0))

    def _on_listen(self, alert: Any) -> None:
        lt = load_libtorrent()
        assert lt is not None
        if alert.socket_type == lt.listen_succeeded_alert_socket_type_t.tcp:
            host = str(alert.address)
            endpoint = f"[{host}]:{alert.port}" if ":" in host else f"{host}:{alert.port}"
            if endpoint not in self.listen:
                self.listen.append(endpoint)

    def _on_dht_bootstrap(self, _alert: Any) -> None:
        # Torrents added before the DHT had nodes would wait for the next announce round
        # (15 minutes): announce them now that it can reach someone.
        for seeding in self.seeding.values():
            if seeding.handle is not None:
                seeding.handle.force_dht_announce()

    def _on_listen_failed(self, alert: Any) -> None:
        self.log(f"libtorrent: {alert.message()}")

    def _count_upload(self, seeding: _Seeding, total: int) -> None:
        delta = total - seeding.last_upload
        if delta <= 0:
            return
        seeding.last_upload = total
        record = self.state.files.get(seeding.sha256)
        if record is not None:
            record.uploaded += delta
        self.state.uploaded += delta
        self.uploaded_run += delta
        self.dirty = True

    def _read_updates_now(self) -> None:
        """Fold the latest upload counters in (before the state is written at exit)."""
        for seeding in self.seeding.values():
            if seeding.handle is not None:
                self._count_upload(seeding, _payload_uploaded(seeding.handle))

    # -- reports ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        self._read_updates_now()
        return {
            "listen": list(self.listen),
            "dht_nodes": self.dht_nodes,
            "files_seeding": sum(1 for s in self.seeding.values() if s.handle is not None),
            "files_pending": len(self.pending)
            + len(self.verifying)
            + len(self.making)
            + sum(1 for s in self.seeding.values() if s.handle is None),
            "files_stopped": len(self.stopped),
            "files_known": len(self.state.files),
            "peers": sum(s.peers for s in self.seeding.values()),
            "upload_rate": sum(s.upload_rate for s in self.seeding.values()),
            "uploaded_total": self.state.uploaded,
            "uploaded_run": self.uploaded_run,
            "discarded_corrupt": self.discarded,
            "evicted": self.evicted,
            "limits": self.limits.as_dict(),
        }

    def files(self) -> list[dict[str, Any]]:
        self._read_updates_now()
        rows = []
        for record in sorted(self.state.files.values(), key=lambda r: r.filename):
            seeding = self.seeding.get(record.sha256)
            rows.append(
                {
                    "sha256": record.sha256,
                    "filename": record.filename,
                    "size": record.size,
                    "uploaded": record.uploaded,
                    "peers": seeding.peers if seeding else 0,
                    "state": self._file_state(record.sha256),
                }
            )
        return rows

    def _file_state(self, sha256: str) -> str:
        seeding = self.seeding.get(sha256)
        if seeding is not None:
            return "seeding" if seeding.handle is not None else "starting"
        if sha256 in self.verifying:
            return "checking"
        if sha256 in self.pending:
            return "queued"
        return f"stopped: {self.stopped.get(sha256, 'not seeded')}"


def _announced_torrent(path: Path, item: FileToSeed) -> TorrentFile | str:
    """Recipe 1's torrent of the file, if it has the infohashes announced; else why not."""
    web_seeds = [item.url] if item.url and item.url.startswith(("http://", "https://")) else []
    try:
        torrent = make_torrent(path, web_seeds=web_seeds)
    except TorripError as error:
        return f"cannot make its torrent: {error}"
    if (item.btih and item.btih.lower() != torrent.btih) or (
        item.btmh and item.btmh.lower() != torrent.btmh
    ):
        return "the index announced another torrent (not recipe 1); nobody would find this one"
    return torrent


def _check_file(torrent: TorrentFile, path: Path) -> str | None:
    """None if the file matches its torrent piece by piece, else what is wrong."""
    try:
        verify_file(torrent, path, filename=torrent.name)
    except TorripError as error:
        return str(error)
    return None


def _btih(handle: Any) -> str:
    return str(handle.info_hashes().v1)


def _payload_uploaded(handle: Any) -> int:
    try:
        return int(handle.status(0).total_payload_upload)
    except RuntimeError:
        return 0


def _matches(record: FileRecord, key: str) -> bool:
    key = key.strip()
    lowered = key.lower()
    is_digest = len(lowered) >= 8 and all(c in "0123456789abcdef" for c in lowered)
    if is_digest and record.sha256.startswith(lowered):
        return True
    return record.filename == os.path.basename(key)


_HANDLERS: dict[str, Callable[[Seeder, Any], None]] = {
    "add_torrent_alert": Seeder._on_added,
    "hash_failed_alert": Seeder._on_hash_failed,
    "file_error_alert": Seeder._on_file_error,
    "torrent_error_alert": Seeder._on_file_error,
    "state_update_alert": Seeder._on_state_update,
    "session_stats_alert": Seeder._on_stats,
    "listen_succeeded_alert": Seeder._on_listen,
    "listen_failed_alert": Seeder._on_listen_failed,
    "dht_bootstrap_alert": Seeder._on_dht_bootstrap,
    "torrent_checked_alert": Seeder._on_checked,
}

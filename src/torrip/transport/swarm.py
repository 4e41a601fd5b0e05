"""Swarm downloads: a file from peers and the origin at once, through libtorrent.

    swarm = SwarmSource(settings, http, cache=cache, log=output.detail, notice=output.info)
    with Fetcher(settings, http, cache, sources=[swarm], log=...) as fetcher:
        results = fetcher.fetch_all(requests)      # swarm first, then plain HTTP
    swarm.close()

A file is fetched here when its request names a torrent (index ``_torrent``, a
torrent index, a lockfile) and it is large enough for a swarm to pay off
(``SWARM_MIN_SIZE``); otherwise ``fetch`` returns None and the fetcher uses HTTP.

Trust: the torrent is untrusted transport. It is used only if it describes exactly
the requested file (one file, that name, that size, sane limits, and the infohash
or .torrent hash the index announced); libtorrent checks every piece against it,
and the fetcher checks the whole file against the index's sha256 afterwards. A
torrent that leads to wrong bytes is distrusted for the rest of the run.

The origin (docs/swarm.md has the policy and its measurements): when no peer
connects within ``PEER_GRACE`` seconds, a file under ``HANDOVER_MAX_SIZE`` goes back
to plain HTTP; otherwise, and when peers deliver less than ``SLOW_PEERS_RATE``, the
origin joins as a web seed on torrip's counting relay (torrip.transport.webseed),
never given to libtorrent directly. So a swarm with no peers still completes, and a
healthy swarm takes nothing from the origin. Bytes are counted exactly: the origin's
by the relay (plus the .torrent), the peers' as the rest of the file.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from torrip.agent.client import AgentPeer, running_agent_peer
from torrip.cache import DistributionCache
from torrip.config import Settings
from torrip.errors import HTTPStatusError, NetworkError, TorrentError, TorripError
from torrip.index.links import TorrentRef
from torrip.index.torrents import download_torrent
from torrip.transport.fetch import FileRequest, Source, SourceProgress
from torrip.transport.recipe import TorrentFile, parse_torrent, validate_for_file
from torrip.transport.session import (
    SwarmUnavailable,
    close_session,
    libtorrent_installed,
    load_libtorrent,
    open_session,
)
from torrip.transport.webseed import OriginRelay, RelayRoute

__all__ = [
    "HANDOVER_MAX_SIZE",
    "MAX_PEER_GRACE",
    "PEER_GRACE",
    "SLOW_PEERS_RATE",
    "SWARM_MIN_SIZE",
    "SwarmSource",
    "swarm_for",
]

Log = Callable[[str], None]

# Below this size a file comes over plain HTTP: fetching its .torrent, adding it and
# meeting peers costs more than the file (docs/swarm.md has the measurement).
SWARM_MIN_SIZE = 1024 * 1024
# A file nobody serves goes to HTTP once every peer source answered without a peer; the
# DHT and LAN discovery, which never say "none", are given PEER_GRACE seconds, and
# peers that are known but do not connect, MAX_PEER_GRACE (docs/swarm.md).
PEER_GRACE = 1.0
MAX_PEER_GRACE = 3.0
# A DHT with no node after this long (seconds) is taken as unreachable.
_DHT_ALONE = 0.2
# Below this size, a file nobody serves after the grace goes back to plain HTTP (the
# fastest way to the origin); larger files keep the swarm open, the origin joining as
# a web seed, so peers found later (a slow DHT) still take their share.
HANDOVER_MAX_SIZE = 256 * 1024 * 1024
# Peers slower than this (bytes/s, over RATE_WINDOW seconds) get the origin's help.
SLOW_PEERS_RATE = 512 * 1024
RATE_WINDOW = 2.0
_POLL = 0.05
# While no peer is connected, ask the DHT again this often (seconds).
_DHT_RETRY = 1.0
# Metadata of a magnet from peers: at most this large (a recipe-1 .torrent of a 64 GiB
# file is about 2 MiB).
_MAX_METADATA = 8 * 1024 * 1024


# Alerts a download waits for: its file written, its trackers' answers.
_DOWNLOAD_ALERTS = frozenset(
    {
        "cache_flushed_alert",
        "tracker_reply_alert",
        "tracker_error_alert",
        "peer_disconnected_alert",
        "peer_error_alert",
    }
)
_PEER_GONE_ALERTS = frozenset({"peer_disconnected_alert", "peer_error_alert"})
# Alerts worth a line at -v: why peers were dropped, why a torrent failed.
_LOGGED_ALERTS = frozenset(
    {
        "peer_ban_alert",
        "hash_failed_alert",
        "url_seed_alert",
        "torrent_error_alert",
        "file_error_alert",
        "tracker_error_alert",
        "metadata_failed_alert",
    }
)


def _stall_limit(settings: Settings) -> float:
    """Seconds without a byte from peers or origin after which a swarm download fails."""
    return max(5.0, settings.timeout)


def _peer_left(alert: Any) -> bool:
    """Whether a disconnection leaves us without that peer: not when it was one of two
    connections to it (each side dialled the other, and libtorrent kept one)."""
    lt = load_libtorrent()
    reason = getattr(alert, "reason", None)
    return lt is None or reason != lt.close_reason_t.duplicate_peer_id


def _ignore(_: str) -> None:
    pass


class _NoPeers(Exception):
    """Nobody serves the file: the fetcher's plain HTTP download takes over."""


@dataclass
class _Download:
    """One file's swarm download in progress."""

    handle: Any
    route: RelayRoute
    filename: str
    size: int
    started: float
    origin_on: bool = False
    done: int = 0  # bytes of the file libtorrent has verified
    peer_bytes: int = 0  # of those, not from the origin (passed to progress)
    dht_asked: float = 0.0  # when the DHT was last asked for peers
    trackers: frozenset[str] = frozenset()  # announced to
    answered: set[str] = field(default_factory=set)  # trackers that replied (or failed)
    flushed: threading.Event = field(default_factory=threading.Event)
    # Peers whose connection failed or ended (before any data: see _nobody_serves).
    gone: set[str] = field(default_factory=set)


class SwarmSource:
    """A fetch Source backed by one libtorrent session, started on first use."""

    name = "swarm"

    def __init__(
        self,
        settings: Settings,
        http: httpx.Client,
        *,
        cache: DistributionCache | None = None,
        log: Log = _ignore,
        notice: Log = _ignore,
        min_size: int = SWARM_MIN_SIZE,
    ) -> None:
        self.settings = settings
        self.http = http
        self.cache = cache
        self.log = log
        self.notice = notice
        self.min_size = min_size
        self._lock = threading.Lock()
        self._alerts_lock = threading.Lock()
        self._active: list[_Download] = []  # for alerts to find their download
        self._agent_peer: AgentPeer | None = None
        self._agent_asked = False
        self._dht_node_count: int | None = None
        self._dht_asked = 0.0
        self._session: Any = None
        self._relay: OriginRelay | None = None
        self._unavailable: str | None = None
        self._distrusted: set[str] = set()
        self._handed_over: set[str] = set()  # request URLs
        # request url -> .torrent bytes, kept in the cache once the file is verified.
        self._torrents: dict[str, bytes] = {}

    # -- Source -----------------------------------------------------------------------

    def fetch(
        self, request: FileRequest, dest: Path, progress: SourceProgress
    ) -> Mapping[str, int] | None:
        return self._fetch(request, dest, progress, patient=False)

    def paces(self, request: FileRequest) -> bool:
        """Whether ``fetch`` may take ``request`` on itself: not when it hands it to HTTP
        at once (no torrent, too small). Nor where only the torrent's own trackers could
        find peers: whether it names any is known once the .torrent is fetched, which
        then happens in the file's turn for an HTTP slot."""
        return self._may_take(request) and self._peer_sources_beyond_torrents()

    def _may_take(self, request: FileRequest) -> bool:
        ref = request.torrent
        if ref is None or not self.settings.p2p or request.size is None:
            return False
        return request.size >= self.min_size and _ref_key(ref) not in self._distrusted

    def handed_over(self, request: FileRequest) -> bool:
        """Whether ``fetch`` gave the file to HTTP because no peer served it (in time)."""
        with self._lock:
            return request.url in self._handed_over

    def fetch_waiting_for_peers(
        self, request: FileRequest, dest: Path, progress: SourceProgress
    ) -> Mapping[str, int] | None:
        """``fetch``, but never handing the file to HTTP for want of peers: for when the
        origin failed. Gives up only when nothing arrives for the stall limit."""
        self.notice(
            f"{request.filename}: the origin cannot serve it; waiting up to "
            f"{_stall_limit(self.settings):.0f} s for peers"
        )
        return self._fetch(request, dest, progress, patient=True)

    def _fetch(
        self, request: FileRequest, dest: Path, progress: SourceProgress, *, patient: bool
    ) -> Mapping[str, int] | None:
        ref = request.torrent
        if ref is None or request.size is None or not self._may_take(request):
            return None
        # Without a tracker, DHT, LAN discovery or agent of our own, only the torrent's own
        # trackers could find peers: then the .torrent decides whether a session starts.
        anywhere = self._peer_sources_beyond_torrents()
        started = self._start() if anywhere else None
        if anywhere and started is None:
            return None
        torrent, torrent_bytes = self._torrent_for(request, ref)
        if torrent is None and not (ref.btih or ref.btmh):
            return None
        if not anywhere:
            if torrent is None or not torrent.trackers:
                self.log(f"{request.filename}: no tracker, DHT or LAN discovery to find peers")
                return None
            started = self._start()
        if started is None:
            return None
        session, relay = started
        work = dest.parent / f"{dest.name}.swarm"
        work.mkdir(exist_ok=True)
        route = relay.open(request.url, request.filename, lambda n: progress(n, "origin"))
        download: _Download | None = None
        try:
            # Registered before any alert of the torrent can be popped: on loopback a
            # tracker answers before add_torrent returns, and an answer lost to another
            # thread's pump made the download wait out the grace instead of handing over.
            with self._alerts_lock:
                handle, trackers = self._add(session, request, ref, torrent, work)
                download = _Download(
                    handle, route, request.filename, request.size, time.monotonic()
                )
                download.trackers = frozenset(trackers)
                with self._lock:
                    self._active.append(download)
            try:
                self._run(download, progress, patient=patient)
                self._flush(download)
            finally:
                session.remove_torrent(handle)
                with self._lock:
                    self._active.remove(download)
            (work / request.filename).replace(dest)
        except _NoPeers as why:
            self.log(f"{request.filename}: no peer serves it ({why}); over HTTP instead")
            with self._lock:
                self._handed_over.add(request.url)
            return None
        except (TorripError, OSError) as error:
            self._distrusted.add(_ref_key(ref))
            # Take back what the display was told: these bytes are thrown away.
            progress(-route.bytes, "origin")
            progress(-(download.peer_bytes if download else 0), "peers")
            if isinstance(error, OSError):
                raise TorrentError(f"swarm download failed: {error}") from None
            raise
        finally:
            relay.close_route(route)
            shutil.rmtree(work, ignore_errors=True)
        if torrent is not None:
            self._torrents[request.url] = torrent.data
        origin = route.bytes
        return {"origin": origin + torrent_bytes, "peers": max(0, request.size - origin)}

    def keep_torrent(self, request: FileRequest, sha256: str) -> None:
        """The fetcher verified the file: keep its torrent in the cache for seeding."""
        data = self._torrents.pop(request.url, None)
        if data is not None and self.cache is not None:
            self.cache.add_torrent(sha256, data)

    def distrust(self, request: FileRequest) -> None:
        """The file failed verification: never use this torrent again in this run."""
        ref = request.torrent
        if ref is not None:
            self._distrusted.add(_ref_key(ref))
        self._torrents.pop(request.url, None)

    def close(self) -> None:
        with self._lock:
            if self._relay is not None:
                self._relay.close()
                self._relay = None
            if self._session is not None:
                close_session(self._session)
                self._session = None

    # -- session ----------------------------------------------------------------------

    def _start(self) -> tuple[Any, OriginRelay] | None:
        with self._lock:
            if self._unavailable is not None:
                return None
            if self._session is None:
                try:
                    session = open_session(self.settings, role="install")
                    if not session.is_listening():
                        close_session(session)
                        raise SwarmUnavailable(f"cannot listen on {','.join(self.settings.listen)}")
                except SwarmUnavailable as error:
                    self._unavailable = str(error)
                    self.notice(f"peer to peer is off ({error}): downloading over HTTP only")
                    return None
                self._session = session
                self._relay = OriginRelay(self.http)
                if self.settings.dht_bootstrap:
                    # The agent's DHT table is warm: lookups start from it at once.
                    for endpoint in self._agent_peer.endpoints if self._agent_peer else ():
                        session.add_dht_node(endpoint)
            assert self._relay is not None
            return self._session, self._relay

    # -- torrents ---------------------------------------------------------------------

    def _torrent_for(self, request: FileRequest, ref: TorrentRef) -> tuple[TorrentFile | None, int]:
        """The validated torrent and the bytes its download took; (None, n) for a magnet."""
        url = ref.url or request.url + ".torrent"
        try:
            data = download_torrent(self.http, url)
        except (NetworkError, HTTPStatusError) as error:
            data = None
            self.log(f"{request.filename}: cannot fetch its .torrent ({error})")
        if data is None:
            self.log(f"{request.filename}: no .torrent at {url}; asking peers for it by infohash")
            return None, 0
        try:
            torrent = parse_torrent(data)
            validate_for_file(torrent, filename=request.filename, size=request.size or 0)
            _check_announced(torrent, ref)
        except TorripError as error:
            self.log(f"warning: discarded the torrent {url} for {request.filename}: {error}")
            self._distrusted.add(_ref_key(ref))
            return None, 0
        return torrent, len(data)

    def _add(
        self,
        session: Any,
        request: FileRequest,
        ref: TorrentRef,
        torrent: TorrentFile | None,
        work: Path,
    ) -> tuple[Any, list[str]]:
        lt = load_libtorrent()
        assert lt is not None
        if torrent is not None:
            params = lt.load_torrent_buffer(torrent.data)
            trackers = list(torrent.trackers)
        else:
            params = lt.parse_magnet_uri(_magnet(ref, request.filename))
            trackers = []
        # The torrent's own web seeds would bypass the counting relay; the origin joins
        # through it, when the policy says so.
        params.url_seeds = []
        params.trackers = trackers + [t for t in self.settings.trackers if t not in trackers]
        params.save_path = str(work)
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        try:
            handle = session.add_torrent(params)
        except RuntimeError as exc:
            raise TorrentError(f"libtorrent refused the torrent: {exc}") from None
        agent = self._agent_peer
        if agent is not None and request.sha256 in agent.seeding:
            for endpoint in agent.endpoints:
                handle.connect_peer(endpoint)
        try:
            return handle, list(params.trackers)
        except RuntimeError as exc:
            raise TorrentError(f"libtorrent refused the torrent: {exc}") from None

    def _peer_sources_beyond_torrents(self) -> bool:
        """Whether peers can be found for any torrent: trackers of our own, the DHT, the
        LAN, or the user's running seeding agent."""
        settings = self.settings
        agent = self._agent()  # asked in any case: the agent also warms the DHT and serves
        return bool(settings.trackers or settings.dht_bootstrap or settings.lan_discovery or agent)

    def _agent(self) -> AgentPeer | None:
        """The user's running agent (asked once); None when none runs."""
        with self._lock:
            if not self._agent_asked:
                self._agent_asked = True
                self._agent_peer = running_agent_peer(self.settings)
                for host, port in self._agent_peer.endpoints if self._agent_peer else ():
                    self.log(f"the running seeding agent at {host}:{port} is a peer and DHT node")
            return self._agent_peer

    def _flush(self, download: _Download) -> None:
        """Wait until libtorrent has written every block: a piece is checked from memory
        and counted as had before its write to the file completes."""
        download.handle.flush_cache()
        deadline = time.monotonic() + max(5.0, self.settings.timeout)
        while not download.flushed.wait(_POLL):
            self._pump_alerts()
            if time.monotonic() > deadline:
                raise TorrentError("libtorrent did not finish writing the file")

    # -- the download loop ------------------------------------------------------------

    def _run(self, download: _Download, progress: SourceProgress, *, patient: bool) -> None:
        handle = download.handle
        stall_limit = _stall_limit(self.settings)
        last_progress = time.monotonic()
        checked_metadata = False
        window: deque[tuple[float, int]] = deque()  # (time, bytes from peers so far)
        while True:
            status = handle.status()
            if status.errc.value():
                raise TorrentError(f"libtorrent: {status.errc.message()}")
            if not checked_metadata and status.has_metadata:
                _check_metadata(handle, download)
                checked_metadata = True
            now = time.monotonic()
            done = int(status.total_wanted_done) if status.has_metadata else 0
            # Origin bytes reach the display from the relay as they come; the rest is peers'.
            peers = max(0, done - download.route.bytes)
            if peers > download.peer_bytes:
                progress(peers - download.peer_bytes, "peers")
                download.peer_bytes = peers
            if done > download.done:
                download.done = done
                last_progress = now
            if status.has_metadata and done >= download.size and status.is_seeding:
                return
            if now - last_progress > stall_limit:
                raise TorrentError(f"no data for {stall_limit:.0f} seconds from peers or origin")
            if status.num_peers == 0 and now - download.dht_asked >= _DHT_RETRY:
                # The first DHT lookup may run before the routing table has any node.
                handle.force_dht_announce()
                download.dht_asked = now
            window.append((now, peers))
            while now - window[0][0] > RATE_WINDOW:
                window.popleft()
            if (
                not patient
                and not download.origin_on
                and download.size < HANDOVER_MAX_SIZE
                and done == 0
                and status.num_peers == 0
                and self._nobody_serves(download, status, now)
            ):
                # Plain HTTP is faster than the origin as a web seed.
                raise _NoPeers(
                    f"{now - download.started:.1f} s, {status.list_peers} peers known, "
                    f"gone: {', '.join(sorted(download.gone)) or 'none'}"
                )
            if not (patient or download.origin_on) and _origin_needed(download, now, window):
                handle.add_url_seed(download.route.url)
                download.origin_on = True
                self.log(f"{download.filename}: the origin joins the swarm download")
            progress.peers(max(0, status.num_peers - (1 if download.origin_on else 0)))
            self._pump_alerts()
            time.sleep(_POLL)

    def _nobody_serves(self, download: _Download, status: Any, now: float) -> bool:
        """No peer connected, and none will soon: every peer source answered without one
        (the DHT is given ``PEER_GRACE``), or peers known for ``MAX_PEER_GRACE`` never
        connected."""
        elapsed = now - download.started
        if elapsed >= MAX_PEER_GRACE:
            return True
        # The agent is in every torrent's peer list; it serves a file only if it has it,
        # and then it connects at once: it alone is no reason to wait.
        # Trackers hand out peers that are gone (a refused connection says so at once):
        # only peers not yet tried, or still connecting, are worth waiting for.
        if status.list_peers - len(download.gone) > 0:
            return False  # peers are known (the agent too, when it seeds this file): wait
        dht_answered = (
            not self.settings.dht_bootstrap
            or elapsed >= PEER_GRACE
            # A DHT that reached no node (no network, names that do not resolve) will
            # not find anyone either: do not wait for it.
            or (elapsed >= _DHT_ALONE and self._dht_nodes() == 0)
        )
        lan_answered = not self.settings.lan_discovery or elapsed >= PEER_GRACE
        return dht_answered and lan_answered and download.answered >= download.trackers

    def _dht_nodes(self) -> int | None:
        """The DHT's node count as last reported (None until the first report)."""
        session = self._session
        now = time.monotonic()
        if session is not None and now - self._dht_asked >= _POLL:
            self._dht_asked = now
            session.post_session_stats()  # answered by a session_stats_alert
        return self._dht_node_count

    def _pump_alerts(self) -> None:
        """Drain libtorrent's alert queue (one thread at a time): pass each alert to its
        download, and log what a user may ask about."""
        if not self._alerts_lock.acquire(blocking=False):
            return
        try:
            session = self._session
            if session is None:
                return
            for alert in session.pop_alerts():
                kind = type(alert).__name__
                if kind in _LOGGED_ALERTS:
                    self.log(f"libtorrent: {alert.message()}")
                if kind == "session_stats_alert":
                    self._dht_node_count = int(alert.values.get("dht.dht_nodes", 0))
                    continue
                if kind in _DOWNLOAD_ALERTS:
                    download = self._download_of(alert.handle)
                    if download is None:
                        continue
                    if kind == "cache_flushed_alert":
                        download.flushed.set()
                    elif kind in _PEER_GONE_ALERTS:
                        if _peer_left(alert):
                            download.gone.add(str(alert.endpoint))
                    else:
                        download.answered.add(alert.tracker_url())
        finally:
            self._alerts_lock.release()

    def _download_of(self, handle: Any) -> _Download | None:
        with self._lock:
            return next((d for d in self._active if d.handle == handle), None)


@contextlib.contextmanager
def swarm_for(
    settings: Settings,
    http: httpx.Client,
    cache: DistributionCache | None,
    requests: Sequence[FileRequest],
    *,
    log: Log = _ignore,
    notice: Log = _ignore,
) -> Iterator[list[Source]]:
    """The sources to put before HTTP for ``requests``: a SwarmSource when any has a torrent.

    With p2p off (``--no-p2p``) or libtorrent missing, none, and one line says so.
    """
    if not any(request.torrent is not None for request in requests):
        yield []
        return
    if not settings.p2p:
        notice("peer to peer is off (--no-p2p, or p2p = false): downloading over HTTP only")
        yield []
        return
    if not libtorrent_installed():
        notice("peer to peer is off (libtorrent is not installed): downloading over HTTP only")
        yield []
        return
    swarm = SwarmSource(settings, http, cache=cache, log=log, notice=notice)
    try:
        yield [swarm]
    finally:
        swarm.close()


def _origin_needed(download: _Download, now: float, window: deque[tuple[float, int]]) -> bool:
    """Whether peers need the origin's help: nobody delivered in the grace, or too slowly."""
    elapsed = now - download.started
    if elapsed < PEER_GRACE:
        return False
    if window[-1][1] == 0:
        return True
    first_time, first_bytes = window[0]
    span = now - first_time
    if span < RATE_WINDOW * 0.9:
        return False  # not enough history to judge a rate yet
    return (window[-1][1] - first_bytes) / span < SLOW_PEERS_RATE


def _ref_key(ref: TorrentRef) -> str:
    return ref.btih or ref.btmh or ref.sha256 or ref.url or ""


def _magnet(ref: TorrentRef, filename: str) -> str:
    from urllib.parse import quote

    parts = []
    if ref.btih:
        parts.append(f"xt=urn:btih:{ref.btih}")
    if ref.btmh:
        parts.append(f"xt=urn:btmh:{ref.btmh}")
    parts.append(f"dn={quote(filename, safe='')}")
    return "magnet:?" + "&".join(parts)


def _check_announced(torrent: TorrentFile, ref: TorrentRef) -> None:
    """The torrent must be the one the index (or lock) announced, where it said which."""
    if ref.sha256 and torrent.sha256 != ref.sha256.lower():
        raise TorrentError("the .torrent's sha256 is not the one the index announced")
    if ref.btih and torrent.btih != ref.btih.lower():
        raise TorrentError("the torrent's v1 infohash is not the one the index announced")
    if ref.btmh and torrent.btmh != ref.btmh.lower():
        raise TorrentError("the torrent's v2 infohash is not the one the index announced")


def _check_metadata(handle: Any, download: _Download) -> None:
    """Metadata from peers (a magnet) must describe exactly the expected file."""
    info = handle.torrent_file()
    if info is None:
        return
    if info.num_files() != 1:
        raise TorrentError(f"the swarm's torrent has {info.num_files()} files, expected one")
    if info.layout().file_name(0) != download.filename or info.name() != download.filename:
        raise TorrentError(f"the swarm's torrent names {info.name()!r}, not {download.filename!r}")
    if info.total_size() != download.size:
        raise TorrentError(f"the swarm's file is {info.total_size()} bytes, not {download.size}")
    if len(info.info_section()) > _MAX_METADATA:
        raise TorrentError("the swarm's torrent metadata is larger than torrip's limit")

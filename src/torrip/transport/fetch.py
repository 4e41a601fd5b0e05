"""Fetch: the verified bytes of each file, from the cache first, then from sources in order.

    with Fetcher(settings, client, DistributionCache(settings.cache_dir)) as fetcher:
        results = fetcher.fetch_all([FileRequest.from_link(link) for link in links])
        for result in results:
            result.path      # the file, checked against the index's sha256 and size
            result.source    # "cache", "origin" or "swarm"
            result.bytes     # {"cache": 0, "origin": 12345, "peers": 0}, exact

A *source* is anything that can put a file's bytes at a path: HTTP from the origin
(``HttpSource``, always present and always last), later a BitTorrent swarm. The
fetcher owns everything around it: the cache, one download per file across threads
and processes (a per-file lock in the cache), the bound on downloads per host, and
verification. No bytes from any source reach the cache or a caller before their
size and sha256 match the request; bytes that do not match are deleted. A source
other than the origin that fails or delivers wrong bytes is passed over (``log``
says why) and the next one is asked; the origin's failure is the caller's error.

A request without a sha256 (a direct URL, a --find-links file) is fetched and
hashed, and the result says ``verified=False``. ``file:`` URLs are read in place:
copied into the cache when there is one, used where they lie when there is not.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol
from urllib.parse import urldefrag, urlsplit

from torrip.cache import DistributionCache, sha256_of
from torrip.closing import Closing
from torrip.config import Settings
from torrip.errors import HashMismatchError, SizeMismatchError, TorripError
from torrip.fsutil import file_url_path
from torrip.index.links import Link, TorrentRef
from torrip.transport.http import discard_partial, download, resume_sidecar
from torrip.transport.progress import NullProgress
from torrip.width import Stopwatch, Width

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Cancel",
    "FetchProgress",
    "FetchResult",
    "Fetcher",
    "FileRequest",
    "HttpSource",
    "Received",
    "Source",
    "SourceName",
    "SourceProgress",
    "cached_path",
    "fetch_key",
]

SourceName = Literal["cache", "origin", "swarm"]
Log = Callable[[str], None]
# Byte-count keys of FetchResult.bytes; a source's name maps to one of them.
_BYTES_KEYS = ("cache", "origin", "peers")
_MAX_WORKERS = 64
# Files this large (bytes) come over HTTP LARGE_AT_ONCE at a time, while smaller ones fill
# the other slots. Each download costs Python work per 16 KiB TLS record, on one GIL, so
# more at once is not faster, and files that end together are unpacked after the last one:
# torch's 29 files from PyPI (3.0 GB, 8 of them 170-540 MB) took 29.7 s with 8 at once (7 s
# of unpacking after the downloads), 18.4-19.0 s with 2, 18.2-19.2 s with 1 on tmpfs; on
# disk 27.9, 20.1 and 21.7 s (docs/benchmarks.md).
LARGE_DOWNLOAD = 32 << 20
LARGE_AT_ONCE = 2
# Downloads at once from a near host (torrip.width); a far one gets
# max_downloads_per_host. From a near host more threads only contend for the one GIL:
# jupyterlab's 91 wheels from a loopback mirror took 0.16 s and 0.16 s of CPU one at a
# time, 0.18 s and 0.25 s four at a time (36,000 futex calls against 670), CPU the
# unpacking needs. Cold installs, two against four at once: web 0.40 s against 0.42 s,
# jupyterlab 1.18 s against 1.19 s (docs/benchmarks.md).
NEAR_DOWNLOADS = 2
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _ignore(_: str) -> None:
    pass


@dataclass(frozen=True)
class FileRequest:
    """One file to fetch; ``sha256`` and ``size`` are what the index promised, if it did."""

    filename: str
    url: str
    sha256: str | None
    size: int | None
    # Where a torrent for this file is known (index, torrent index, lockfile); untrusted.
    torrent: TorrentRef | None = None

    def __post_init__(self) -> None:
        if self.sha256 is not None:
            object.__setattr__(self, "sha256", self.sha256.lower())

    @classmethod
    def from_link(cls, link: Link) -> FileRequest:
        return cls(link.filename, urldefrag(link.url).url, link.sha256, link.size, link.torrent)

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


class FetchResult(NamedTuple):
    """A fetched file. ``bytes`` counts what each kind of source delivered in this run."""

    request: FileRequest
    path: Path
    source: SourceName
    bytes: Mapping[str, int]
    sha256: str  # of the bytes at ``path``
    verified: bool  # False when the request had no sha256 to check against


class Received(NamedTuple):
    """What a source that hashed the bytes as it wrote them fetched."""

    counts: int | Mapping[str, int]
    sha256: str  # of the whole file at dest: the fetcher need not read it again


# What a source's fetch gives: None (it cannot serve the file), or the bytes received.
FetchedBytes = int | Mapping[str, int] | Received | None


class Source(Protocol):
    """Something that can put a file's bytes at ``dest``.

    ``fetch`` returns None when this source cannot serve the file (no torrent, no
    peers); else the bytes it received: an int, counted under the source's kind
    (``"origin"`` for the origin, ``"peers"`` for anything else), or a mapping such
    as ``{"peers": p, "origin": o}`` for a swarm that also used the origin; or either
    in a ``Received`` with the file's sha256. It calls ``progress(n)`` as bytes arrive
    (negative when it drops bytes). The fetcher verifies ``dest`` afterwards (with the
    sha256 given, if any); a source need not.
    """

    name: str

    def fetch(self, request: FileRequest, dest: Path, progress: SourceProgress) -> FetchedBytes: ...


def _paces(source: Source, request: FileRequest) -> bool:
    """Whether ``source`` may fetch ``request`` itself at its own pace, holding no HTTP
    slot (a swarm download): the fetcher starts such a request at once, on a worker of
    its own. A source says so by a ``paces(request)`` method; without one, one that is
    not the origin paces every request with a torrent."""
    if source.name == "origin":
        return False
    paces = getattr(source, "paces", None)
    return paces(request) if paces is not None else request.torrent is not None


class Cancel(Protocol):
    """Set when a fetch is to stop: a ``threading.Event``, or a ``multiprocessing`` one for
    fetches in other processes."""

    def is_set(self) -> bool: ...


class SourceProgress:
    """What a source tells while it fetches one file; stops it when the run is cancelled.

    ``progress(n)`` counts ``n`` bytes under the source's name, ``progress(n, "peers")``
    under a kind of its choosing; ``progress.peers(k)`` says how many peers serve it.
    """

    def __init__(
        self, request: FileRequest, display: FetchProgress, cancel: Cancel, kind: str
    ) -> None:
        self.request = request
        self.display = display
        self.cancel = cancel
        self.kind = kind
        self.on_first: Callable[[], None] | None = None  # told of the first bytes, once

    def __call__(self, n: int, kind: str | None = None) -> None:
        if self.cancel.is_set():
            raise _Cancelled
        if self.on_first is not None:
            first, self.on_first = self.on_first, None
            first()
        self.display.advance(self.request, n, kind or self.kind)

    def peers(self, count: int) -> None:
        self.display.peers(self.request, count)


class FetchProgress(Protocol):
    """What a progress display is told; called from the fetcher's worker threads."""

    def expect(self, requests: Sequence[FileRequest]) -> None:
        """The files about to be downloaded (not the cache's), before any starts."""

    def start(self, request: FileRequest, total: int | None) -> None: ...

    def advance(self, request: FileRequest, n: int, source: str) -> None: ...

    def peers(self, request: FileRequest, count: int) -> None: ...

    def finish(self, result: FetchResult) -> None: ...


class HttpSource:
    """The origin: the file's URL over HTTP(S), resumable, retried (torrip.transport.http)."""

    name = "origin"

    def __init__(self, client: httpx.Client, *, retries: int = 3, backoff: float = 0.5) -> None:
        self.client = client
        self.retries = retries
        self.backoff = backoff

    def fetch(self, request: FileRequest, dest: Path, progress: SourceProgress) -> Received | None:
        if urlsplit(request.url).scheme not in ("http", "https"):
            return None
        received, sha256 = download(
            self.client,
            request.url,
            dest,
            expected_size=request.size,
            on_bytes=progress,
            retries=self.retries,
            backoff=self.backoff,
        )
        return Received(received, sha256)


class _Cancelled(Exception):
    """Another file failed; this one stops (its partial bytes stay for a later resume)."""


class Fetcher(Closing):
    """Fetches files into the cache (or a private temporary folder when ``cache`` is None).

    Without a cache, result paths live until ``close`` (or the end of a ``with`` block).
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client,
        cache: DistributionCache | None,
        sources: Sequence[Source] | None = None,
        *,
        log: Log = _ignore,
    ) -> None:
        self.settings = settings
        self.client = client
        self.cache = cache
        self.log = log
        chosen = list(sources or ())
        if not any(source.name == "origin" for source in chosen):
            chosen.append(HttpSource(client, retries=settings.retries))
        self.sources: tuple[Source, ...] = tuple(chosen)
        self._temp: Path | None = None
        self._temp_lock = threading.Lock()  # worker threads create it: one folder, not two
        self._slots: dict[str, Width] = {}  # fetch_one's, per host
        self._slots_lock = threading.Lock()

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    # -- fetching ---------------------------------------------------------------------

    def fetch_one(self, request: FileRequest, cancel: Cancel) -> FetchResult:
        """One file, fetched in this thread (from the cache if there), shown nowhere; the
        origin is asked within its host's width, shared by every call. Setting ``cancel``
        stops it (the partial bytes stay for a later resume)."""
        with self._slots_lock:
            slot = self._slots.get(request.host)
            if slot is None:
                slot = self._slots[request.host] = Width(NEAR_DOWNLOADS, NEAR_DOWNLOADS)
        return self._fetch_one(request, slot, cancel, NullProgress())

    def fetch_all(
        self,
        requests: Sequence[FileRequest],
        progress: FetchProgress | None = None,
        *,
        on_fetched: Callable[[FetchResult], None] | None = None,
        early: Mapping[tuple[str, str], Future[FetchResult]] | None = None,
    ) -> list[FetchResult]:
        """Fetch every file, in parallel; results in the order of ``requests``.

        Requests for the same file are fetched once. The first error (a hash or
        size mismatch, an HTTP status, the network) stops the other downloads,
        lets them end cleanly, and is raised: no results are returned then.
        ``on_fetched(result)`` is called as soon as each distinct file is verified (from
        a worker thread; from this one for files the cache holds), so work on it can start
        while others download; it must be quick and must not raise.

        ``early``: fetches under way elsewhere (by ``fetch_key``), whose results stand for
        these files; one that failed in any way is fetched again here, and fails with its
        own error.
        """
        shown: FetchProgress = progress if progress is not None else NullProgress()
        groups: dict[tuple[str, str], list[int]] = {}
        for position, request in enumerate(requests):
            groups.setdefault(fetch_key(request), []).append(position)
        if not groups:
            return []
        # What the cache holds is looked up here, without a thread each (a warm install:
        # every file); the rest is fetched in parallel.
        fetched: dict[tuple[str, str], FetchResult] = {}
        under_way = {key: early[key] for key in groups if early and key in early}
        for key, positions in groups.items():
            if key in under_way:
                continue
            cached = self._from_cache(requests[positions[0]])
            if cached is not None:
                _show_cached(cached, shown)
                fetched[key] = cached
                if on_fetched is not None:
                    on_fetched(cached)
        missing = {
            key: positions
            for key, positions in groups.items()
            if key not in fetched and key not in under_way
        }
        if missing or under_way:
            shown.expect([requests[groups[key][0]] for key in [*missing, *under_way]])
        for future in under_way.values():  # shown as each ends (its bytes at once)
            future.add_done_callback(partial(_show_early, shown))
        if missing:
            self._fetch_missing(requests, missing, fetched, shown, on_fetched)
        failed = {}
        for key, future in under_way.items():
            try:
                fetched[key] = result = future.result()
            except Exception:  # fetched again below, which raises its own error
                failed[key] = groups[key]
                continue
            if on_fetched is not None:
                on_fetched(result)
        if failed:  # expected already
            self._fetch_missing(requests, failed, fetched, shown, on_fetched)
        results: list[FetchResult | None] = [None] * len(requests)
        for key, positions in groups.items():
            first = fetched[key]
            results[positions[0]] = first
            for position in positions[1:]:
                # The same file again: its bytes are those just fetched, no new transfer.
                again = first._replace(
                    request=requests[position],
                    source="cache",
                    bytes=_count({"cache": first.path.stat().st_size}),
                )
                shown.finish(again)
                results[position] = again
        return [result for result in results if result is not None]

    def _fetch_missing(
        self,
        requests: Sequence[FileRequest],
        groups: dict[tuple[str, str], list[int]],
        fetched: dict[tuple[str, str], FetchResult],
        shown: FetchProgress,
        on_fetched: Callable[[FetchResult], None] | None,
    ) -> None:
        hosts = {requests[positions[0]].host for positions in groups.values()}
        per_host = max(1, self.settings.max_downloads_per_host)
        # Completed downloads, and (host, extra) when a host's width widened.
        events: queue.SimpleQueue[Future[FetchResult] | tuple[str, int]] = queue.SimpleQueue()
        slots = {
            host: Width(NEAR_DOWNLOADS, per_host, on_widen=partial(self._widened, host, events))
            for host in hosts
        }
        # A download through a swarm holds no HTTP slot and paces itself: it gets a worker
        # of its own, or files over HTTP would wait for the swarm's largest downloads.
        # Only what a swarm will take: a file it hands to HTTP at once (too small, no way
        # to find peers) waits its turn, the largest first, like any other (a loopback
        # mirror whose 35 files all had torrents: 28 threads started, one per file, each
        # start waiting on the GIL, and the largest files queued behind the smallest).
        paced = {
            key
            for key, positions in groups.items()
            if any(_paces(source, requests[positions[0]]) for source in self.sources)
        }
        # The others are handed to a thread only as their host's width lets them run, the
        # largest first (the longest downloads, and the longest unpacking after them, start
        # earliest), and to a pool with no more threads than may run: a thread waiting at
        # the gate still costs (a loopback mirror's 91 files, 2 at a time from 8 threads:
        # 7,500 context switches, 0.23 s of CPU; from 2 threads 3,000, 0.21 s). The threads
        # a host gets when it turns out far are in a pool of their own.
        waiting: dict[str, collections.deque[tuple[str, str]]] = {
            host: collections.deque() for host in hosts
        }
        near = sum(slot.near for slot in slots.values()) + len(paced)
        cancel = threading.Event()
        with contextlib.ExitStack() as pools:
            narrow = pools.enter_context(
                ThreadPoolExecutor(near, thread_name_prefix="torrip-fetch")
            )
            large = pools.enter_context(
                ThreadPoolExecutor(LARGE_AT_ONCE, thread_name_prefix="torrip-fetch-large")
            )
            wide: list[ThreadPoolExecutor] = []  # made when a host widens
            futures: dict[Future[FetchResult], tuple[tuple[str, str], ThreadPoolExecutor]] = {}

            def start(key: tuple[str, str], pool: ThreadPoolExecutor) -> None:
                request = requests[groups[key][0]]
                runner = large if self._large_over_http(request) else pool
                future = runner.submit(self._fetch_one, request, slots[request.host], cancel, shown)
                if on_fetched is not None:
                    future.add_done_callback(partial(_call_if_fetched, on_fetched))
                future.add_done_callback(events.put)
                futures[future] = key, pool

            def start_next(host: str, pool: ThreadPoolExecutor, count: int = 1) -> None:
                for _ in range(min(count, len(waiting[host]))):
                    start(waiting[host].popleft(), pool)

            def widened(host: str, extra: int) -> None:
                if not wide:
                    more = min(_MAX_WORKERS, sum(s.far - s.near for s in slots.values()))
                    far = ThreadPoolExecutor(max(1, more), thread_name_prefix="torrip-fetch-far")
                    wide.append(pools.enter_context(far))
                start_next(host, wide[0], extra)

            for key, positions in sorted(groups.items(), key=_largest_first(requests)):
                if key in paced:
                    start(key, narrow)
                else:
                    waiting[requests[positions[0]].host].append(key)
            for host, slot in slots.items():
                start_next(host, narrow, slot.near)
            try:
                for _ in range(len(groups)):
                    event = events.get()
                    while isinstance(event, tuple):  # a host widened: more of its files go
                        widened(*event)
                        event = events.get()
                    key, pool = futures[event]
                    fetched[key] = event.result()
                    if key not in paced:  # it held an HTTP slot
                        start_next(requests[groups[key][0]].host, pool)
            except BaseException:
                cancel.set()
                for future in futures:
                    future.cancel()
                raise  # leaving the block waits for running downloads to stop

    def _widened(
        self,
        host: str,
        events: queue.SimpleQueue[Future[FetchResult] | tuple[str, int]],
        waited: float,
        extra: int,
    ) -> None:
        self.log(f"{host} {waited * 1000:.0f} ms away: {extra} more downloads at once")
        events.put((host, extra))

    def _large_over_http(self, request: FileRequest) -> bool:
        """A file of LARGE_DOWNLOAD bytes or more that no source but the origin will serve."""
        if (request.size or 0) < LARGE_DOWNLOAD:
            return False
        return request.torrent is None or all(s.name == "origin" for s in self.sources)

    def _fetch_one(
        self,
        request: FileRequest,
        slot: Width,
        cancel: Cancel,
        progress: FetchProgress,
    ) -> FetchResult:
        if cancel.is_set():
            raise _Cancelled
        result = self._from_cache(request)
        if result is None:
            local = file_url_path(request.url)
            if local is not None:
                result = self._from_local_file(request, local, progress)
            else:
                with self._download_lock(request):
                    if cancel.is_set():
                        raise _Cancelled
                    # Another thread or process may have fetched it while we waited.
                    result = self._from_cache(request)
                    if result is None:
                        result = self._from_sources(request, slot, cancel, progress)
        if result.source == "cache":
            _show_cached(result, progress)
        else:
            progress.finish(result)
        return result

    def _from_cache(self, request: FileRequest) -> FetchResult | None:
        path = cached_path(request, self.cache)
        if path is None:
            return None
        size = path.stat().st_size
        if request.size is not None and size != request.size:
            # The cache holds this sha256 with another size: the index contradicts itself.
            raise SizeMismatchError(request.filename, request.url, request.size, size)
        sha256 = request.sha256
        assert sha256 is not None  # cached_path found it under this key
        return FetchResult(request, path, "cache", _count({"cache": size}), sha256, True)

    def _download_lock(self, request: FileRequest) -> contextlib.AbstractContextManager[None]:
        key = _cache_key(request)
        if self.cache is None or key is None:
            return contextlib.nullcontext()
        return self.cache.lock(key)

    def _from_sources(
        self,
        request: FileRequest,
        slot: Width,
        cancel: Cancel,
        progress: FetchProgress,
    ) -> FetchResult:
        progress.start(request, request.size)
        received: dict[str, int] = {}
        declined: list[Source] = []  # sources that handed the file over for want of peers
        for source in self.sources:
            try:
                result = self._attempt(
                    request, source, source.fetch, slot, cancel, progress, received
                )
            except TorripError as error:
                if source.name != "origin":
                    continue  # logged; the next source
                if isinstance(error, (HashMismatchError, SizeMismatchError)) or not declined:
                    raise
                # The origin cannot serve the file (stopped, gone from the index): peers
                # that were slow to show up are its only hope, given all the time they need.
                self.log(f"{request.filename}: the origin failed ({error}); waiting for peers")
                for waiting in declined:
                    fetch = waiting.fetch_waiting_for_peers  # type: ignore[attr-defined]
                    with contextlib.suppress(TorripError):  # logged: the origin's error is raised
                        result = self._attempt(
                            request, waiting, fetch, slot, cancel, progress, received
                        )
                        if result is not None:
                            return result
                raise
            if result is not None:
                return result
            handed_over = getattr(source, "handed_over", None)
            if handed_over is not None and handed_over(request):
                declined.append(source)
        raise TorripError(
            f"no source can fetch {request.url}",
            hint="Use an http(s) or file URL, or a --find-links folder.",
        )

    def _attempt(
        self,
        request: FileRequest,
        source: Source,
        fetch: Callable[[FileRequest, Path, SourceProgress], FetchedBytes],
        slot: Width,
        cancel: Cancel,
        progress: FetchProgress,
        received: dict[str, int],
    ) -> FetchResult | None:
        """The file from ``source`` (by its ``fetch``), verified; None if it has no way
        to serve it. Errors of the origin are raised; those of others, logged and raised
        too, after their bytes are dropped."""
        is_origin = source.name == "origin"
        with self._partial(request, source) as dest:
            resumed = dest.stat().st_size if dest.exists() else 0
            if resumed:
                progress.advance(request, resumed, "partial")
            on_bytes = SourceProgress(request, progress, cancel, source.name)
            try:
                # The per-host bound is about HTTP connections; other sources pace themselves.
                with slot if is_origin else contextlib.nullcontext():
                    if is_origin and not slot.measured:  # until the first byte: how far
                        on_bytes.on_first = partial(slot.observe_since, Stopwatch())
                    got = fetch(request, dest, on_bytes)
                if got is None:
                    return None
                streamed = None
                if isinstance(got, Received):
                    got, streamed = got
                _add_counts(received, source.name, got)
                sha256 = self._verify(request, dest, streamed)
            except TorripError as error:
                if isinstance(error, HashMismatchError):
                    discard_partial(dest)  # never keep bytes that failed the check
                    distrust = getattr(source, "distrust", None)
                    if distrust is not None:
                        distrust(request)
                if not is_origin:
                    self.log(f"{request.filename}: {source.name} failed ({error}); trying the next")
                    discard_partial(dest)
                raise
            path = self._keep(dest, sha256, request.filename)
        keep_torrent = getattr(source, "keep_torrent", None)
        if keep_torrent is not None and self.cache is not None:
            keep_torrent(request, sha256)
        kind: SourceName = "origin" if is_origin else "swarm"
        verified = request.sha256 is not None
        return FetchResult(request, path, kind, _count(received), sha256, verified)

    @contextlib.contextmanager
    def _partial(self, request: FileRequest, source: Source) -> Iterator[Path]:
        """Where ``source`` writes: kept for resume (under the cache's lock) for the origin.

        Elsewhere a fresh file, removed afterwards: without the cache's per-file lock,
        two downloads of the same content must not share a path.
        """
        key = _cache_key(request)
        if self.cache is not None and key is not None and source.name == "origin":
            yield self.cache.partial_path(key)
            return
        folder = self.cache.temp_dir() if self.cache is not None else self._temp_dir()
        path = self._temp_file(folder, source.name)
        try:
            yield path
        finally:
            discard_partial(path)  # not resumable: never left behind

    def _verify(self, request: FileRequest, path: Path, streamed: str | None = None) -> str:
        """``streamed``: the sha256 the source computed as it wrote ``path``."""
        size = path.stat().st_size
        if request.size is not None and size != request.size:
            raise SizeMismatchError(request.filename, request.url, request.size, size)
        actual = streamed if streamed is not None else sha256_of(path)
        if request.sha256 is not None and actual != request.sha256:
            raise HashMismatchError(request.filename, request.url, "sha256", request.sha256, actual)
        return actual

    def _keep(self, dest: Path, sha256: str, filename: str) -> Path:
        """Publish verified bytes: into the cache, or a private folder without one."""
        resume_sidecar(dest).unlink(missing_ok=True)
        if self.cache is not None:
            return self.cache.add_file(dest, sha256, filename)
        folder = Path(tempfile.mkdtemp(dir=self._temp_dir(), prefix=sha256[:16] + "-"))
        path = folder / filename
        dest.replace(path)
        return path

    def _from_local_file(
        self, request: FileRequest, local: Path, progress: FetchProgress
    ) -> FetchResult:
        progress.start(request, request.size)
        try:
            if self.cache is None:
                path = local
                sha256 = self._verify(request, local)
            else:
                # A copy, not a link: the user may edit the original; the cache must not change.
                copy = self._temp_file(self.cache.temp_dir(), "local")
                try:
                    shutil.copyfile(local, copy)
                    sha256 = self._verify(request, copy)  # the bytes that enter the cache
                    path = self.cache.add_file(copy, sha256, request.filename)
                finally:
                    copy.unlink(missing_ok=True)
        except OSError as exc:
            raise TorripError(
                f"cannot read {local}: {exc.strerror or exc}",
                hint="Check the --find-links folder or the file's path.",
            ) from None
        size = path.stat().st_size
        progress.advance(request, size, "origin")
        verified = request.sha256 is not None
        return FetchResult(request, path, "origin", _count({"origin": size}), sha256, verified)

    @staticmethod
    def _temp_file(folder: Path, prefix: str) -> Path:
        """A new empty file in ``folder``, its name ours alone."""
        handle, name = tempfile.mkstemp(dir=folder, prefix=f"{prefix}-", suffix=".part")
        os.close(handle)
        return Path(name)

    def _temp_dir(self) -> Path:
        with self._temp_lock:
            if self._temp is None:
                self._temp = Path(tempfile.mkdtemp(prefix="torrip-fetch-"))
            return self._temp


def _show_cached(result: FetchResult, progress: FetchProgress) -> None:
    progress.start(result.request, result.bytes["cache"])
    progress.advance(result.request, result.bytes["cache"], "cache")
    progress.finish(result)


def _show_early(progress: FetchProgress, future: Future[FetchResult]) -> None:
    """A fetch made elsewhere, shown whole once it is done (one that failed is fetched
    again, and shown then)."""
    if future.cancelled() or future.exception() is not None:
        return
    result = future.result()
    if result.source == "cache":
        _show_cached(result, progress)
        return
    progress.start(result.request, result.request.size)
    for source, count in result.bytes.items():
        if count:
            progress.advance(result.request, count, source)
    progress.finish(result)


def _call_if_fetched(callback: Callable[[FetchResult], None], future: Future[FetchResult]) -> None:
    if not future.cancelled() and future.exception() is None:
        callback(future.result())


def cached_path(request: FileRequest, cache: DistributionCache | None) -> Path | None:
    """Where ``cache`` holds the file ``request`` asks for, if it does (a lookup by its
    sha256, checked by size)."""
    key = _cache_key(request)
    if cache is None or key is None:
        return None
    return cache.get(key, request.filename, size=request.size)


def _cache_key(request: FileRequest) -> str | None:
    """The sha256 to file the request under; None if absent or malformed (it will not match)."""
    sha256 = request.sha256
    return sha256 if sha256 is not None and _SHA256.fullmatch(sha256) else None


def _largest_first(
    requests: Sequence[FileRequest],
) -> Callable[[tuple[tuple[str, str], list[int]]], int]:
    def key(group: tuple[tuple[str, str], list[int]]) -> int:
        return -(requests[group[1][0]].size or 0)

    return key


def fetch_key(request: FileRequest) -> tuple[str, str]:
    """Requests for the same bytes under the same name are one fetch (and one key in
    ``fetch_all``'s ``early``)."""
    return (request.sha256 or request.url, request.filename)


def _count(counts: Mapping[str, int]) -> dict[str, int]:
    return {key: counts.get(key, 0) for key in _BYTES_KEYS}


def _add_counts(total: dict[str, int], source_name: str, got: int | Mapping[str, int]) -> None:
    if isinstance(got, int):
        got = {"origin" if source_name == "origin" else "peers": got}
    for key, n in got.items():
        total[key] = total.get(key, 0) + n

"""Wheels fetched and unpacked while the resolver still works.

A cold install has three phases, and each leaves a core idle: the resolver asks the index
one request at a time, then the wheels download, then the last of them unpack. Yet once
the resolver pins a candidate, its wheel is nearly always the one installed (it is taken
back only when backtracking, which is rare). So a ``Prefetch`` has each wheel downloaded
and unpacked as it is pinned, by the worker processes the install unpacks with, while the
resolver goes on; the install then finds them done (``execute_plan``'s ``prefetch``).

Most pins come late, in a burst once the metadata they need is in: the web set's first
at a fifth of its resolution, 26 of its 35 in the last tenth. Earlier still, the
resolver's speculation has read the metadata of the best candidate of each requirement it
met, which the resolver then nearly always pins: ``likely`` starts those wheels at once,
up to ``LIKELY_MAX_BYTES`` each (a conflict found later may pick another version).

The workers do the downloading too: in this process, downloads would take the resolver's
turns on the GIL (jupyterlab's resolution from a loopback mirror took 0.38-0.48 s with
downloads beside it, against 0.24 s alone). One worker at a time does, so that the
resolver keeps a core of its own; all of them, once it is done. The install waits for
them (``Fetcher.fetch_all``'s ``early``) and fetches the rest as usual.

Only what the install would fetch over HTTP from a host near by (this machine, a private
network: ``near_host``) is fetched early: a far host's files come many at once over this
process, and files for which the user has a way to find peers (trackers, the DHT, LAN
discovery, a running agent) wait for the swarm. A file taken back by backtracking was
downloaded for nothing; it stays in the cache.

The workers are forked when the Prefetch is made, which must be before any other thread
starts (``forked_workers``). A warm install gains nothing from them: ``start_prefetch``
makes one only where the index's pages are not in the cache.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from torrip.cache import DistributionCache
from torrip.closing import Closing
from torrip.config import Settings
from torrip.http import make_client
from torrip.install.unpacked import (
    FORK_MIN_BYTES,
    ForkedWorkers,
    LargestFirst,
    UnpackedWheel,
    Unpacker,
    fork_ahead,
    forked_workers,
    unpack_wheel,
    unpacked_store,
)
from torrip.resolver.models import Candidate
from torrip.transport.fetch import (
    Cancel,
    Fetcher,
    FetchResult,
    FileRequest,
    cached_path,
    fetch_key,
)

if TYPE_CHECKING:
    import httpx

    from torrip.cache import UnpackedCache

# The largest wheel fetched before its candidate is pinned (``Prefetch.likely``): one a
# conflict found later leaves unused costs its download, and such a file as a CUDA build
# of torch is pinned before it starts.
LIKELY_MAX_BYTES = 64 * 1024 * 1024
# Jobs handed to each worker at once (``WorkerFetches``).
_JOBS_PER_WORKER = 2

__all__ = [
    "LIKELY_MAX_BYTES",
    "OverHttp",
    "Prefetch",
    "WorkerFetches",
    "fetching_workers",
    "fork_workers_ahead",
    "near_host",
    "start_prefetch",
]


def start_prefetch(
    settings: Settings, names: Sequence[str], *, bars: bool = False
) -> Prefetch | None:
    """A Prefetch for an install of ``names`` (what the command line asks for; may be
    empty), or None where it would not pay: the cache off, another system than Linux, one
    core, no index near (``near_host``), the index's page of the first name fresh in the
    cache (a warm install; with no name, the page cache there at all), credentials from a
    keyring, or the workers could not be forked. ``bars``: the install's display will give
    large files a bar (they are left to it: ``OverHttp``). Call it before starting any
    thread."""
    if settings.no_cache or settings.offline or settings.torrent_index:
        return None  # a torrent index gives torrents after resolution: wait for them
    if settings.keyring_provider != "disabled":
        return None  # each worker would ask the keyring again (it may prompt)
    if not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2:
        return None
    if not any(near_host(url) for url in settings.index_urls):
        return None  # PyPI's files come many at once over this process (``near_host``)
    from torrip.index.client import pages_are_fresh

    if pages_are_fresh(settings, names[0]) if names else settings.http_cache_dir.is_dir():
        return None
    prefetch = Prefetch(settings, bars=bars)
    if prefetch.workers is None:
        prefetch.close()
        return None
    return prefetch


class Prefetch(Closing):
    """Fetches and unpacks the wheels of pinned candidates in the background.

    ``pinned`` (the resolver's reporter calls it) queues a candidate's wheel, the largest
    first; ``stop`` ends the queueing; ``fetches`` are what was started, by ``fetch_key``,
    for ``Fetcher.fetch_all``; ``cancel`` stops what is still running. ``store``,
    ``workers``, ``unpacker`` and ``http`` are the install's to use; ``close`` ends them.
    """

    def __init__(self, settings: Settings, *, bars: bool = False) -> None:
        self.settings = settings
        self.cache = DistributionCache(settings.cache_dir)
        self._lock = threading.Lock()
        self._stopped = False
        with contextlib.ExitStack() as stack:
            self.store: UnpackedCache = stack.enter_context(unpacked_store(settings.cache_dir))
            # Forked first: every thread starts after.
            self.workers = stack.enter_context(fetching_workers(FORK_MIN_BYTES))
            self.unpacker = stack.enter_context(Unpacker(self.store, forked=self.workers))
            self.http: httpx.Client = stack.enter_context(make_client(settings))
            self._over_http = OverHttp(settings, self.http, bars=bars)
            self._jobs = None
            if self.workers is not None:
                self._jobs = stack.enter_context(
                    WorkerFetches(settings, self.store, self.workers, self.unpacker)
                )
                self._jobs.limit(1)  # while the resolver works: it keeps a core of its own
            self._stack = stack.pop_all()

    @property
    def jobs(self) -> WorkerFetches | None:
        """Its workers' fetches: the install adds the rest of the files to them."""
        return self._jobs

    @property
    def fetches(self) -> dict[tuple[str, str], Future[FetchResult]]:
        return self._jobs.fetches if self._jobs is not None else {}

    def pinned(self, candidate: object) -> None:
        """The resolver pinned ``candidate``: fetch its wheel, if it comes from an index."""
        if self._jobs is None or not isinstance(candidate, Candidate):
            return
        link = candidate.link
        if candidate.source != "index" or link is None or link.sha256 is None:
            return
        request = FileRequest.from_link(link)
        if fetch_key(request) in self._jobs.fetches or not self._over_http(request):
            return
        if cached_path(request, self.cache) is not None:
            return
        with self._lock:
            if not self._stopped:
                self._jobs.submit(request)

    def likely(self, candidate: Candidate) -> None:
        """The resolver will likely pin ``candidate`` (``Provider``'s ``on_likely``): fetch
        its wheel now, if small enough to risk (a conflict may pick another version, whose
        file is then fetched as well)."""
        link = candidate.link
        if link is not None and link.size is not None and link.size <= LIKELY_MAX_BYTES:
            self.pinned(candidate)

    def stop(self, keep: Collection[tuple[str, str]] | None = None) -> None:
        """No more fetches: the install takes over, and every worker may work. ``keep``:
        the ``fetch_key`` of each file the install needs; the others' fetches that have
        not started are dropped."""
        with self._lock:
            self._stopped = True
        if self._jobs is not None:
            if keep is not None:
                self._jobs.drop_except(keep)
            self._jobs.limit(None)

    def cancel(self) -> None:
        """Stop what is not done (``WorkerFetches.cancel``)."""
        self.stop()
        if self._jobs is not None:
            self._jobs.cancel()

    def close(self) -> None:
        self.cancel()
        self._stack.close()


class OverHttp:
    """Whether the workers may fetch a file: one the install fetches over HTTP (what the
    swarm does not take on itself: ``SwarmSource.paces``), from a host on this machine
    or its network (``near_host``), and with ``bars`` (a live display, which gives each
    large file a bar showing its bytes as they come), not a large one."""

    def __init__(self, settings: Settings, http: httpx.Client, *, bars: bool = False) -> None:
        from torrip.transport.swarm import SwarmSource

        self.swarm = SwarmSource(settings, http)  # asked only: it starts nothing
        self.bars = bars

    def __call__(self, request: FileRequest) -> bool:
        from torrip.transport.progress import LARGE_FILE

        if not request.url.startswith(("https:", "http:")) or not near_host(request.url):
            return False
        if self.bars and (request.size is None or request.size > LARGE_FILE):
            return False
        return not self.swarm.paces(request)


def near_host(url: str) -> bool:
    """Whether ``url``'s host is this machine or an address of a private network. A worker
    fetches one file at a time: enough where each request costs only CPU, not for a far
    host (PyPI's), which this process's fetcher asks many files of at once
    (``max-downloads-per-host``) once it sees the latency. A mirror named by a host name
    is not told apart from a far host: its files come as before, over this process."""
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


@contextlib.contextmanager
def fetching_workers(pending: int) -> Iterator[ForkedWorkers | None]:
    """``forked_workers`` that can fetch too (``WorkerFetches``): the flag that stops their
    downloads is made first, for them to inherit."""
    with forked_workers(pending, before_fork=_new_flag) as workers:
        yield workers


def fork_workers_ahead(close: Iterable[int] = ()) -> bool:
    """``fork_ahead`` for workers that can fetch too, as ``fetching_workers`` forks them."""
    return fork_ahead(before_fork=_new_flag, close=close)


def _new_flag() -> None:
    import multiprocessing  # imported by forking the workers in any case

    global _cancelled
    _cancelled = multiprocessing.get_context("fork").Event()


class WorkerFetches(Closing):
    """Files fetched, then unpacked, by worker processes from ``fetching_workers``, the
    largest first: no download takes turns on this process's GIL (with a resolver beside
    them, or the unpacking's hand-offs). ``fetches`` are the jobs, by ``fetch_key``, for
    ``Fetcher.fetch_all``; ``unpacker`` is given each one's unpacked wheel."""

    def __init__(
        self, settings: Settings, store: UnpackedCache, workers: ForkedWorkers, unpacker: Unpacker
    ) -> None:
        self.settings = settings
        self.store = store
        self.workers = workers
        self.unpacker = unpacker
        self.fetches: dict[tuple[str, str], Future[FetchResult]] = {}
        self._cancelled = _cancelled
        # Two jobs per worker handed over at once: a worker that ends one finds the next
        # already waiting, instead of idling while its result comes back here and the
        # next job goes out (0.5-1 ms a job: 10 ms of the web set's 35 wheels, cold).
        self._queue = LargestFirst(_JOBS_PER_WORKER * workers.count, "torrip-fetch-worker")

    def submit(self, request: FileRequest) -> None:
        key = fetch_key(request)
        if key not in self.fetches:
            self.fetches[key] = self._queue.submit(request.size or 0, partial(self._run, request))

    def limit(self, jobs: int | None) -> None:
        """At most ``jobs`` handed to the workers at once from now on (None: two per
        worker; one in all keeps the second worker idle)."""
        self._queue.limit(jobs)

    def drop_except(self, keep: Collection[tuple[str, str]]) -> None:
        """Cancel the fetches not started of files not in ``keep`` (by ``fetch_key``)."""
        for key in [key for key in self.fetches if key not in keep]:
            if self.fetches[key].cancel():
                del self.fetches[key]

    def cancel(self) -> None:
        """Stop what is not done (files taken back by backtracking), and wait for it: a
        download stops at once (its bytes stay for a resume), an unpacking ends first."""
        self._cancelled.set()
        self._queue.shutdown()

    def close(self) -> None:
        self.cancel()

    def _run(self, request: FileRequest) -> FetchResult:
        job = self.workers.submit(_fetch_and_unpack, self.settings, self.store, request)
        result, unpacked = job.result()
        self.unpacker.adopt(unpacked)
        return result


# In a worker process: its fetcher, made at its first download and kept (with its
# connections) for the next ones under the same settings.
_worker_fetcher: Fetcher | None = None


class _Flag(Cancel, Protocol):
    def set(self) -> None: ...


# Set to stop the workers' downloads; made by ``fetching_workers`` before they fork.
_cancelled: _Flag = threading.Event()


def _fetch_and_unpack(
    settings: Settings, store: UnpackedCache, request: FileRequest
) -> tuple[FetchResult, UnpackedWheel]:
    """In a worker: fetch ``request`` (verified, into the cache), then unpack it."""
    global _worker_fetcher
    if _worker_fetcher is None or _worker_fetcher.settings != settings:
        cache = DistributionCache(settings.cache_dir)
        _worker_fetcher = Fetcher(settings, make_client(settings), cache)
    result = _worker_fetcher.fetch_one(request, _cancelled)
    return result, unpack_wheel(store, result.path, result.sha256)

"""Wheels fetched and unpacked while the resolver still works.

A cold install has three phases, and each leaves a core idle: the resolver asks the index
one request at a time, then the wheels download, then the last of them unpack. Yet once
the resolver pins a candidate, its wheel is nearly always the one installed (it is taken
back only when backtracking, which is rare). So a ``Prefetch`` has each wheel downloaded
and unpacked as it is pinned, by the worker processes the install unpacks with, while the
resolver goes on; the install then finds them done (``execute_plan``'s ``prefetch``).

The workers do the downloading too: in this process, downloads would take the resolver's
turns on the GIL (jupyterlab's resolution from a loopback mirror took 0.38-0.48 s with
downloads beside it, against 0.24 s alone). One worker at a time does, so that the
resolver keeps a core of its own; all of them, once it is done. The install waits for
them (``Fetcher.fetch_all``'s ``early``) and fetches the rest as usual.

Only what the install would fetch over HTTP is fetched early: files for which the user
has a way to find peers (trackers, the DHT, LAN discovery, a running agent) wait for the
swarm. A file taken back by backtracking was downloaded for nothing; it stays in the
cache.

The workers are forked when the Prefetch is made, which must be before any other thread
starts (``forked_workers``). A warm install gains nothing from them: ``start_prefetch``
makes one only where the index's pages are not in the cache.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING

from torrip.cache import DistributionCache
from torrip.closing import Closing
from torrip.config import Settings
from torrip.http import make_client
from torrip.install.unpacked import (
    FORK_MIN_BYTES,
    LargestFirst,
    UnpackedWheel,
    Unpacker,
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
    from torrip.install.unpacked import ForkedWorkers

__all__ = ["Prefetch", "start_prefetch"]


def start_prefetch(settings: Settings, names: Sequence[str]) -> Prefetch | None:
    """A Prefetch for an install of ``names`` (what the command line asks for; may be
    empty), or None where it would not pay: the cache off, another system than Linux, one
    core, the index's page of the first name fresh in the cache (a warm install; with no
    name, the page cache there at all), credentials from a keyring, or the workers could
    not be forked. Call it before starting any thread."""
    if settings.no_cache or settings.offline or settings.torrent_index:
        return None  # a torrent index gives torrents after resolution: wait for them
    if settings.keyring_provider != "disabled":
        return None  # each worker would ask the keyring again (it may prompt)
    if not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2:
        return None
    from torrip.index.client import pages_are_fresh

    if pages_are_fresh(settings, names[0]) if names else settings.http_cache_dir.is_dir():
        return None
    prefetch = Prefetch(settings)
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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = DistributionCache(settings.cache_dir)
        self.fetches: dict[tuple[str, str], Future[FetchResult]] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self._peers_findable: bool | None = None
        import multiprocessing  # imported by forking the workers in any case

        global _cancelled
        # Made before the workers are forked: they see it set, and stop downloading.
        _cancelled = self._cancelled = multiprocessing.get_context("fork").Event()
        with contextlib.ExitStack() as stack:
            self.store: UnpackedCache = stack.enter_context(unpacked_store(settings.cache_dir))
            # Forked first: every thread starts after.
            self.workers: ForkedWorkers | None = stack.enter_context(forked_workers(FORK_MIN_BYTES))
            self.unpacker = stack.enter_context(Unpacker(self.store, forked=self.workers))
            self.http: httpx.Client = stack.enter_context(make_client(settings))
            count = self.workers.count if self.workers is not None else 1
            self._queue = LargestFirst(count, "torrip-prefetch")
            self._queue.limit(1)  # while the resolver works: it keeps a core of its own
            stack.callback(self._queue.shutdown)
            self._stack = stack.pop_all()

    def pinned(self, candidate: object) -> None:
        """The resolver pinned ``candidate``: fetch its wheel, if it comes from an index."""
        if not isinstance(candidate, Candidate) or candidate.source != "index":
            return
        link = candidate.link
        if link is None or link.sha256 is None or not link.url.startswith(("https:", "http:")):
            return
        request = FileRequest.from_link(link)
        key = fetch_key(request)
        if key in self.fetches or cached_path(request, self.cache) is not None:
            return
        if not self._over_http(request):
            return  # the install's swarm takes it
        with self._lock:
            if self._stopped or key in self.fetches:
                return
            self.fetches[key] = self._queue.submit(request.size or 0, partial(self._fetch, request))

    def stop(self) -> None:
        """No more fetches: the install takes over."""
        with self._lock:
            self._stopped = True
        self._queue.limit(None)

    def cancel(self) -> None:
        """Stop what is not done (files taken back by backtracking), and wait for it: a
        download stops at once (its bytes stay for a resume), an unpacking ends first."""
        self.stop()
        self._cancelled.set()
        self._queue.shutdown()

    def close(self) -> None:
        self.cancel()
        self._stack.close()

    def _fetch(self, request: FileRequest) -> FetchResult:
        assert self.workers is not None
        job = self.workers.pool.submit(_fetch_and_unpack, self.settings, self.store, request)
        result, unpacked = job.result()
        self.unpacker.adopt(unpacked)
        return result

    def _over_http(self, request: FileRequest) -> bool:
        """Whether the install would fetch ``request`` over HTTP: no torrent, peer to peer
        off, a file too small for the swarm, or no way of the user's own to find peers
        (a torrent's own trackers are not asked then)."""
        from torrip.transport.swarm import SWARM_MIN_SIZE

        settings = self.settings
        if request.torrent is None or not settings.p2p or (request.size or 0) < SWARM_MIN_SIZE:
            return True
        if self._peers_findable is None:
            from torrip.agent.client import running_agent_peer

            self._peers_findable = bool(
                settings.trackers
                or settings.dht_bootstrap
                or settings.lan_discovery
                or running_agent_peer(settings)
            )
        return not self._peers_findable


# In a worker process: its fetcher, made at its first download, kept for its connections.
_worker_fetcher: Fetcher | None = None
# The Prefetch's, inherited by the workers it forks.
_cancelled: Cancel = threading.Event()


def _fetch_and_unpack(
    settings: Settings, store: UnpackedCache, request: FileRequest
) -> tuple[FetchResult, UnpackedWheel]:
    """In a worker: fetch ``request`` (verified, into the cache), then unpack it."""
    global _worker_fetcher
    if _worker_fetcher is None:
        cache = DistributionCache(settings.cache_dir)
        _worker_fetcher = Fetcher(settings, make_client(settings), cache)
    result = _worker_fetcher.fetch_one(request, _cancelled)
    return result, unpack_wheel(store, result.path, result.sha256)

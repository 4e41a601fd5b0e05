"""Execute a plan: fetch every file (verified), check it is what was resolved, install.

Each wheel is unpacked into the unpacked cache (``unpacked``) as soon as its download
is verified, while other files still download. Nothing touches the environment until
every file is fetched, verified and unpacked; the install itself (links from the
unpacked cache) is one transaction that rolls back on failure.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from torrip.cache import DistributionCache, sha256_of
from torrip.config import Settings
from torrip.credentials import without_credentials
from torrip.errors import ConfigError, MetadataError, UnsafeWheelError
from torrip.hashcheck import check_file_allowed
from torrip.http import make_client, prepare_tls
from torrip.install.placing import LINK_MODES, LinkMode
from torrip.install.prefetch import OverHttp, Prefetch, WorkerFetches, fetching_workers
from torrip.install.transaction import TransactionResult, WheelToInstall, install_transaction
from torrip.install.unpacked import (
    UnpackedWheel,
    Unpacker,
    to_unpack,
    unpacked_store,
    worth_processes,
)
from torrip.metadata import name_and_version, parse_metadata
from torrip.planner import PlannedInstall
from torrip.resolver.resolve import ResolvedDistribution
from torrip.transport.fetch import (
    Fetcher,
    FetchProgress,
    FetchResult,
    FileRequest,
    Source,
    cached_path,
    fetch_key,
)

__all__ = ["Execution", "execute_plan", "fetched_plan", "file_requests", "swarm_sources"]

if TYPE_CHECKING:
    import httpx

Log = Callable[[str], None]


class Execution(NamedTuple):
    fetched: tuple[FetchResult, ...]  # in the order of plan.install
    transaction: TransactionResult
    seconds: dict[str, float]

    def bytes_by_source(self) -> dict[str, int]:
        totals = {"cache": 0, "origin": 0, "peers": 0}
        for result in self.fetched:
            for source, count in result.bytes.items():
                totals[source] = totals.get(source, 0) + count
        return totals


def _check_resolved_metadata(
    dist: ResolvedDistribution, result: FetchResult, unpacked: UnpackedWheel
) -> None:
    """The wheel's own METADATA must say what resolution used (it may have come from a
    separate .metadata file or a range read, neither covered by the wheel's hash).

    Read from the unpacked wheel: the one .dist-info, checked against RECORD when unpacked.
    """
    metadata = unpacked.tree / unpacked.layout.dist_info / "METADATA"
    origin = result.request.filename
    try:
        data = metadata.read_bytes()
    except OSError as exc:
        raise MetadataError(f"{origin}: cannot read its METADATA ({exc.strerror or exc})") from None
    expected = dist.metadata
    if data == expected.raw:  # PEP 658: the .metadata file is the wheel's METADATA
        return
    if dist.candidate.source == "lock":  # a lock pins name and version, not dependencies
        name, version = name_and_version(data, origin)
        if (name, version) != (expected.name, expected.version):
            raise MetadataError(
                f"{origin}: its METADATA says {name} {version}, "
                f"but the lockfile lists it as {expected.name} {expected.version}",
                hint="The lockfile is inconsistent; write it again (torrip lock).",
            )
        return
    actual = parse_metadata(data, origin)
    if (actual.name, actual.version, sorted(map(str, actual.requires_dist))) != (
        expected.name,
        expected.version,
        sorted(map(str, expected.requires_dist)),
    ):
        raise MetadataError(
            f"{result.request.filename}: its METADATA differs from the metadata the index "
            "served for it, so the resolution cannot be trusted",
            hint="The index serves inconsistent metadata; report it to its maintainers.",
        )


def execute_plan(
    planned: PlannedInstall,
    *,
    progress: FetchProgress | None = None,
    progress_context: AbstractContextManager[object] | None = None,
    compile: bool = False,
    log: Log = lambda _: None,
    notice: Log = lambda _: None,
    prefetch: Prefetch | None = None,
) -> Execution:
    """``prefetch``: what fetched and unpacked wheels while the plan was made; its workers,
    client and store serve here too (it stays the caller's to close)."""
    settings = planned.settings
    plan = planned.plan
    link_mode = _link_mode(settings)  # a bad setting fails before any download
    started = time.perf_counter()
    requests = file_requests(planned)
    cache, to_swarm = _cache_and_swarm_requests(settings, requests)
    if prefetch is not None and prefetch.settings != settings:
        prefetch = None  # -r or -c files changed the settings: it fetched nothing
    with contextlib.ExitStack() as stack:
        jobs: WorkerFetches | None
        if prefetch is not None:
            prefetch.stop(keep={fetch_key(request) for request in requests})
            store, workers = prefetch.store, prefetch.workers
            unpacker, http, jobs = prefetch.unpacker, prefetch.http, prefetch.jobs
            if prefetch.fetches:
                log(f"{len(prefetch.fetches)} files fetched while resolving")
        else:
            store = stack.enter_context(
                unpacked_store(settings.cache_dir, no_cache=settings.no_cache)
            )
            # Before anything here starts a thread (downloads, libtorrent), which a fork
            # must not copy; the planner's threads have ended or are ending.
            workers = stack.enter_context(fetching_workers(to_unpack(store, _wheels(requests))))
            # So that its worker processes (if any) start while the files download.
            unpacker = stack.enter_context(
                Unpacker(
                    store,
                    processes=workers is None and worth_processes(store, _wheels(requests)),
                    forked=workers,
                )
            )
            http = stack.enter_context(make_client(settings))
            jobs = None
        # What comes over HTTP from a near host, the workers fetch and unpack; the swarm
        # keeps the rest, and this process the files a live display gives a bar of their own.
        for_workers = []
        if workers is not None and cache is not None:
            over_http = OverHttp(settings, http, bars=getattr(progress, "live", False))
            for_workers = [r for r in requests if over_http(r) and cached_path(r, cache) is None]
        if for_workers and jobs is None:
            assert workers is not None
            jobs = stack.enter_context(WorkerFetches(settings, store, workers, unpacker))
        if jobs is not None:
            for request in for_workers:
                jobs.submit(request)
            to_swarm = [r for r in to_swarm if fetch_key(r) not in jobs.fetches]
        swarm_lifetime = stack.enter_context(contextlib.ExitStack())
        fetcher = stack.enter_context(
            Fetcher(
                settings,
                http,
                cache,
                swarm_lifetime.enter_context(
                    swarm_sources(settings, http, cache, to_swarm, log=log, notice=notice)
                ),
                log=log,
            )
        )
        if workers is not None:
            log(f"unpacking in {workers.count} forked worker processes")
        elif unpacker.uses_processes:
            log("unpacking in worker processes (much to unpack, more than one core)")

        def unpack(result: FetchResult) -> None:
            unpacker.submit(result.path, result.sha256)

        with progress_context or contextlib.nullcontext():
            fetched = fetcher.fetch_all(
                requests,
                progress,
                on_fetched=unpack,
                early=jobs.fetches if jobs is not None else None,
            )
        if jobs is not None:
            jobs.cancel()  # what backtracking took back; its threads end
        # The swarm is done: its session closes (telling trackers it left takes up to a
        # second) while the wheels are checked and installed. Without one, no thread: the
        # links are shared with a fork only while no other thread runs.
        if to_swarm:
            swarm = swarm_lifetime.pop_all()
            closing = threading.Thread(target=swarm.close, name="torrip-swarm-close")
            closing.start()
            swarm_lifetime.callback(closing.join)  # and is waited for, whatever happens next
        downloaded = time.perf_counter()
        _check_allowed(planned, fetched)
        wheels = []
        for position, (dist, result) in enumerate(zip(plan.install, fetched, strict=True)):
            try:
                unpacked = unpacker.result(result.path, result.sha256)  # UnsafeWheelError
            except UnsafeWheelError:
                if cache is None or not _damaged_in_cache(result):
                    raise
                # The cache's copy changed since it was verified (a disk error, an edit):
                # the wheel is not to blame, and the next install would fail the same way.
                notice(
                    f"{result.request.filename}: the cached copy is damaged (its sha256 "
                    "changed); fetching it again"
                )
                result = fetched[position] = _fetch_again(result, settings, http, cache, log)
                unpacker.forget(result.sha256)
                unpacked = unpacker.result(result.path, result.sha256)
            wheels.append(_to_install(dist, result, unpacked))
        # Its threads end (and the forked workers), so that a fork can make the links.
        unpacker.close()
        if workers is not None:
            workers.pool.shutdown(wait=True)
        checked = time.perf_counter()
        transaction = install_transaction(
            planned.environment,
            wheels,
            plan.remove,
            compile=compile,
            link_mode=link_mode,
        )
    finished = time.perf_counter()
    return Execution(
        fetched=tuple(fetched),
        transaction=transaction,
        # "unpack": what unpacking took beyond the downloads it overlapped with
        seconds={
            "fetch": downloaded - started,
            "unpack": checked - downloaded,
            "install": finished - checked,
        },
    )


def _to_install(
    dist: ResolvedDistribution, result: FetchResult, unpacked: UnpackedWheel
) -> WheelToInstall:
    _check_resolved_metadata(dist, result, unpacked)
    direct_url = None
    if dist.candidate.source == "url":
        direct_url = {
            "url": without_credentials(result.request.url),  # PEP 610: no secrets
            "archive_info": {"hashes": {"sha256": result.sha256}},
        }
    return WheelToInstall(
        path=result.path,
        name=dist.candidate.name,
        version=dist.candidate.version,
        requested=dist.requested,
        direct_url=direct_url,
        unpacked=unpacked,
    )


def _cache_and_swarm_requests(
    settings: Settings, requests: list[FileRequest]
) -> tuple[DistributionCache | None, list[FileRequest]]:
    """The cache (None with --no-cache-dir), and the requests it lacks that have a torrent.

    If any file it lacks comes over https, the TLS context starts being made."""
    cache = None if settings.no_cache else DistributionCache(settings.cache_dir)
    concerned = [r for r in requests if r.torrent is not None or r.url.startswith("https://")]
    missing = [request for request in concerned if cached_path(request, cache) is None]
    if any(request.url.startswith("https://") for request in missing):
        prepare_tls(settings)  # made on a thread (if it was not) while the swarm starts
    return cache, [request for request in missing if request.torrent is not None]


def _damaged_in_cache(result: FetchResult) -> bool:
    """Whether ``result`` is a cached file whose bytes no longer have their sha256."""
    if result.source != "cache" or not result.verified:
        return False
    try:
        return sha256_of(result.path) != result.sha256
    except OSError:
        return True


def _fetch_again(
    result: FetchResult,
    settings: Settings,
    http: httpx.Client,
    cache: DistributionCache,
    log: Log,
) -> FetchResult:
    """A damaged cached file, dropped from the cache and fetched (and verified) again,
    over HTTP: the swarm has closed by now."""
    cache.remove(result.sha256)
    with Fetcher(settings, http, cache, log=log) as fetcher:
        return fetcher.fetch_all([result.request])[0]


def file_requests(planned: PlannedInstall) -> list[FileRequest]:
    """What to fetch for ``planned.plan.install``, with the torrents a torrent index gave."""
    requests = []
    for dist in planned.plan.install:
        link = dist.candidate.link
        assert link is not None
        request = FileRequest.from_link(link)
        if request.torrent is None and link.url in planned.torrents:
            request = replace(request, torrent=planned.torrents[link.url])
        requests.append(request)
    return requests


@contextlib.contextmanager
def fetched_plan(
    planned: PlannedInstall,
    *,
    progress: FetchProgress | None = None,
    progress_context: AbstractContextManager[object] | None = None,
    log: Log = lambda _: None,
    notice: Log = lambda _: None,
) -> Iterator[list[FetchResult]]:
    """The verified files of ``planned.plan.install``, fetched as an install fetches them
    (cache, swarm, origin), without installing them (``torrip download``). Without a
    cache, the files live until the block ends."""
    settings = planned.settings
    requests = file_requests(planned)
    cache, to_swarm = _cache_and_swarm_requests(settings, requests)
    with (
        make_client(settings) as http,
        swarm_sources(settings, http, cache, to_swarm, log=log, notice=notice) as sources,
        Fetcher(settings, http, cache, sources, log=log) as fetcher,
    ):
        with progress_context or contextlib.nullcontext():
            fetched = fetcher.fetch_all(requests, progress)
        _check_allowed(planned, fetched)
        yield fetched


def _check_allowed(planned: PlannedInstall, fetched: list[FetchResult]) -> None:
    """Hash-checking mode (or a lockfile): each file must have one of its allowed hashes."""
    for dist, result in zip(planned.plan.install, fetched, strict=True):
        check_file_allowed(result, planned.allowed_hashes.get(dist.candidate.name))


def swarm_sources(
    settings: Settings,
    http: httpx.Client,
    cache: DistributionCache | None,
    requests: list[FileRequest],
    *,
    log: Log,
    notice: Log,
) -> AbstractContextManager[list[Source]]:
    """The swarm for ``requests`` (files to download that have torrents), if any: without
    them, libtorrent is neither loaded nor started (a warm install)."""
    if not requests or settings.offline:  # offline: no peers either
        return contextlib.nullcontext([])
    from torrip.transport.swarm import swarm_for

    return swarm_for(settings, http, cache, requests, log=log, notice=notice)


def _wheels(requests: list[FileRequest]) -> list[tuple[str | None, int | None]]:
    return [(request.sha256, request.size) for request in requests]


def _link_mode(settings: Settings) -> LinkMode:
    for mode in LINK_MODES:
        if settings.link_mode == mode:
            return mode
    raise ConfigError(
        f"bad value {settings.link_mode!r} for link-mode",
        hint=f"Use one of {', '.join(LINK_MODES)} (config file, TORRIP_LINK_MODE or --link-mode).",
    )

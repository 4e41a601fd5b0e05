"""Execute a plan: fetch every file (verified), check it is what was resolved, install.

Nothing touches the environment until every file is fetched and verified; the
install itself is one transaction that rolls back on failure.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from torrip.cache import DistributionCache
from torrip.errors import MetadataError
from torrip.hashcheck import check_file_allowed
from torrip.http import make_client
from torrip.install.transaction import TransactionResult, WheelToInstall, install_transaction
from torrip.metadata import parse_metadata
from torrip.planner import PlannedInstall
from torrip.resolver.resolve import ResolvedDistribution
from torrip.transport.fetch import Fetcher, FetchProgress, FetchResult, FileRequest
from torrip.transport.swarm import swarm_for

__all__ = ["Execution", "execute_plan"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class Execution:
    fetched: tuple[FetchResult, ...]  # in the order of plan.install
    transaction: TransactionResult
    seconds: dict[str, float]

    def bytes_by_source(self) -> dict[str, int]:
        totals = {"cache": 0, "origin": 0, "peers": 0}
        for result in self.fetched:
            for source, count in result.bytes.items():
                totals[source] = totals.get(source, 0) + count
        return totals


def _check_resolved_metadata(dist: ResolvedDistribution, result: FetchResult) -> None:
    """The wheel's own METADATA must say what resolution used (it may have come from a
    separate .metadata file or a range read, neither covered by the wheel's hash)."""
    try:
        with zipfile.ZipFile(result.path) as archive:
            names = [
                n
                for n in archive.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(names) != 1:
                raise MetadataError(f"{result.request.filename} has no single .dist-info/METADATA")
            actual = parse_metadata(archive.read(names[0]), result.request.filename)
    except zipfile.BadZipFile as exc:
        raise MetadataError(f"{result.request.filename} is not a valid wheel: {exc}") from None
    expected = dist.metadata
    if dist.candidate.source == "lock":  # a lock pins name and version, not dependencies
        if (actual.name, actual.version) != (expected.name, expected.version):
            raise MetadataError(
                f"{result.request.filename}: its METADATA says {actual.name} {actual.version}, "
                f"but the lockfile lists it as {expected.name} {expected.version}",
                hint="The lockfile is inconsistent; write it again (torrip lock).",
            )
        return
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
) -> Execution:
    settings = planned.settings
    plan = planned.plan
    started = time.perf_counter()
    requests = []
    for dist in plan.install:
        link = dist.candidate.link
        assert link is not None
        request = FileRequest.from_link(link)
        if request.torrent is None and link.url in planned.torrents:
            request = replace(request, torrent=planned.torrents[link.url])
        requests.append(request)
    cache = None if settings.no_cache else DistributionCache(settings.cache_dir)
    with (
        make_client(settings) as http,
        swarm_for(settings, http, cache, requests, log=log, notice=notice) as sources,
        Fetcher(settings, http, cache, sources, log=log) as fetcher,
    ):
        if progress_context is not None:
            with progress_context:
                fetched = fetcher.fetch_all(requests, progress)
        else:
            fetched = fetcher.fetch_all(requests, progress)
        downloaded = time.perf_counter()
        wheels = []
        for dist, result in zip(plan.install, fetched, strict=True):
            check_file_allowed(result, planned.allowed_hashes.get(dist.candidate.name))
            _check_resolved_metadata(dist, result)
            direct_url = None
            if dist.candidate.source == "url":
                direct_url = {
                    "url": result.request.url,
                    "archive_info": {"hashes": {"sha256": result.sha256}},
                }
            wheels.append(
                WheelToInstall(
                    path=result.path,
                    name=dist.candidate.name,
                    version=dist.candidate.version,
                    requested=dist.requested,
                    direct_url=direct_url,
                )
            )
        transaction = install_transaction(planned.environment, wheels, plan.remove, compile=compile)
    finished = time.perf_counter()
    return Execution(
        fetched=tuple(fetched),
        transaction=transaction,
        seconds={"fetch": downloaded - started, "install": finished - downloaded},
    )

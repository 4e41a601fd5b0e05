"""After an install: hand the fetched files to the agent, starting it per the ``seed`` setting.

    outcome = hand_to_agent(settings, fetched, site_packages, notice=output.info)

Only verified files that have a torrent in the cache are handed over (nobody could
find the others). ``seed = auto`` starts the agent unless ``CI`` is set; ``always``
starts it anyway; ``never`` (or ``--no-seed``) does nothing. When this run starts
the agent, one line says so and how to stop it. Nothing here fails an install: a
problem is one warning line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from torrip.agent.client import connect, start_agent
from torrip.agent.limits import seed_policy
from torrip.agent.paths import agent_paths
from torrip.cache import DistributionCache
from torrip.config import Settings
from torrip.errors import TorripError
from torrip.transport.fetch import FetchResult
from torrip.transport.session import load_libtorrent

__all__ = ["Handoff", "hand_to_agent", "seedable"]

Notice = Callable[[str], None]


@dataclass(frozen=True)
class Handoff:
    files: int  # handed to the agent
    started_pid: int | None = None  # when this call started the agent
    skipped: str | None = None  # why nothing was handed over


def seedable(cache: DistributionCache, fetched: Iterable[FetchResult]) -> list[dict[str, str]]:
    """The verified fetched files that have a torrent, each once, as the agent's ``add`` takes.

    A torrent is either kept in the cache (the swarm downloaded the file with it), or
    announced by the index (the file came over HTTP): then the agent makes recipe 1's
    torrent itself and keeps it if its infohashes are the announced ones.
    """
    found: dict[str, dict[str, str]] = {}
    for result in fetched:
        if not result.verified or result.sha256 in found:
            continue
        if cache.torrent(result.sha256) is not None:
            found[result.sha256] = {"sha256": result.sha256}
            continue
        ref = result.request.torrent
        if ref is not None and (ref.btih or ref.btmh):
            item = {
                "sha256": result.sha256,
                "filename": result.path.name,
                "url": result.request.url,
            }
            item.update({k: v for k, v in (("btih", ref.btih), ("btmh", ref.btmh)) if v})
            found[result.sha256] = item
    return list(found.values())


def hand_to_agent(
    settings: Settings,
    fetched: Sequence[FetchResult],
    site_packages: Sequence[Path] = (),
    *,
    no_seed: bool = False,
    notice: Notice,
    warn: Notice,
    environ: Mapping[str, str] | None = None,
) -> Handoff:
    env = os.environ if environ is None else environ
    try:
        policy = seed_policy(settings)
    except TorripError as error:
        warn(f"{error.message}; not seeding")
        return Handoff(0, skipped="bad seed setting")
    if no_seed or policy == "never":
        return Handoff(0, skipped="seeding is off")
    if settings.no_cache or not settings.p2p:
        return Handoff(0, skipped="no cache or no p2p")
    if sys.platform == "win32":
        return Handoff(0, skipped="the agent needs Unix sockets")
    files = seedable(DistributionCache(settings.cache_dir), fetched)
    if not files:
        return Handoff(0, skipped="no file has a torrent")
    environments = [str(folder) for folder in site_packages]
    try:
        paths = agent_paths(settings, env)
        client = connect(paths)
        started: int | None = None
        if client is None:
            if policy == "auto" and env.get("CI"):
                return Handoff(0, skipped="CI is set")
            if load_libtorrent() is None:
                return Handoff(0, skipped="libtorrent is not installed")
            started = start_agent(settings, environ=env).pid
            client = connect(paths)
            if client is None:
                raise TorripError("the agent stopped right after it started")
        with client:
            status = client.call("status")
            if Path(str(status.get("cache_dir"))) != Path(settings.cache_dir):
                return Handoff(0, skipped=f"the agent serves another cache ({status['cache_dir']})")
            added = client.call("add", files=files, environments=environments)
    except TorripError as error:
        warn(f"could not hand the downloaded files to the seeding agent: {error.message}")
        return Handoff(0, skipped=str(error))
    count = len(added.get("added", []))
    if started is not None:
        notice(
            f"Seeding {count} downloaded {'file' if count == 1 else 'files'} to other torrip "
            f"users from a background agent (pid {started}); stop it with `torrip agent stop`, "
            "or set seed = never."
        )
    return Handoff(count, started)

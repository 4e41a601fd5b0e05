"""``torrip seed REQS... [-r FILE] [--publish DIR]``: for volunteers and maintainers.

Resolves and downloads (no install), verifies each file against the index's
sha256, makes its torrent by the recipe with the file's origin URL as a web seed,
keeps it in the cache and hands the files to the seeding agent. ``--publish DIR``
also writes a torrent index tree (``DIR/<sha256[:2]>/<sha256>.torrent``) that any
web host can serve (docs/torrent-index.md).

Examples::

    torrip seed numpy pandas
    torrip seed -r requirements.txt --publish public/torrents --no-agent
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from torrip.cli.agent import add_seed_options, seed_settings_from_args
from torrip.cli.options import (
    add_general_options,
    add_index_options,
    add_p2p_options,
    add_requirement_options,
    requested,
    require_requirements,
)
from torrip.cli.output import Output, plural
from torrip.errors import TorripError

if TYPE_CHECKING:
    from torrip.config import Settings
    from torrip.planner import PlannedInstall
    from torrip.transport.fetch import FetchResult

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

USAGE = """
  torrip seed [options] <requirement specifier> ...
  torrip seed [options] -r <requirements file> ..."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "seed",
        help="Download packages and seed them to other users.",
        usage=USAGE,
        description="Resolve and download packages (without installing them), make their "
        "torrents by the recipe with the origin as web seed, and seed them from the agent; "
        "--publish writes a torrent index that any web host can serve.",
    )
    group = add_requirement_options(
        parser,
        "Seed Options",
        files_help="Seed what the given requirements file resolves to. Repeatable.",
        constraints=False,
        requirement_help="A requirement specifier, such as 'requests>=2.31'.",
    )
    group.add_argument(
        "--python",
        metavar="PATH",
        help="The interpreter whose platform and version the files are chosen for. "
        "Default: $VIRTUAL_ENV, else ./.venv, else the interpreter torrip runs on.",
    )
    group.add_argument("--no-deps", action="store_true", help="Don't seed dependencies.")
    group.add_argument(
        "--publish",
        metavar="DIR",
        type=Path,
        help="Also write the torrents as a torrent index: DIR/<sha256[:2]>/<sha256>.torrent.",
    )
    group.add_argument(
        "--no-agent",
        action="store_true",
        help="Only download and make torrents; do not start or tell the seeding agent.",
    )
    add_seed_options(parser)
    add_index_options(parser)
    add_p2p_options(parser)
    add_general_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, output: Output) -> int:
    from torrip.agent.client import connect, start_agent
    from torrip.agent.torrents import keep_recipe_torrent, publish_torrent
    from torrip.cache import DistributionCache
    from torrip.planner import InstallRequest, plan_install

    require_requirements(args, "seed", "torrip seed requests")
    settings = seed_settings_from_args(args)
    if settings.no_cache:
        raise TorripError("seeding needs the cache", hint="Drop --no-cache-dir.")
    request = InstallRequest(
        **requested(args),
        python=args.python,
        no_deps=args.no_deps,
        reinstall=True,  # every resolved file, whether installed here or not
    )
    planned = plan_install(request, settings, log=output.detail)
    settings = planned.settings
    fetched = _fetch(planned, output)
    cache = DistributionCache(settings.cache_dir)
    seeded: list[str] = []
    for result in fetched:
        name = result.request.filename
        if not result.verified:
            output.warning(f"{name}: the index gives no sha256 for it; not seeded")
            continue
        web_seeds = [result.request.url] if _is_http(result.request.url) else []
        torrent = keep_recipe_torrent(
            cache, result.sha256, result.path, web_seeds=web_seeds, trackers=settings.trackers
        )
        if args.publish is not None:
            path = publish_torrent(args.publish, result.sha256, torrent.data)
            output.detail(f"wrote {path}")
        seeded.append(result.sha256)
        output.info(f"{name}  btih {torrent.btih}")
    if args.publish is not None:
        output.info(f"Published {plural(len(seeded), 'torrent')} in {args.publish}")
    if args.no_agent or not seeded:
        return 0
    started = start_agent(settings)
    client = connect(started.paths)
    if client is None:
        raise TorripError("the agent stopped right after it started")
    with client:
        added = client.call("add", files=seeded)["added"]
    verb = "Seeding" if started.already_running else f"Agent started (pid {started.pid}), seeding"
    output.info(f"{verb} {plural(len(added), 'file')}; `torrip agent status` shows it.")
    return 0


def _fetch(planned: PlannedInstall, output: Output) -> list[FetchResult]:
    from torrip.cache import DistributionCache
    from torrip.http import make_client
    from torrip.transport.fetch import Fetcher, FileRequest

    settings: Settings = planned.settings
    requests = []
    for dist in planned.plan.install:
        link = dist.candidate.link
        if link is None:
            continue
        requests.append(FileRequest.from_link(link))
    cache = DistributionCache(settings.cache_dir)
    with (
        make_client(settings) as http,
        Fetcher(settings, http, cache, log=output.detail) as fetcher,
    ):
        return fetcher.fetch_all(requests)


def _is_http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")

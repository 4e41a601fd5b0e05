"""``torrip install``: parse, plan (and later fetch and install), render."""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import TYPE_CHECKING

from torrip.cli.options import (
    add_break_system_packages_option,
    add_general_options,
    add_index_options,
    add_layout_options,
    add_no_seed_option,
    add_p2p_options,
    add_platform_options,
    add_pre_option,
    add_python_option,
    add_requirement_options,
    early_index_from_args,
    layout_from_args,
    requested,
    require_requirements,
    retarget_from_args,
    settings_from_args,
)
from torrip.cli.output import RESOLVING, Output
from torrip.errors import TorripError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torrip.config import Settings
    from torrip.environment import Probe
    from torrip.index.early import EarlyIndex
    from torrip.install.prefetch import Prefetch
    from torrip.planner import PlannedInstall
    from torrip.retarget import Retarget
    from torrip.transport.fetch import FetchResult

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

USAGE = """
  torrip install [options] <requirement specifier> ...
  torrip install [options] -r <requirements file> ...
  torrip install [options] <wheel path or URL> ..."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "install",
        help="Install packages.",
        usage=USAGE,
        description="Install packages from PyPI (or another index), fetching wheels from "
        "peers and the index at once.",
    )
    group = add_requirement_options(
        parser,
        "Install Options",
        files_help="Install from the given requirements file. Repeatable.",
    )
    group.add_argument(
        "-e",
        "--editable",
        metavar="PATH",
        action="append",
        help="Not supported: torrip installs wheels and does not build projects (this "
        "option is here to say so).",
    )
    add_python_option(group, verb="install into")
    add_layout_options(group, user=True)
    add_platform_options(group)
    add_break_system_packages_option(group)
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="Don't actually install anything, just print what would be.",
    )
    group.add_argument(
        "--report",
        metavar="FILE",
        help="Write a JSON report of what is installed (pip's format, version 1) "
        "to FILE; '-' writes to stdout.",
    )
    group.add_argument(
        "-U",
        "--upgrade",
        action="store_true",
        help="Upgrade the named packages to the newest available version. "
        "Dependencies are upgraded only when needed (see --upgrade-strategy).",
    )
    group.add_argument(
        "--upgrade-strategy",
        choices=("only-if-needed", "eager"),
        default="only-if-needed",
        help="With -U: only-if-needed (default) upgrades dependencies only when they no "
        "longer satisfy what needs them; eager upgrades them all, as pip's option.",
    )
    group.add_argument(
        "--force-reinstall",
        action="store_true",
        help="Reinstall all packages even if they are already up-to-date.",
    )
    group.add_argument(
        "--compile",
        action="store_true",
        help="Compile Python source files to bytecode after installing (off by default, like uv).",
    )
    group.add_argument(
        "--link-mode",
        choices=("hardlink", "copy"),
        help="How files get from torrip's unpacked cache into the environment: hardlink "
        "(default; fast, copies where links cannot be made; editing an installed file in "
        "place edits the cached copy too) or copy.",
    )
    group.add_argument("--no-deps", action="store_true", help="Don't install package dependencies.")
    group.add_argument(
        "--require-hashes",
        action="store_true",
        help="Require a hash (--hash in a requirements file) for every requirement, "
        "dependencies included, each pinned with ==. On whenever any requirement has a hash.",
    )
    add_pre_option(group)
    add_no_seed_option(group)
    add_index_options(parser)
    add_p2p_options(parser)
    add_general_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, output: Output) -> int:
    if args.editable:
        raise TorripError(
            f"cannot install {args.editable[0]} in editable mode: torrip installs wheels "
            "and does not build projects",
            hint="Install the project you work on with pip install -e or uv pip install -e; "
            "torrip can install its dependencies (torrip install -r requirements.txt).",
        )
    require_requirements(args, "install", "torrip install requests")
    layout, retarget = layout_from_args(args), retarget_from_args(args)
    if retarget and not (args.dry_run or (layout and layout.kind != "user")):
        raise TorripError(
            "--platform, --python-version, --implementation and --abi choose files that may "
            "not run on this interpreter",
            hint="Use them with --target DIR, --prefix DIR or --dry-run (or torrip download).",
        )
    settings, explicit = settings_from_args(args)
    from torrip.environment import Probe, find_target_python

    # The target describes itself (a process of its own, 30-40 ms) while the workers are
    # forked, the index is asked for what the command line names, and the rest of torrip
    # is imported (60-90 ms).
    target = find_target_python(args.python)  # a bad --python fails before any request
    with Probe(target, layout=layout, cache_dir=settings.kept_cache_dir) as probe:
        # Before any thread starts: it forks worker processes.
        prefetch = _prefetch(args, settings, output)
        with prefetch or contextlib.nullcontext():
            index_urls = settings.index_urls
            if any(url.startswith("https://") for url in index_urls) and not _installs_lock(args):
                from torrip.http import prepare_tls

                prepare_tls(settings)  # the CA bundle loads on a thread beside the imports
            with early_index_from_args(args, settings, output) or contextlib.nullcontext() as early:
                return _run(args, output, settings, explicit, probe, retarget, early, prefetch)


def _prefetch(args: argparse.Namespace, settings: Settings, output: Output) -> Prefetch | None:
    """What fetches and unpacks wheels while the resolver works, for a cold install."""
    if args.dry_run or _installs_lock(args):
        return None
    from torrip.index.early import plain_names
    from torrip.install.prefetch import start_prefetch

    # The progress display execute_plan is given (below) draws bars on a terminal.
    bars = output.verbosity >= 0 and output.err.is_terminal
    return start_prefetch(settings, plain_names(args.requirements or ()), bars=bars)


def _installs_lock(args: argparse.Namespace) -> bool:
    """Whether a lockfile is what is installed: no index is asked anything (and the TLS
    context, whose thread slows the lockfile's reading by 10 ms, is made if a download
    needs it)."""
    from torrip.lockfile import is_lockfile_name

    return any(is_lockfile_name(name) for name in args.requirement_files or ())


def _run(
    args: argparse.Namespace,
    output: Output,
    settings: Settings,
    explicit: set[str],
    probe: Probe,
    retarget: Retarget | None,
    early: EarlyIndex | None,
    prefetch: Prefetch | None,
) -> int:
    # Imported here so `torrip --help` and other commands start fast.
    from torrip.planner import InstallRequest, plan_install
    from torrip.report import build_report, write_report

    request = InstallRequest(
        **requested(args),
        retarget=retarget,
        python=args.python,
        upgrade=args.upgrade,
        upgrade_strategy=args.upgrade_strategy,
        no_deps=args.no_deps,
        reinstall=args.force_reinstall,
        require_hashes=args.require_hashes,
        refuse_externally_managed=not args.dry_run,
    )
    started = time.perf_counter()
    from torrip.cli.lock import plan_from_lockfile

    # -r pylock.toml: no index at all
    planned = plan_from_lockfile(args, settings, output, probe=probe)
    if planned is None:
        with output.status(RESOLVING):
            planned = plan_install(
                request,
                settings,
                explicit=explicit,
                log=output.detail,
                probe=probe,
                early=early,
                prefetch=prefetch,
            )
    for text in planned.ignored:
        output.info(f"Ignoring {text}: markers don't match your environment")
    warn_wheels_only(planned, output)
    render_plan(planned, output, elapsed=time.perf_counter() - started, dry_run=args.dry_run)
    if args.dry_run or planned.plan.is_empty:
        if args.report:
            write_report(
                build_report(
                    planned.plan,
                    planned.environment,
                    extra={"seconds": planned.seconds},
                    torrents=planned.torrents,
                ),
                args.report,
            )
        return 0
    from torrip.install.execute import execute_plan
    from torrip.transport.progress import NullProgress, RichProgress

    progress = RichProgress(output.err) if output.verbosity >= 0 else NullProgress()
    execution = execute_plan(
        planned,
        progress=progress,
        progress_context=progress if isinstance(progress, RichProgress) else None,
        compile=args.compile,
        log=output.detail,
        notice=output.info,
        prefetch=prefetch,
    )
    totals = execution.bytes_by_source()
    elapsed = time.perf_counter() - started
    installed = [(d.metadata.display_name, str(d.candidate.version)) for d in planned.plan.install]
    removed = list(execution.transaction.removed)
    if removed:  # old versions replaced; with sync, also what the lock does not list
        output.info(f"Successfully uninstalled {_names(removed)}")
    if installed:
        output.info(f"Successfully installed {_names(installed)}")
    if totals["peers"]:
        output.info(swarm_summary(totals))
    output.detail(
        f"{len(installed)} packages in {elapsed:.2f}s; bytes from origin {totals['origin']}, "
        f"cache {totals['cache']}, peers {totals['peers']}; files linked "
        f"{execution.transaction.files_linked}, copied {execution.transaction.files_copied}"
    )
    if args.report:
        fetched = {
            result.request.url: {
                "source": result.source,
                "bytes": {k: result.bytes.get(k, 0) for k in ("cache", "origin", "peers")},
            }
            for result in execution.fetched
        }
        extra = {"bytes": totals, "seconds": {**planned.seconds, **execution.seconds}}
        write_report(
            build_report(
                planned.plan,
                planned.environment,
                extra=extra,
                fetched=fetched,
                torrents=planned.torrents,
            ),
            args.report,
        )
    seed_what_was_fetched(args, planned, execution.fetched, output)
    return 0


def seed_what_was_fetched(
    args: argparse.Namespace,
    planned: PlannedInstall,
    fetched: Sequence[FetchResult],
    output: Output,
    *,
    used: bool = True,
) -> None:
    """Hand the files just fetched to the seeding agent, per the ``seed`` setting (never
    fails). ``used``: the target's environment needs them (the agent evicts others first)."""
    if args.no_seed or planned.settings.seed == "never":  # never: not even the import
        return
    from torrip.agent.handoff import hand_to_agent

    hand_to_agent(
        planned.settings,
        fetched,
        planned.environment.site_packages if used else (),
        notice=output.info,
        warn=output.warning,
    )


def swarm_summary(totals: dict[str, int]) -> str:
    """ "Fetched 99.8 MB: 98% from peers, 2% from the origin" (cache hits not counted)."""
    from rich.filesize import decimal

    fetched = totals["peers"] + totals["origin"]
    peers = 100 * totals["peers"] // max(1, fetched)
    return f"Fetched {decimal(fetched)}: {peers}% from peers, {100 - peers}% from the origin"


def _names(dists: list[tuple[str, str]]) -> str:
    return " ".join(f"{name}-{version}" for name, version in dists)


def warn_wheels_only(planned: PlannedInstall, output: Output) -> None:
    """Say where torrip's answer differs from pip's because torrip builds nothing: pip would
    build a newer sdist, or what --no-binary names."""
    built = [name for name in planned.no_binary if name != ":none:"]  # :none: builds nothing
    if built:
        names = ",".join(built)
        output.warning(
            f"--no-binary {names} asks to build from source, which torrip does not: "
            "their wheels are used"
        )
    for newer in planned.resolution.newer_source_only:
        output.warning(
            f"{newer.name} {newer.version} has only a source distribution ({newer.filename}), "
            f"which torrip does not build: using {newer.resolved}, the newest version with a "
            "wheel for the target"
        )


def render_plan(planned: PlannedInstall, output: Output, *, elapsed: float, dry_run: bool) -> None:
    plan = planned.plan
    total = len(planned.resolution.distributions)
    output.detail(f"Resolved {total} packages in {elapsed:.2f}s")
    for dist in plan.kept:
        output.info(
            f"Requirement already satisfied: {dist.metadata.display_name}=={dist.candidate.version}"
        )
    if not dry_run:
        return
    if plan.remove:
        output.info(
            "Would remove " + _names([(d.display_name, str(d.version)) for d in plan.remove])
        )
    if plan.install:
        output.info(
            "Would install "
            + _names([(d.metadata.display_name, str(d.candidate.version)) for d in plan.install])
        )
    elif not plan.kept:
        output.info("Nothing to install")

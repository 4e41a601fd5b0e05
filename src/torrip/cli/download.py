"""``torrip download``: the wheels a requirement set resolves to, saved into a folder.

What ``pip download`` does, for wheels: resolved for the target interpreter as for an
empty environment, fetched (from the cache, peers and the index, verified against the
index's sha256) and saved into ``--dest``. A folder of wheels is then installable with no
network (``torrip install --no-index -f DIR``), or servable as an index
(``torrip index build DIR SITE``).

Examples::

    torrip download -d wheels requests
    torrip download -d wheels -r requirements.txt --python /usr/bin/python3.12
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from torrip.cli.options import (
    add_general_options,
    add_index_options,
    add_no_seed_option,
    add_p2p_options,
    add_platform_options,
    add_pre_option,
    add_python_option,
    add_requirement_options,
    early_index_from_args,
    requested,
    require_requirements,
    retarget_from_args,
    settings_from_args,
)
from torrip.cli.output import RESOLVING, Output, plural
from torrip.errors import TorripError

if TYPE_CHECKING:
    from torrip.config import Settings
    from torrip.index.early import EarlyIndex
    from torrip.transport.fetch import FetchResult

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

USAGE = """
  torrip download [options] <requirement specifier> ...
  torrip download [options] -r <requirements file> ..."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "download",
        help="Download packages.",
        usage=USAGE,
        description="Resolve the requirements for the target interpreter (as for an empty "
        "environment) and save the wheels into a folder, from the cache, peers and the index.",
    )
    group = add_requirement_options(
        parser,
        "Download Options",
        files_help="Download what the given requirements file resolves to. Repeatable.",
    )
    group.add_argument(
        "-d",
        "--dest",
        metavar="DIR",
        default=".",
        help="Save the wheels into DIR (created if missing). Default: the current folder.",
    )
    add_python_option(group, verb="download for")
    add_no_seed_option(group)
    add_platform_options(group)
    group.add_argument("--no-deps", action="store_true", help="Don't download dependencies.")
    add_pre_option(group)
    add_index_options(parser)
    add_p2p_options(parser)
    add_general_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, output: Output) -> int:
    require_requirements(args, "download", "torrip download -d wheels requests")
    dest = Path(args.dest).expanduser()
    settings, explicit = settings_from_args(args)
    early = early_index_from_args(args, settings, output)
    with early or contextlib.nullcontext():
        return _download(args, output, settings, explicit, dest, early)


def _download(
    args: argparse.Namespace,
    output: Output,
    settings: Settings,
    explicit: set[str],
    dest: Path,
    early: EarlyIndex | None,
) -> int:
    from torrip.install.execute import fetched_plan
    from torrip.planner import InstallRequest, plan_install
    from torrip.transport.progress import NullProgress, RichProgress

    request = InstallRequest(
        **requested(args),
        retarget=retarget_from_args(args),
        python=args.python,
        no_deps=args.no_deps,
        ignore_installed=True,  # what the target holds is no reason to leave a file out
    )
    with output.status(RESOLVING):
        planned = plan_install(request, settings, explicit=explicit, log=output.detail, early=early)
    for text in planned.ignored:
        output.warning(f"Ignoring {text}: markers don't match the target environment")
    from torrip.cli.install import warn_wheels_only

    warn_wheels_only(planned, output)
    progress = RichProgress(output.err) if output.verbosity >= 0 else NullProgress()
    context = progress if isinstance(progress, RichProgress) else None
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TorripError(
            f"cannot create {dest}: {error.strerror or error}",
            hint="Choose a folder you may write to (--dest).",
        ) from None
    with fetched_plan(
        planned,
        progress=progress,
        progress_context=context,
        log=output.detail,
        notice=output.info,
    ) as fetched:
        for result in fetched:
            saved = _save(result, dest)
            if saved:
                output.info(f"Saved {dest / result.request.filename}")
            else:
                output.info(f"File was already downloaded {dest / result.request.filename}")
    names = " ".join(
        f"{d.metadata.display_name}-{d.candidate.version}" for d in planned.plan.install
    )
    output.info(f"Successfully downloaded {names}" if names else "Nothing to download")
    output.detail(f"{plural(len(fetched), 'file')} in {dest}")
    from torrip.cli.install import seed_what_was_fetched

    # As after an install, what was downloaded keeps serving others (from the cache; with
    # no cache, nothing is seeded). No environment needs it: the agent evicts it first.
    seed_what_was_fetched(args, planned, fetched, output, used=False)
    return 0


def _save(result: FetchResult, dest: Path) -> bool:
    """Put the verified file into ``dest`` under its name (a hard link to the cache's copy
    where possible); False if the same bytes are there already."""
    from torrip.cache import sha256_of

    target = dest / result.request.filename
    if target.is_file() and sha256_of(target) == result.sha256:
        return False
    temporary = dest / f".{target.name}.torrip-tmp"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    try:
        try:
            os.link(result.path, temporary)
        except OSError:  # another file system, or no links there
            import shutil

            shutil.copyfile(result.path, temporary)
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise TorripError(
            f"cannot save {target}: {error.strerror or error}",
            hint="Check that you may write to the folder (--dest).",
        ) from None
    return True

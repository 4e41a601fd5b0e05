"""``torrip lock`` and ``torrip sync``: PEP 751 lockfiles out and in.

Examples::

    torrip lock jupyterlab -o pylock.toml --python .venv
    torrip install -r pylock.toml --python /tmp/fresh-venv     # no index asked anything
    torrip sync pylock.toml                                     # and remove what it doesn't list

``torrip install -r pylock.toml`` goes through ``plan_from_lockfile`` (called by the
install command); ``sync`` is that same install with removal of what the lock does not list.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from torrip.cli.options import (
    add_break_system_packages_option,
    add_general_options,
    add_index_options,
    add_layout_options,
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
from torrip.errors import LockfileError, TorripError

if TYPE_CHECKING:
    from torrip.config import Settings
    from torrip.environment import Probe
    from torrip.planner import PlannedInstall

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["plan_from_lockfile", "register_lock", "register_sync"]

LOCK_USAGE = """
  torrip lock [options] <requirement specifier> ... [-o pylock.toml]
  torrip lock [options] -r <requirements file> ... [-o pylock.toml]"""

_NAMING_HINT = "PEP 751 lockfiles are named pylock.toml or pylock.<name>.toml."


def register_lock(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "lock",
        help="Resolve requirements and write a PEP 751 lockfile (pylock.toml).",
        usage=LOCK_USAGE,
        description="Resolve the requirements for the target environment, as if nothing "
        "were installed in it, and write a PEP 751 lockfile: every package with its index, "
        "and its wheel's URL, size, hashes and torrents. pip, uv and torrip install it.",
    )
    group = add_requirement_options(
        parser,
        "Lock Options",
        files_help="Lock the requirements of the given requirements file. Repeatable.",
    )
    group.add_argument(
        "-o",
        "--output-file",
        default="pylock.toml",
        metavar="FILE",
        help="Write the lockfile to FILE (default pylock.toml; '-' writes to stdout). "
        + _NAMING_HINT
        + " A FILE ending in .txt gets a hash-pinned requirements file instead.",
    )
    group.add_argument(
        "--format",
        dest="lock_format",
        choices=LOCK_FORMATS,
        help="pylock.toml (PEP 751), or requirements.txt: pins with the sha256 of each file "
        "chosen for the target, for pip install --require-hashes -r (as uv pip compile "
        "writes). Default: from FILE's name.",
    )
    add_python_option(group, verb="lock for")
    add_platform_options(group)
    add_pre_option(group)
    add_index_options(parser)
    add_general_options(parser)
    parser.set_defaults(run=run_lock)


def register_sync(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="Make an environment match a lockfile exactly.",
        usage="\n  torrip sync [options] <pylock.toml>",
        description="Install what the lockfile selects for the target and remove every "
        "distribution it does not list (pip, setuptools and wheel too, as uv pip sync "
        "does; never torrip itself and what it needs). Asks no index anything.",
    )
    parser.add_argument(
        "lockfile",
        metavar="LOCKFILE",
        help="A PEP 751 lockfile (pylock.toml or pylock.<name>.toml); "
        "'pylock.toml[extra,...]' selects extras the lock declares.",
    )
    group = parser.add_argument_group("Sync Options")
    add_python_option(group, verb="sync")
    add_layout_options(group)
    add_break_system_packages_option(group)
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="Don't change anything, just print what would be installed and removed.",
    )
    group.add_argument(
        "--report",
        metavar="FILE",
        help="Write a JSON report (pip's format, version 1) to FILE; '-' writes to stdout.",
    )
    group.add_argument(
        "--force-reinstall",
        action="store_true",
        help="Reinstall every locked package even if it is installed at the locked version.",
    )
    group.add_argument(
        "--compile",
        action="store_true",
        help="Compile Python source files to bytecode after installing.",
    )
    add_p2p_options(parser)
    add_general_options(parser)
    parser.set_defaults(run=run_sync)


LOCK_FORMATS = ("pylock.toml", "requirements.txt")


def run_lock(args: argparse.Namespace, output: Output) -> int:
    from torrip.fsutil import atomic_write
    from torrip.lockfile import is_lockfile_name

    require_requirements(args, "lock", "torrip lock requests")
    destination: str = args.output_file
    lock_format = args.lock_format or (
        "requirements.txt" if destination.endswith(".txt") else "pylock.toml"
    )
    if lock_format == "pylock.toml" and destination != "-" and not is_lockfile_name(destination):
        raise TorripError(
            f"cannot write the lockfile to {destination}: the name does not follow PEP 751",
            hint=f"{_NAMING_HINT} For example: -o pylock.toml, -o pylock.dev.toml.",
        )
    locks = [name for name in args.requirement_files if is_lockfile_name(name)]
    if locks:
        raise TorripError(
            f"{locks[0]} is a lockfile already; torrip lock reads requirements",
            hint=f"Install it with torrip install -r {locks[0]}.",
        )
    settings, explicit = settings_from_args(args)
    early = early_index_from_args(args, settings, output)
    with early or contextlib.nullcontext():
        from torrip.lockfile.write import lock_requirements
        from torrip.planner import InstallRequest

        request = InstallRequest(
            **requested(args),
            retarget=retarget_from_args(args),
            python=args.python,
        )
        with output.status(RESOLVING):
            result = lock_requirements(
                request, settings, explicit=explicit, log=output.detail, early=early
            )
    for text in result.planned.ignored:
        output.warning(f"Ignoring {text}: markers don't match the target environment")
    from torrip.cli.install import warn_wheels_only

    warn_wheels_only(result.planned, output)
    text = result.text
    if lock_format == "requirements.txt":
        from torrip.lockfile.write import render_requirements

        text = render_requirements(result.lock, result.planned.environment)
    if destination == "-":
        output.data(text)
        return 0
    atomic_write(Path(destination), text.encode("utf-8"))
    count = len(result.lock.packages)
    python = result.planned.environment.python
    output.info(f"Locked {plural(count, 'package')} for {python} in {destination}")
    return 0


def run_sync(args: argparse.Namespace, output: Output) -> int:
    from torrip.cli import install
    from torrip.cli.main import build_parser
    from torrip.lockfile import is_lockfile_name

    if not is_lockfile_name(args.lockfile):
        raise TorripError(
            f"{args.lockfile} is not a lockfile name; torrip sync installs PEP 751 lockfiles",
            hint=f"{_NAMING_HINT} To install a requirements file, use torrip install -r.",
        )
    # Sync is the install command on this lock, plus removal: the install's own defaults
    # (including options added to it later) with what sync was told on top.
    merged = vars(build_parser("install").parse_args(["install", "-r", args.lockfile]))
    merged.update({k: v for k, v in vars(args).items() if k not in ("run", "command", "lockfile")})
    merged["sync"] = True
    return install.run(argparse.Namespace(**merged), output)


def plan_from_lockfile(
    args: argparse.Namespace, settings: Settings, output: Output, *, probe: Probe | None = None
) -> PlannedInstall | None:
    """The plan of ``install -r pylock.toml`` (or of sync); None when no -r names a lockfile.

    ``probe``: of the target, if the caller started it already."""
    if not args.requirement_files:
        return None
    from torrip.lockfile import is_lockfile_name, split_extras

    locks = [name for name in args.requirement_files if is_lockfile_name(name)]
    if not locks:
        return None
    others = [*args.requirements, *(n for n in args.requirement_files if n not in locks)]
    others += args.groups or ()
    if len(locks) > 1 or others or args.constraint_files:
        raise TorripError(
            "a lockfile is installed on its own, without other requirements, requirements "
            "files, constraints or lockfiles",
            hint="Lock everything together (torrip lock -r requirements.txt), then install "
            "that one lockfile.",
        )
    if args.upgrade or args.no_deps:
        raise TorripError(
            "-U/--upgrade and --no-deps do not apply to a lockfile: it fixes every version",
            hint="Write the lock again (torrip lock) to change versions.",
        )
    from torrip.lockfile.install import LockInstallRequest, plan_lock_install

    path, extras = split_extras(locks[0])
    if not Path(path).is_file():
        raise LockfileError(path, "no such file", hint="Check the path given to -r.")
    request = LockInstallRequest(
        lockfile=Path(path),
        extras=extras | frozenset(args.extras or ()),
        all_extras=args.all_extras,
        python=args.python,
        reinstall=args.force_reinstall,
        sync=getattr(args, "sync", False),
        refuse_externally_managed=not args.dry_run,
    )
    return plan_lock_install(request, settings, log=output.detail, warn=output.warning, probe=probe)

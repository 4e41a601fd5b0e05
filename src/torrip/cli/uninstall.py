"""``torrip uninstall``: remove distributions by their RECORD, after asking on a terminal.

Examples::

    torrip uninstall requests
    torrip uninstall -y -r requirements.txt --python .venv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from torrip.cli.options import (
    add_break_system_packages_option,
    add_python_option,
    add_requirement_file_options,
    add_verbosity_options,
    settings_from_args,
)
from torrip.cli.output import Output
from torrip.errors import TorripError

if TYPE_CHECKING:
    from torrip.environment import InstalledDistribution
    from torrip.install.removal import PlannedRemoval

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

USAGE = """
  torrip uninstall [options] <package> ...
  torrip uninstall [options] -r <requirements file> ..."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "uninstall",
        help="Uninstall packages.",
        usage=USAGE,
        description="Uninstall packages: every file their RECORD lists, and their bytecode. "
        "Nothing outside the environment is ever removed; a package whose RECORD points "
        "outside it, or that has no RECORD, is refused before anything is removed.",
    )
    parser.add_argument(
        "packages", nargs="*", metavar="PACKAGE", help="An installed package to uninstall."
    )
    group = parser.add_argument_group("Uninstall Options")
    add_requirement_file_options(
        group,
        files_help="Uninstall all the packages listed in the given requirements file. Repeatable.",
        constraints=False,
    )
    group.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="Don't ask for confirmation of uninstall deletions (torrip asks only when "
        "standard input is a terminal).",
    )
    add_python_option(group, verb="uninstall from")
    group.add_argument(
        "--user",
        action="store_true",
        help="Uninstall from the interpreter's user site (what install --user installed).",
    )
    add_break_system_packages_option(group)
    add_verbosity_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, output: Output) -> int:
    from torrip.environment import (
        Layout,
        find_target_python,
        inspect_environment,
        refuse_externally_managed,
    )
    from torrip.install.removal import plan_uninstall
    from torrip.install.uninstall import uninstall

    names = _requested_names(args, output)
    if not names:
        raise TorripError(
            "you must give at least one requirement to uninstall",
            hint="For example: torrip uninstall requests, or torrip uninstall -r requirements.txt.",
        )
    layout = Layout("user", Path()) if args.user else None
    settings = settings_from_args(args)[0]
    environment = inspect_environment(
        find_target_python(args.python), layout=layout, cache_dir=settings.kept_cache_dir
    )
    refuse_externally_managed(environment, settings)
    plan = plan_uninstall(environment, names)
    for name in plan.missing:
        output.warning(f"Skipping {name} as it is not installed.")
    ask = not args.yes and _stdin_is_terminal()
    chosen = []
    for removal in plan.removals:
        if ask:
            _announce(output, removal.distribution)
            _render_listing(removal, output)
            if not _confirm(output):
                continue
        chosen.append(removal.distribution)
    if not chosen:
        return 0
    removed = uninstall(environment, [dist.name for dist in chosen])
    for dist in removed:
        if not ask:
            _announce(output, dist)
        output.info(f"  Successfully uninstalled {dist.display_name}-{dist.version}")
    return 0


def _requested_names(args: argparse.Namespace, output: Output) -> list[str]:
    """The project names of the arguments and -r files, as given (specifiers allowed)."""
    from packaging.requirements import InvalidRequirement, Requirement

    from torrip.requirements import parse_requirement_files

    names: list[str] = []
    for text in args.packages:
        try:
            names.append(Requirement(text).name)
        except InvalidRequirement:
            output.warning(
                f"Invalid requirement: {text!r} ignored - the uninstall command expects "
                "named requirements."
            )
    if args.requirement_files:
        from torrip.config import load_settings
        from torrip.http import url_reader

        # A file given by URL comes through a client of the user's settings (credentials).
        reader = url_reader(load_settings())
        parsed = parse_requirement_files(args.requirement_files, read_url=reader)
        names += [line.requirement.name for line in parsed.requirements]
    return names


def _announce(output: Output, dist: InstalledDistribution) -> None:
    output.info(f"Found existing installation: {dist.display_name} {dist.version}")
    output.info(f"Uninstalling {dist.display_name}-{dist.version}:")


def _render_listing(removal: PlannedRemoval, output: Output) -> None:
    if output.verbosity >= 1:  # every file, bytecode included, as pip -v does
        sections = [("Would remove:", tuple(map(str, removal.paths)))]
    else:
        listing = removal.listing()
        sections = [
            ("Would remove:", listing.remove),
            ("Would not remove (might be manually added):", listing.keep),
        ]
    for title, paths in sections:
        if paths:
            output.info(f"  {title}")
            for path in paths:
                output.info(f"    {path}")


def _confirm(output: Output) -> bool:
    """pip's question: Enter or y proceeds, n skips this package; end of input skips too."""
    while True:
        try:
            answer = output.out.input("Proceed (Y/n)? ", markup=False).strip().lower()
        except EOFError:
            output.info("")
            return False
        if answer in ("y", "n", ""):
            return answer != "n"
        output.info(f"Your response ({answer!r}) was not one of the expected responses: y, n, ")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()

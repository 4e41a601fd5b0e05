"""``torrip list|freeze|show|check``: what is installed in an environment, as pip tells it;
``torrip tree``: what requires what, as uv draws it.

Examples::

    torrip list --format json --python .venv
    torrip freeze > requirements.txt
    torrip show requests
    torrip check
    torrip tree --invert --package markupsafe
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from torrip.cli.options import (
    add_index_options,
    add_pre_option,
    add_python_option,
    add_verbosity_options,
    settings_from_args,
)
from torrip.cli.output import Output
from torrip.errors import TorripError

if TYPE_CHECKING:
    from torrip.environment import TargetEnvironment
    from torrip.inventory import CheckResult, Package, PackageDetails

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "register_check",
    "register_freeze",
    "register_list",
    "register_show",
    "register_tree",
    "render_check",
    "render_columns",
    "render_details",
    "render_json",
]

LIST_FORMATS = ("columns", "freeze", "json")


def register_list(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "list",
        help="List installed packages.",
        description="List installed packages, sorted by name.",
    )
    group = parser.add_argument_group("List Options")
    group.add_argument(
        "--format",
        dest="list_format",
        choices=LIST_FORMATS,
        default="columns",
        help="Select the output format among: columns (default), freeze, or json.",
    )
    group.add_argument(
        "-o",
        "--outdated",
        action="store_true",
        help="List outdated packages: those the index has a newer wheel of for the target.",
    )
    add_pre_option(
        group,
        "With --outdated, count pre-release and development versions as newer. By "
        "default, only stable versions are (unless the installed version is a pre-release).",
    )
    group.add_argument(
        "--not-required",
        action="store_true",
        help="List only packages that no installed package requires.",
    )
    group.add_argument(
        "--exclude",
        action="append",
        metavar="PACKAGE",
        help="Leave PACKAGE out of the list. Repeatable.",
    )
    add_python_option(group)
    add_index_options(parser)
    add_verbosity_options(parser)
    parser.set_defaults(run=run_list)


def register_freeze(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "freeze",
        help="Output installed packages in requirements format.",
        description="Output installed packages in requirements format, sorted by name "
        "(case-insensitively).",
    )
    group = parser.add_argument_group("Freeze Options")
    group.add_argument(
        "--all",
        dest="freeze_all",
        action="store_true",
        help="Do not skip these packages in the output: pip, and setuptools, distribute "
        "and wheel before Python 3.12.",
    )
    add_python_option(group)
    add_verbosity_options(parser)
    parser.set_defaults(run=run_freeze)


def register_show(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "show",
        help="Show information about installed packages.",
        description="Show information about one or more installed packages, in "
        "RFC 822 header format.",
        usage="torrip show [options] <package> ...",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE", help="An installed package.")
    group = parser.add_argument_group("Show Options")
    group.add_argument(
        "-f",
        "--files",
        action="store_true",
        help="Show the full list of installed files for each package.",
    )
    add_python_option(group)
    add_verbosity_options(parser)
    parser.set_defaults(run=run_show)


def register_check(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="Verify installed packages have compatible dependencies.",
        description="Verify that the requirements of every installed package are installed, "
        "in a version they accept (exit status 1 if not).",
    )
    group = parser.add_argument_group("Check Options")
    add_python_option(group)
    add_verbosity_options(parser)
    parser.set_defaults(run=run_check)


def register_tree(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "tree",
        help="Show installed packages as a dependency tree.",
        description="Show the installed packages as a tree of what requires what, drawn as "
        "uv pip tree draws it: from the packages nothing requires, or from those named.",
    )
    group = parser.add_argument_group("Tree Options")
    group.add_argument(
        "-d",
        "--depth",
        type=int,
        default=255,
        metavar="N",
        help="Draw N levels below the roots at most (0: the roots alone).",
    )
    group.add_argument(
        "--package",
        dest="packages",
        action="append",
        metavar="PACKAGE",
        help="Draw the tree of PACKAGE only. Repeatable.",
    )
    group.add_argument(
        "--prune",
        action="append",
        metavar="PACKAGE",
        help="Leave PACKAGE out of the tree, wherever it would stand. Repeatable.",
    )
    group.add_argument(
        "--invert",
        action="store_true",
        help="Draw what requires each package instead of what it requires.",
    )
    group.add_argument(
        "--no-dedupe",
        action="store_true",
        help="Draw a package's requirements each time it appears, not only the first "
        "(later ones are marked (*)).",
    )
    group.add_argument(
        "--show-version-specifiers",
        action="store_true",
        help="Show the version range each requirement asks for.",
    )
    add_python_option(group)
    add_verbosity_options(parser)
    parser.set_defaults(run=run_tree)


def run_tree(args: argparse.Namespace, output: Output) -> int:
    from torrip.tree import tree_lines

    if args.depth < 0:
        raise TorripError(
            f"--depth {args.depth}: a depth is 0 or more", hint="0 draws the roots alone."
        )
    environment = _environment(args)
    installed = environment.installed
    missing = [name for name in args.packages or () if _normalized(name) not in installed]
    for name in missing:
        output.warning(f"{name} is not installed")
    for line in tree_lines(
        environment,
        packages=args.packages or (),
        prune=args.prune or (),
        depth=args.depth,
        invert=args.invert,
        dedupe=not args.no_dedupe,
        specifiers=args.show_version_specifiers,
    ):
        output.data(line)
    return 1 if missing and len(missing) == len(args.packages) else 0


def _normalized(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _environment(args: argparse.Namespace) -> TargetEnvironment:
    from torrip.environment import find_target_python, inspect_environment

    settings, _ = settings_from_args(args)
    return inspect_environment(find_target_python(args.python), cache_dir=settings.kept_cache_dir)


def run_list(args: argparse.Namespace, output: Output) -> int:
    from torrip.inventory import list_packages

    if args.outdated and args.list_format == "freeze":
        raise TorripError(
            "the freeze format cannot be used with --outdated",
            hint="Use --format columns or --format json.",
        )
    environment = _environment(args)
    packages = list_packages(environment)
    left_out = {_normalized(name) for name in args.exclude or ()}
    if args.not_required:
        from torrip.tree import required_names

        left_out |= required_names(environment)
    packages = tuple(p for p in packages if _normalized(p.name) not in left_out)
    latest: dict[str, str] | None = None
    if args.outdated:
        from torrip.outdated import newer_versions

        settings, _ = settings_from_args(args)
        newer = newer_versions(
            environment, packages, settings, pre=bool(args.pre), log=output.detail
        )
        packages = tuple(found.package for found in newer)
        latest = {found.package.name: str(found.latest) for found in newer}
    verbose = output.verbosity >= 1
    if args.list_format == "json":
        output.data(render_json(packages, verbose=verbose, latest=latest))
    elif args.list_format == "freeze":
        for package in packages:
            line = f"{package.name}=={package.normalized_version}"
            output.data(f"{line} ({package.location})" if verbose else line)
    else:
        for line in render_columns(packages, verbose=verbose, latest=latest):
            output.info(line)
    return 0


def run_freeze(args: argparse.Namespace, output: Output) -> int:
    from torrip.inventory import freeze_lines

    for line in freeze_lines(_environment(args), include_all=args.freeze_all):
        output.data(line)
    return 0


def run_show(args: argparse.Namespace, output: Output) -> int:
    from torrip.inventory import show_packages

    if not args.packages:
        output.print_error("Please provide a package name or names.")
        return 1
    result = show_packages(_environment(args), args.packages)
    if result.missing:
        output.warning(f"Package(s) not found: {', '.join(result.missing)}")
    for index, details in enumerate(result.found):
        if index:
            output.data("---")
        for line in render_details(details, files=args.files, verbose=output.verbosity >= 1):
            output.data(line)
    return 0 if result.found else 1


def run_check(args: argparse.Namespace, output: Output) -> int:
    from torrip.inventory import check_requirements

    result = check_requirements(_environment(args))
    for problem in result.unreadable:
        output.warning(f"Error parsing dependencies of {problem.project}: {problem.reason}")
    for line in render_check(result):
        output.data(line)
    return 0 if result.ok else 1


# ---------------------------------------------------------------------------
# Renderers: pip's formats, line for line.


def render_columns(
    packages: tuple[Package, ...],
    *,
    verbose: bool = False,
    latest: Mapping[str, str] | None = None,
) -> list[str]:
    """pip list's table: Package and Version, then Latest and Type (``latest``: the newer
    version of each package, for --outdated), Build, editable location, -v columns."""
    if not packages:
        return []
    header = ["Package", "Version"]
    if latest is not None:
        header += ["Latest", "Type"]
    has_build = any(package.build_tag for package in packages)
    has_editable = any(package.editable_location for package in packages)
    if has_build:
        header.append("Build")
    if has_editable:
        header.append("Editable project location")
    if verbose:
        header += ["Location", "Installer"]
    rows = [header]
    for package in packages:
        row = [package.name, package.version]
        if latest is not None:
            row += [latest[package.name], "wheel"]  # torrip installs wheels only
        if has_build:
            row.append(package.build_tag or "")
        if has_editable:
            row.append(str(package.editable_location or ""))
        if verbose:
            row += [str(package.location), package.installer]
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        " ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, " ".join("-" * width for width in widths))
    return lines


def render_json(
    packages: tuple[Package, ...],
    *,
    verbose: bool = False,
    latest: Mapping[str, str] | None = None,
) -> str:
    """pip list --format json: ``[{"name": ..., "version": ...}, ...]`` on one line; with
    ``latest`` (--outdated), ``latest_version`` and ``latest_filetype`` too."""
    import json

    data = []
    for package in packages:
        item = {"name": package.name, "version": package.normalized_version}
        if latest is not None:
            item["latest_version"] = latest[package.name]
            item["latest_filetype"] = "wheel"
        if verbose:
            item["location"] = str(package.location)
            item["installer"] = package.installer
        if package.editable_location is not None:
            item["editable_project_location"] = str(package.editable_location)
        data.append(item)
    return json.dumps(data)


def render_details(
    details: PackageDetails, *, files: bool = False, verbose: bool = False
) -> list[str]:
    """pip show's fields for one package."""
    lines = [
        f"Name: {details.name}",
        f"Version: {details.version}",
        f"Summary: {details.summary}",
        f"Home-page: {details.home_page}",
        f"Author: {details.author}",
        f"Author-email: {details.author_email}",
    ]
    if _version_tuple(details.metadata_version) >= (2, 4) and details.license_expression:
        lines.append(f"License-Expression: {details.license_expression}")
    else:
        lines.append(f"License: {details.license}")
    lines.append(f"Location: {details.location}")
    if details.editable_location is not None:
        lines.append(f"Editable project location: {details.editable_location}")
    lines.append(f"Requires: {', '.join(details.requires)}")
    lines.append(f"Required-by: {', '.join(details.required_by)}")
    if verbose:
        lines.append(f"Metadata-Version: {details.metadata_version}")
        lines.append(f"Installer: {details.installer}")
        lines.append("Classifiers:")
        lines += [f"  {classifier}" for classifier in details.classifiers]
        lines.append("Entry-points:")
        lines += [f"  {entry.strip()}" for entry in details.entry_points]
        lines.append("Project-URLs:")
        lines += [f"  {url}" for url in details.project_urls]
    if files:
        lines.append("Files:")
        if details.files is None:
            lines.append("Cannot locate RECORD or installed-files.txt")
        else:
            lines += [f"  {path}" for path in details.files]
    return lines


def render_check(result: CheckResult) -> list[str]:
    """pip check's lines; "No broken requirements found." when there is nothing to say."""
    lines = [
        f"{m.project} {m.version} requires {m.dependency}, which is not installed."
        for m in result.missing
    ]
    lines += [
        f"{c.project} {c.version} has requirement {c.requirement}, but you have "
        f"{c.dependency} {c.installed_version}."
        for c in result.conflicts
    ]
    lines += [f"{u.name} {u.version} is not supported on this platform" for u in result.unsupported]
    if result.ok:
        lines.append("No broken requirements found.")
    return lines


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()

"""``torrip cache dir|info|list|remove|clean``: where the cache is, what it holds, and
emptying it, wholly or file by file.

Examples::

    torrip cache dir
    torrip cache info
    torrip cache list numpy
    torrip cache remove "torch*"
    torrip cache clean --cache-dir /tmp/torrip-cache
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from torrip.cli.options import add_general_options, settings_from_args
from torrip.cli.output import Output, plural

if TYPE_CHECKING:
    from pathlib import Path

    from torrip.cache import CacheEntry
    from torrip.cachedir import CacheUsage

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["format_size", "register", "render_usage"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="Inspect and clean torrip's cache.",
        description="Inspect and clean torrip's cache of distribution files, package "
        "metadata and index pages (TORRIP_CACHE_DIR or --cache-dir moves it).",
    )
    parser.set_defaults(run=lambda args, output: _usage(parser))
    commands = parser.add_subparsers(title="Subcommands", dest="cache_command", metavar="<sub>")

    directory = commands.add_parser(
        "dir", help="Show the cache directory.", description="Print the cache directory."
    )
    add_general_options(directory)
    directory.set_defaults(run=run_dir)

    info = commands.add_parser(
        "info",
        help="Show the cache's location and size, per area.",
        description="Show where the cache is, and how many files and bytes each of its "
        "areas (dists-v1, unpacked-v1, metadata-v1, http-v1, interpreters-v1, lockfiles-v1, "
        "resolutions-v1) holds.",
    )
    add_general_options(info)
    info.set_defaults(run=run_info)

    listing = commands.add_parser(
        "list",
        help="List the cached distribution files.",
        description="List the cached distribution files whose project matches PATTERN (a "
        "name or a glob, such as numpy or 'torch*'; a pattern with a version, such as "
        "numpy-2.*, matches file names), as pip cache list.",
    )
    listing.add_argument("pattern", nargs="?", default="*", metavar="PATTERN")
    listing.add_argument(
        "--format",
        dest="list_format",
        choices=("human", "abspath"),
        default="human",
        help="human (default): names and sizes; abspath: one path per line.",
    )
    add_general_options(listing)
    listing.set_defaults(run=run_list)

    remove = commands.add_parser(
        "remove",
        help="Remove cached distribution files.",
        description="Remove the cached distribution files that PATTERN matches (as for "
        "list), with their unpacked trees and torrents, as pip cache remove.",
    )
    remove.add_argument("pattern", metavar="PATTERN")
    add_general_options(remove)
    remove.set_defaults(run=run_remove)

    clean = commands.add_parser(
        "clean",
        aliases=["purge"],  # pip's name for it
        help="Remove everything from the cache.",
        description="Remove every cached file, like pip cache purge (without asking). "
        "Downloads another torrip process is writing are left alone.",
    )
    add_general_options(clean)
    clean.set_defaults(run=run_clean)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_dir(args: argparse.Namespace, output: Output) -> int:
    settings, _ = settings_from_args(args)
    output.data(str(settings.cache_dir))
    return 0


def run_info(args: argparse.Namespace, output: Output) -> int:
    from torrip.cachedir import measure_cache

    settings, _ = settings_from_args(args)
    for line in render_usage(measure_cache(settings.cache_dir)):
        output.info(line)
    if settings.no_cache:
        output.warning("the cache is disabled (--no-cache-dir or no_cache in the settings)")
    return 0


def run_clean(args: argparse.Namespace, output: Output) -> int:
    from torrip.cachedir import clean_cache

    settings, _ = settings_from_args(args)
    result = clean_cache(settings.cache_dir)
    output.info(
        f"Files removed: {result.files_removed}, {_bytes(result.bytes_freed)} freed"
        if result.files_removed
        else "Nothing to remove: the cache is empty"
    )
    if result.after.files:
        output.detail(f"kept {result.after.files} partial downloads another torrip is writing")
    return 0


def run_list(args: argparse.Namespace, output: Output) -> int:
    settings, _ = settings_from_args(args)
    found = _matching(settings.cache_dir, args.pattern)
    if args.list_format == "abspath":
        for entry in found:
            output.data(str(entry.path))
        return 0
    if not found:
        everything = args.pattern == "*"
        output.info(
            "No cached files." if everything else f"No cached files match {args.pattern!r}."
        )
        return 0
    output.info("Cache contents:\n")
    for entry in found:
        output.info(f" - {entry.filename} ({format_size(entry.size)})")
    return 0


def run_remove(args: argparse.Namespace, output: Output) -> int:
    from torrip.cache import DistributionCache, UnpackedCache

    settings, _ = settings_from_args(args)
    found = _matching(settings.cache_dir, args.pattern)
    if not found:
        output.warning(f"no cached files match {args.pattern!r}")
    store = DistributionCache(settings.cache_dir)
    unpacked = UnpackedCache(settings.cache_dir)
    freed = 0
    for sha256 in dict.fromkeys(entry.sha256 for entry in found):
        freed += store.remove(sha256)
        if unpacked.entry_dir(sha256).exists():
            unpacked.discard(sha256)
    output.info(f"Files removed: {len(found)} ({format_size(freed)})")
    return 0


def _matching(cache_dir: Path, pattern: str) -> list[CacheEntry]:
    """Cached files whose project matches ``pattern`` (names compared normalized), or whose
    file name does when the pattern holds a version (``numpy-2.*``), sorted by name."""
    import fnmatch

    from packaging.utils import canonicalize_name

    from torrip.cache import DistributionCache
    from torrip.index.links import Link

    project_pattern = canonicalize_name(pattern)  # a glob's * and ? are kept
    found = []
    for entry in DistributionCache(cache_dir).entries():
        parsed = Link(entry.filename, url="").parsed
        if (parsed is not None and fnmatch.fnmatchcase(parsed[0], project_pattern)) or (
            "-" in pattern and fnmatch.fnmatch(entry.filename.lower(), pattern.lower() + "*")
        ):
            found.append(entry)
    return sorted(found, key=lambda entry: entry.filename.lower())


def render_usage(usage: CacheUsage) -> list[str]:
    """Cache location, then one line per area: label (folder): files, bytes."""
    lines = [f"Cache location: {usage.root}"]
    for area in usage.areas:
        files = plural(area.files, "file")
        lines.append(f"{area.label} ({area.name}): {files}, {_bytes(area.size)}")
    lines.append(f"Total: {plural(usage.files, 'file')}, {_bytes(usage.size)}")
    return lines


def _bytes(count: int) -> str:
    exact = f"{count:,} byte" + ("" if count == 1 else "s")
    return exact if count < 1000 else f"{exact} ({format_size(count)})"


def format_size(count: int) -> str:
    """Decimal units, as pip prints sizes: 999 bytes, 1.5 kB, 12.3 MB, 1.2 GB."""
    if count < 1000:
        return f"{count} bytes"
    size, unit = count / 1000, "kB"
    for bigger in ("MB", "GB", "TB"):
        if size < 1000:
            break
        size, unit = size / 1000, bigger
    return f"{size:.1f} {unit}"

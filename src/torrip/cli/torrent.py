"""``torrip torrent make|check|show``: the recipe's torrents, by hand.

Examples::

    torrip torrent make dist/demo-1.0-py3-none-any.whl --web-seed https://files.example/demo.whl
    torrip torrent check demo-1.0-py3-none-any.whl.torrent dist/demo-1.0-py3-none-any.whl
    torrip torrent show demo-1.0-py3-none-any.whl.torrent --json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from torrip.cli.options import add_verbosity_options
from torrip.cli.output import Output
from torrip.errors import TorrentError
from torrip.transport.recipe import (
    MAX_TORRENT_BYTES,
    RECIPE_VERSION,
    TorrentFile,
    follows_recipe,
    make_torrent,
    parse_torrent,
    piece_length_for,
    verify_file,
)

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "torrent",
        help="make, check and show the torrent of a distribution file",
        description=f"Torrents of distribution files by torrip's recipe {RECIPE_VERSION} "
        "(see docs/torrent-recipe.md): anyone holding a file computes the same torrent.",
    )
    parser.set_defaults(run=lambda args, output: _usage(parser))
    commands = parser.add_subparsers(title="Subcommands", dest="torrent_command", metavar="<sub>")

    make = commands.add_parser(
        "make",
        help="write the recipe torrent of FILE and print its magnet link",
        description="Write the recipe torrent of FILE and print its magnet link. "
        "Web seeds and trackers do not change the infohashes.",
    )
    make.add_argument("file", metavar="FILE", type=Path)
    make.add_argument(
        "--web-seed",
        dest="web_seeds",
        metavar="URL",
        action="append",
        default=[],
        help="a URL of the file itself (url-list); repeat for several",
    )
    make.add_argument(
        "--tracker",
        dest="trackers",
        metavar="URL",
        action="append",
        default=[],
        help="a tracker announce URL; repeat for several",
    )
    make.add_argument(
        "--name", help="the file name in the torrent (default: FILE's name)", default=None
    )
    make.add_argument(
        "-o", "--output", metavar="OUT", type=Path, help="where to write (default: FILE.torrent)"
    )
    add_verbosity_options(make)
    make.set_defaults(run=run_make)

    check = commands.add_parser(
        "check",
        help="check that TORRENT describes FILE exactly (exit 1 if not)",
        description="Check that TORRENT is a valid torrent of FILE: one file of the expected "
        "name and size, metadata within torrip's limits, every v1 and v2 piece hash right.",
    )
    check.add_argument("torrent", metavar="TORRENT", type=Path)
    check.add_argument("file", metavar="FILE", type=Path)
    check.add_argument(
        "--name", help="the file name the torrent must carry (default: FILE's name)", default=None
    )
    add_verbosity_options(check)
    check.set_defaults(run=run_check)

    show = commands.add_parser(
        "show",
        help="show a torrent's name, size, pieces, infohashes, sources and magnet link",
        description="Show what a torrent holds. The torrent is parsed and checked for "
        "structure, not against a file (use `torrip torrent check` for that).",
    )
    show.add_argument("torrent", metavar="TORRENT", type=Path)
    show.add_argument("--json", action="store_true", help="print one JSON object")
    add_verbosity_options(show)
    show.set_defaults(run=run_show)


def run_make(args: argparse.Namespace, output: Output) -> int:
    path: Path = args.file
    if not path.is_file():
        raise TorrentError(f"{path} is not a file")
    torrent = make_torrent(path, name=args.name, web_seeds=args.web_seeds, trackers=args.trackers)
    destination: Path = args.output or path.with_name(path.name + ".torrent")
    _write_atomically(destination, torrent.data)
    output.detail(
        f"wrote {destination}: {torrent.name}, {torrent.length} bytes, "
        f"{torrent.piece_count} pieces of {_size(torrent.piece_length)}"
    )
    output.info(torrent.magnet())
    return 0


def run_check(args: argparse.Namespace, output: Output) -> int:
    source = str(args.torrent)
    torrent = _load(args.torrent)
    if not args.file.is_file():
        raise TorrentError(f"{args.file} is not a file")
    try:
        verify_file(torrent, args.file, filename=args.name)
    except TorrentError as error:
        raise TorrentError(
            f"not a valid torrent of {args.file}: {error.reason}",
            source=source,
            hint="Discard this torrent; `torrip torrent make FILE` writes the right one.",
        ) from error
    recipe = "yes"
    if not follows_recipe(torrent):
        recipe = (
            f"no (piece length {_size(torrent.piece_length)}, recipe {RECIPE_VERSION} uses "
            f"{_size(piece_length_for(torrent.length))})"
        )
    output.info(f"{source}: valid for {args.file} ({torrent.piece_count} pieces checked)")
    output.info(f"recipe {RECIPE_VERSION}: {recipe}")
    return 0


def run_show(args: argparse.Namespace, output: Output) -> int:
    torrent = _load(args.torrent)
    facts = describe(torrent)
    if args.json:
        output.out.print(json.dumps(facts, indent=2), markup=False, emoji=False, highlight=False)
        return 0
    rows = [
        ("name", torrent.name),
        ("size", f"{torrent.length} bytes"),
        ("piece length", f"{_size(torrent.piece_length)} ({torrent.piece_count} pieces)"),
        ("recipe", str(RECIPE_VERSION) if facts["recipe"] else "none (another piece length)"),
        ("infohash v1", torrent.btih),
        ("infohash v2", torrent.infohash_v2),
        ("web seeds", ", ".join(torrent.web_seeds) or "none"),
        ("trackers", ", ".join(torrent.trackers) or "none"),
        ("magnet", torrent.magnet()),
    ]
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        output.info(f"{label + ':':<{width}} {value}")
    return 0


def describe(torrent: TorrentFile) -> dict[str, Any]:
    """The JSON form of ``torrent show``."""
    return {
        "name": torrent.name,
        "size": torrent.length,
        "piece_length": torrent.piece_length,
        "pieces": torrent.piece_count,
        "recipe": RECIPE_VERSION if follows_recipe(torrent) else None,
        "infohash_v1": torrent.btih,
        "infohash_v2": torrent.infohash_v2,
        "btih": torrent.btih,
        "btmh": torrent.btmh,
        "web_seeds": list(torrent.web_seeds),
        "trackers": list(torrent.trackers),
        "magnet": torrent.magnet(),
        "torrent_sha256": torrent.sha256,
    }


def _load(path: Path) -> TorrentFile:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_TORRENT_BYTES + 1)
    except OSError as error:
        raise TorrentError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        return parse_torrent(data)
    except TorrentError as error:
        raise TorrentError(error.reason, source=str(path), hint=error.hint) from error


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        temporary = Path(name)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            temporary.chmod(0o644)
            temporary.replace(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as error:
        raise TorrentError(f"cannot write {path}: {error.strerror or error}") from error


def _size(count: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= factor and count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

"""``torrip index build|serve``: publish a folder of wheels as an index with metadata and torrents.

torrip index build dist/ public/ --base-url https://pkgs.example.com/
torrip index serve public/ --port 8080
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import TYPE_CHECKING

from torrip.cli.options import add_verbosity_options
from torrip.cli.output import Output, plural
from torrip.errors import IndexBuildError, TorripError

if TYPE_CHECKING:
    from torrip.indexserver import RequestRecord

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

# The index server's formats, repeated here so `torrip --help` need not import the server.
FORMATS = ("json", "html")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "index",
        help="build or serve a package index with metadata and torrents",
        description="Build a static package index (PEP 503/691 pages, PEP 658 metadata, "
        "torrents) from a folder of distribution files, or serve one. See "
        "docs/torrent-index.md.",
    )
    parser.set_defaults(run=lambda args, output: _usage(parser))
    commands = parser.add_subparsers(title="Subcommands", dest="index_command", metavar="<sub>")

    build = commands.add_parser(
        "build",
        help="write a static index of the files in DIST_DIR to OUT_DIR",
        description="Write a static index of the wheels and sdists directly in DIST_DIR to "
        "OUT_DIR, which any web server can serve and pip, uv and torrip install from. "
        "Rebuilding only reads new or changed files; files gone from DIST_DIR leave the "
        "index. Exit status 1 if a file could not be indexed (the index is written "
        "without it).",
    )
    build.add_argument("dist_dir", metavar="DIST_DIR", type=Path)
    build.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    build.add_argument(
        "--base-url",
        metavar="URL",
        help="the URL OUT_DIR will be served at; pages then use absolute file URLs and "
        "torrents carry the file URL as a web seed (without it: relative URLs, no web seed)",
    )
    build.add_argument(
        "--no-torrents",
        dest="torrents",
        action="store_false",
        help="make no .torrent files and list no _torrent keys",
    )
    add_verbosity_options(build)
    build.set_defaults(run=run_build)

    serve = commands.add_parser(
        "serve",
        help="serve a built index over HTTP",
        description="Serve a folder written by `torrip index build` over HTTP, with PEP 691 "
        "content negotiation, byte ranges and revalidation. Fine for a team's private "
        "index; put a real web server in front of it for the internet.",
    )
    serve.add_argument("root", metavar="DIR", type=Path)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8080, help="port to listen on; 0 picks a free one (8080)"
    )
    serve.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=FORMATS,
        help="page formats to offer (default both); only 'html' acts like an old index",
    )
    add_verbosity_options(serve)
    serve.set_defaults(run=run_serve)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_build(args: argparse.Namespace, output: Output) -> int:
    from torrip.indexserver import build_index

    result = build_index(
        args.dist_dir, args.out_dir, base_url=args.base_url, torrents=args.torrents
    )
    for error in result.rejected:
        output.warning(f"skipped {error.message}")
    for warning in result.warnings:
        output.warning(warning)
    for name in result.removed:
        output.detail(f"removed {name} (no longer in {args.dist_dir})")
    output.info(
        f"Indexed {plural(len(result.files), 'file')} of "
        f"{plural(len(result.projects), 'project')} in "
        f"{result.out_dir} ({result.files_read} read, {result.torrents_made} torrents made, "
        f"{len(result.files) - result.files_read} unchanged)"
    )
    if result.rejected:
        output.print_error(
            f"{len(result.rejected)} file(s) could not be indexed; the index was written "
            "without them"
        )
        return 1
    return 0


def run_serve(args: argparse.Namespace, output: Output) -> int:
    from torrip.indexserver import IndexServer

    root: Path = args.root
    if not (root / "simple").is_dir():
        raise IndexBuildError(
            f"{root} holds no built index (no simple/ folder)",
            hint=f"Build one first: torrip index build DIST_DIR {root}",
        )

    def log(record: RequestRecord) -> None:
        extra = f" range={record.range}" if record.range else ""
        output.detail(f"{record.method} {record.path} {record.status} {record.bytes_sent}B{extra}")

    formats = tuple(dict.fromkeys(args.formats)) if args.formats else FORMATS
    try:
        server = IndexServer(root, host=args.host, port=args.port, on_request=log, formats=formats)
    except OSError as exc:
        raise TorripError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            hint="Pick another --port (0 picks a free one), or stop what uses this one.",
        ) from None
    output.info(f"Serving {root} at {server.url} (Ctrl-C to stop)")
    # The CLI turns the cyclic collector off for short commands; a server runs for days,
    # and every failed request's traceback is a cycle.
    gc.enable()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.wait_idle(timeout=5)  # let answers under way finish, and be logged
        output.info("stopped")
    return 0

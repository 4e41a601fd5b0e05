"""Entry point: the top-level parser and the error boundary."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from torrip import __version__
from torrip.cli import commands
from torrip.cli.output import Output
from torrip.errors import TorripError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torrip",
        description="Install Python packages, from PyPI and from peers.",
        usage="torrip <command> [options]",
    )
    parser.add_argument(
        "-V",
        "--version",
        action="version",
        version=f"torrip {__version__} (python {sys.version_info.major}.{sys.version_info.minor})",
    )
    subparsers = parser.add_subparsers(
        title="Commands", dest="command", metavar="<command>", prog="torrip"
    )
    for register in commands.REGISTRARS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    output = Output.from_args(args)
    try:
        code: int = args.run(args, output)
    except TorripError as error:
        output.error(error)
        return error.exit_code
    except KeyboardInterrupt:
        output.print_error("interrupted")
        return 130
    return code

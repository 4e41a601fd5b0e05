"""Entry point: the top-level parser and the error boundary."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from torrip import __version__
from torrip.cli import commands
from torrip.cli.output import Output
from torrip.errors import Terminated, TorripError

__all__ = ["build_parser", "entry", "main"]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line's parser; with ``only`` (a command's name), the parser of
    that command alone, which parses its command lines the same."""
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
    for register in commands.registrars(only):
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # A command comes first (the top level has only -h and -V): build just its parser.
    parser = build_parser(only=argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    output = Output.from_args(args)
    # A command lasts seconds and allocates mostly acyclic objects (versions, requirements,
    # one tuple per installed file): the cyclic collector's passes over them cost 0.1-0.2 s
    # of a large warm install and free next to nothing. The agent, which runs for days,
    # turns it back on (agent.server).
    collecting = gc.isenabled()
    gc.disable()
    try:
        code: int = args.run(args, output)
    except TorripError as error:
        output.error(error)
        return error.exit_code
    except Terminated as stop:  # the environment was put back first (install.signals)
        import signal

        output.print_error(f"terminated ({signal.Signals(stop.signum).name})")
        return 128 + stop.signum
    except KeyboardInterrupt:
        output.print_error("interrupted")
        return 130
    finally:
        if collecting:
            gc.enable()
    return code


def entry(before_exit: Callable[[], None] | None = None) -> NoReturn:
    """The ``torrip`` command: ``main``, then exit without the interpreter's teardown
    (after ``before_exit``, which starts a warm-start server for the next command).

    Every file is written and closed, every thread and process joined, when ``main``
    returns; tearing down hundreds of modules' objects would only add 50-70 ms.
    """
    # Off for good, not only during the command: turned back on, the collector's first
    # pass over everything the command allocated would cost 20-30 ms on the way out.
    gc.disable()
    try:
        code = main()
    except KeyboardInterrupt:  # while the command's modules load, before ``main`` catches it
        sys.stderr.write("error: interrupted\n")
        code = 130
    with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe
        sys.stdout.flush()
        sys.stderr.flush()
    if before_exit is not None:
        before_exit()
    os._exit(code)

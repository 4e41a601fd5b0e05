"""Rendering for people: rich on a terminal, plain lines otherwise; -q silences, -v tells more."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torrip.credentials import redact
from torrip.errors import TorripError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["RESOLVING", "Output", "plural"]


def plural(count: int, noun: str) -> str:
    """ "1 file", "2 files": ``noun`` is singular and takes an s."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# What a terminal is told while torrip works and nothing else shows (see Output.status).
RESOLVING = "Resolving dependencies…"


@dataclass
class Output:
    verbosity: int = 0
    console: Console | None = None
    error_console: Console | None = None
    _status_shown: bool = field(default=False, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Output:
        verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
        return cls(verbosity=verbosity)  # consoles are made on first use: rich is slow to import

    @property
    def out(self) -> Console:
        if self.console is None:
            from rich.console import Console

            self.console = Console(highlight=False, soft_wrap=True)
        return self.console

    @property
    def err(self) -> Console:
        if self.error_console is None:
            from rich.console import Console

            self.error_console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self.error_console

    @contextlib.contextmanager
    def status(self, message: str) -> Iterator[None]:
        """``message`` on a terminal's last line while the block runs, then erased: what
        torrip does while nothing else shows (a resolution can take seconds on a slow
        network). A plain line, not a spinner: a spinner's thread would still run when the
        install forks its unpacking workers. Nothing at -q, at -v (the details tell), or
        when stderr is no terminal."""
        stream = sys.stderr
        if self.verbosity != 0 or not stream.isatty():
            yield
            return
        stream.write(message)
        stream.flush()
        self._status_shown = True
        try:
            yield
        finally:
            self._clear_status()

    def _clear_status(self) -> None:
        """Erase the status line before anything else is printed over it."""
        if self._status_shown:
            self._status_shown = False
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

    def info(self, message: str) -> None:
        """Normal output; silenced by -q."""
        if self.verbosity >= 0:
            self._clear_status()
            self.out.print(redact(message), markup=False)

    def data(self, text: str) -> None:
        """Output for machines and pipes (freeze lines, JSON, scripts): verbatim, never silenced."""
        file = self.out.file
        file.write(text if text.endswith("\n") else text + "\n")
        file.flush()

    def detail(self, message: str) -> None:
        """Only with -v: why torrip chose what it chose. Goes to stderr."""
        if self.verbosity >= 1:
            self.err.print(redact(message), markup=False, style="dim")

    def warning(self, message: str) -> None:
        if self.verbosity >= -1:
            self._clear_status()
            self.err.print(f"warning: {redact(message)}", markup=False, style="yellow")

    def print_error(self, message: str) -> None:
        self._clear_status()
        self.err.print(f"error: {redact(message)}", markup=False, style="bold red")

    def error(self, error: TorripError) -> None:
        self.print_error(error.message)
        if error.hint:
            self.err.print(f"hint: {redact(error.hint)}", markup=False, style="cyan")

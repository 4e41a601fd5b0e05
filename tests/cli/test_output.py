"""What people see: the status line a terminal shows while torrip resolves."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from torrip.cli.output import RESOLVING, Output


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    """stderr a terminal. Set when the test runs: pytest's capturing sets sys.stderr anew
    between a fixture and the test."""
    return Terminal()


def _on(screen: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", screen)


def _output(screen: io.StringIO, verbosity: int = 0) -> Output:
    console = Console(file=screen, force_terminal=False, highlight=False, soft_wrap=True)
    return Output(verbosity=verbosity, console=console, error_console=console)


def test_the_status_shows_while_resolving_and_is_erased(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on(terminal, monkeypatch)
    output = _output(terminal)
    with output.status(RESOLVING):
        assert terminal.getvalue() == RESOLVING
    output.info("Would install six-1.17.0")
    assert terminal.getvalue() == RESOLVING + "\r\x1b[2K" + "Would install six-1.17.0\n"


def test_what_is_printed_meanwhile_erases_it_first(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on(terminal, monkeypatch)
    output = _output(terminal)
    with output.status(RESOLVING):
        output.warning("the index is slow")
        output.info("still resolving")
    assert terminal.getvalue() == (
        RESOLVING + "\r\x1b[2K" + "warning: the index is slow\nstill resolving\n"
    )


@pytest.mark.parametrize("verbosity", [-1, 1])
def test_no_status_when_quiet_or_verbose(
    terminal: Terminal, verbosity: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on(terminal, monkeypatch)
    with _output(terminal, verbosity).status(RESOLVING):
        pass
    assert terminal.getvalue() == ""


def test_no_status_on_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    _on(pipe, monkeypatch)
    with _output(pipe).status(RESOLVING):
        pass
    assert pipe.getvalue() == ""

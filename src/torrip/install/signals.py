"""Signals while an environment changes: a termination undoes the change as Ctrl-C does,
and the undoing is not cut short by a signal.

A process killed by SIGTERM's default action (``timeout``, a CI job cancelled, ``docker
stop``) would leave an install half done. Inside ``terminations_interrupt`` SIGTERM and
SIGHUP raise ``Terminated`` instead (a KeyboardInterrupt, so every ``except BaseException``
that rolls back on Ctrl-C rolls back on them too); a signal the program ignores (``nohup``)
or handles itself stays so. Inside ``interrupts_deferred`` (a rollback) SIGINT, SIGTERM and
SIGHUP are noted and acted on once the block is done.

Usage::

    with environment_lock(environment), terminations_interrupt():
        try:
            change()
        except BaseException:
            with interrupts_deferred():
                undo()
            raise
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from torrip.errors import Terminated

__all__ = ["interrupts_deferred", "terminations_interrupt"]

_TERMINATIONS: tuple[int, ...] = tuple(  # no SIGHUP on Windows
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
_INTERRUPTS = (signal.SIGINT, *_TERMINATIONS)


@contextlib.contextmanager
def terminations_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated in the block, where their action is the default
    (signal handlers belong to the main thread: elsewhere the block changes nothing)."""
    with _handled(_TERMINATIONS, _raise_terminated, instead_of=lambda h: h is signal.SIG_DFL):
        yield


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP received in the block are raised again after it, to the
    handlers they had (which raise KeyboardInterrupt, Terminated, or end the process)."""
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    try:
        with _handled(_INTERRUPTS, note, instead_of=lambda h: h not in (signal.SIG_IGN, None)):
            yield
    finally:
        if received:
            signal.raise_signal(received[0])


@contextlib.contextmanager
def _handled(
    signums: tuple[int, ...],
    handler: Callable[[int, FrameType | None], None],
    *,
    instead_of: Callable[[object], bool],
) -> Iterator[None]:
    """``handler`` during the block for each of ``signums`` whose handler now passes
    ``instead_of``, in the main thread (the only one that may set them)."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            if instead_of(signal.getsignal(signum)):
                previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, was in previous.items():
            signal.signal(signum, was)


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)

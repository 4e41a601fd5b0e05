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
from collections.abc import Iterator
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
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in _TERMINATIONS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            previous[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP received in the block are raised again after it, to the
    handlers they had (which raise KeyboardInterrupt, Terminated, or end the process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {}
    for signum in _INTERRUPTS:
        if signal.getsignal(signum) not in (signal.SIG_IGN, None):
            previous[signum] = signal.signal(signum, note)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)

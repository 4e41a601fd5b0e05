"""A share of a job done on the other core by a forked process, which answers in a few bytes.

Placing and checking the files of a warm install is one system call per file (11,528 for
jupyterlab) with a little Python around each: a second thread only passes the GIL back
and forth between them, while a forked process does its share at the same time. It
inherits what it works on, so nothing is sent to it; it answers through a pipe.

Usage::

    share = fork_share(lambda: check(first_half))   # None: no fork, do it all here
    rest = check(second_half)
    answer = share.answer() if share else ...       # bytes, once it has ended; None if killed
    # on an error here: share.stop() before anything else is undone
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["ForkedShare", "die_with_parent", "fork_share", "only_thread"]

_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ForkedShare:
    """A forked process doing its share; ``answer`` or ``stop`` it exactly once."""

    def __init__(self, pid: int, report: int) -> None:
        self._pid = pid
        self._report = report

    def answer(self) -> bytes | None:
        """What it said, once it has ended; None if it said nothing (killed, say)."""
        chunks = []
        try:
            while chunk := os.read(self._report, 4096):
                chunks.append(chunk)
        finally:  # interrupted: it stops before the caller undoes anything
            self.stop()
        return b"".join(chunks) or None

    def stop(self) -> None:
        """End it (if it still runs) and wait for it."""
        if self._pid == 0:
            return
        pid, self._pid = self._pid, 0
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        os.close(self._report)


def fork_share(work: Callable[[], bytes]) -> ForkedShare | None:
    """A forked process running ``work`` (which must not raise) and answering what it
    returns; None where no fork is made: other systems than Linux (macOS's system
    libraries are not fork-safe), one core, another thread running now (waiting for one,
    say the swarm's closing, would cost more), or no fork to be had (a process limit)."""
    if not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2:
        return None
    if not only_thread(timeout=0.0):
        return None
    report, answer = os.pipe()
    parent = os.getpid()
    # Held across the fork: a Ctrl-C in the handlers fork() runs (logging's) would be
    # swallowed there; held, it reaches this process after, where it undoes the install.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        os.close(report)
        os.close(answer)
        return None
    if pid == 0:  # the fork: work, answer, and end without cleaning up
        try:
            die_with_parent(parent=parent)
            # Ctrl-C is the parent's to handle; a termination the parent does not ignore
            # just ends the fork (the parent undoes what it did).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for signum in _HELD[1:]:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            os.close(report)
            with contextlib.suppress(BaseException):
                os.write(answer, work())
        finally:
            os._exit(0)
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    os.close(answer)
    return ForkedShare(pid, report)


def die_with_parent(signum: int = signal.SIGKILL, *, parent: int | None = None) -> None:
    """Linux's PR_SET_PDEATHSIG: ``signum`` to this process when its parent ends, and at
    once if ``parent`` (the pid it was forked from) ended already. A process forked for a
    command must not outlive it: killed outright (SIGTERM's default action, a timeout), the
    command would leave it waiting forever, holding the caller's pipes open."""
    import ctypes

    set_parent_death_signal = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(set_parent_death_signal, signum, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def only_thread(timeout: float) -> bool:
    """Whether this thread is the only one, once torrip's own threads that are ending (the
    resolver's pool) have had ``timeout`` seconds to end; a fork copies other threads'
    locks (OpenSSL's, the allocator's) in whatever state they are in, and a child could
    wait on them forever. Another program's threads (torrip run inside it) would not end
    for it: no waiting for them."""
    this = threading.current_thread()
    others = [thread for thread in threading.enumerate() if thread is not this]
    if any(not thread.name.startswith("torrip-") for thread in others):
        return False
    deadline = time.monotonic() + timeout
    for thread in others:
        thread.join(max(0.0, deadline - time.monotonic()))
    return threading.active_count() == 1

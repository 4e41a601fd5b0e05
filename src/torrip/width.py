"""How many requests go to one server at once: few while it is near, all allowed once the
first request shows that it is far, one at a time if it shows that it is on this machine.

Over loopback or a LAN a request is mostly this process's CPU (HTTP parsing, hashing,
writing files), and more of them at once on one GIL only slow each other down; across the
internet they overlap latency. So a ``Width`` starts narrow, and the first request that
finishes its measurement (``Stopwatch``) decides, once, whether to open it wide (or, given
a ``local`` width, to narrow it further for a server that answers at once).

    width = Width(near=3, far=16, local=1, on_widen=lambda waited, extra: ...)
    with width:                             # one request
        if width.measured:
            return send()
        watch = Stopwatch()
        answer = send()
        width.observe(watch.waited())
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from types import TracebackType

__all__ = ["FAR_WAIT", "LOCAL_WAIT", "Stopwatch", "Width"]

# The first request waiting this long (s) on something other than this process's CPU (the
# network, the server) means a far server, where overlapping requests pays. Measured against
# the whole process's CPU time, not the request thread's: the time a thread waits for the
# GIL (while other threads parse pages or the target's tags are computed) is no distance.
# The first request to a host opens its connection, so the wait is about three round trips
# (TCP, TLS 1.3, the request) and the server's time: under 1 ms from loopback, 2 ms from a
# Python relay on loopback, 5-9 ms from the PyPI proxy here (in the same data centre, where
# 16 requests at once resolved jupyterlab in 0.61 s against 0.55 s with 3: their TLS
# handshakes cost more than the overlap saves), 15 ms or more from 5 ms away, 150 ms or
# more over a 50 ms link.
FAR_WAIT = 0.015
# Waiting less than this (s) means a server on this machine or next to it: the mirror on
# loopback here measures -0.1-0.2 ms, a Python server on loopback about 2 ms, the PyPI
# proxy 6-8 ms. Its requests cost only CPU, and one at a time resolved jupyterlab from the
# loopback mirror in 0.24 s against 0.32 s with three (six cold dry-runs each); from the
# PyPI proxy one at a time took 0.90 s against 0.54 s.
LOCAL_WAIT = 0.001


class Stopwatch:
    """Time since it was made that this process did not spend on its CPU."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._cpu = time.process_time()

    def waited(self) -> float:
        return (time.perf_counter() - self.started) - (time.process_time() - self._cpu)


class Width:
    """A gate for the requests to one server: ``near`` at once, ``far`` once a request's
    ``waited`` time said the server is far, ``local`` (if given) once it said the server
    answers at once. Use it as a context manager, one per request."""

    def __init__(
        self,
        near: int,
        far: int,
        *,
        local: int | None = None,
        on_widen: Callable[[float, int], None] | None = None,
        armed: bool = True,
    ) -> None:
        self.near = max(1, min(near, far))
        self.far = max(1, far)
        self.local = self.near if local is None else max(1, min(local, self.near))
        self._limit = self.near
        self._in_flight = 0
        self._changed = threading.Condition()
        self._measured = False
        self._on_widen = on_widen
        # Requests timed from before this are not measured (``arm``).
        self._armed_at = 0.0 if armed else math.inf

    def arm(self) -> None:
        """Measure from now on. A request timed while this process did other work on its
        other core (importing, say) reads as nearer than it is, even below zero: the
        process's CPU then outruns the clock. (torrip's early index requests run beside
        the planner's imports, and arm their width once those are done.)"""
        with self._changed:
            self._armed_at = time.perf_counter()

    @property
    def measured(self) -> bool:
        """Whether the width is decided: requests need no timing any more."""
        return self._measured

    def observe(self, waited: float) -> None:
        """The first call decides: ``waited`` >= FAR_WAIT opens the gate to ``far``
        (``on_widen(waited, extra)`` is told how many more requests may go at once), below
        LOCAL_WAIT it narrows to ``local``; requests already in flight finish."""
        with self._changed:
            if self._measured:
                return
            self._measured = True
            if waited >= FAR_WAIT:
                limit = self.far
            elif waited < LOCAL_WAIT:
                limit = self.local
            else:
                return
            extra, self._limit = limit - self._limit, limit
            self._changed.notify_all()
        if extra > 0 and self._on_widen is not None:
            self._on_widen(waited, extra)

    def observe_since(self, watch: Stopwatch) -> None:
        """``observe`` the time ``watch`` has waited, if it was started once armed."""
        if watch.started >= self._armed_at:
            self.observe(watch.waited())

    def __enter__(self) -> None:
        with self._changed:
            while self._in_flight >= self._limit:
                self._changed.wait()
            self._in_flight += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._changed:
            self._in_flight -= 1
            self._changed.notify()

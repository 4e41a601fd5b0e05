"""How many requests go to one server at once: few while it is near, all allowed once the
first request shows that it is far.

Over loopback or a LAN a request is mostly this process's CPU (HTTP parsing, hashing,
writing files), and more of them at once on one GIL only slow each other down; across the
internet they overlap latency. So a ``Width`` starts narrow, and the first request that
finishes its measurement (``Stopwatch``) decides, once, whether to open it wide.

    width = Width(near=3, far=16, on_widen=lambda waited, extra: ...)
    with width:                             # one request
        if width.measured:
            return send()
        watch = Stopwatch()
        answer = send()
        width.observe(watch.waited())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

__all__ = ["FAR_WAIT", "Stopwatch", "Width"]

# The first request waiting this long (s) on something other than this process's CPU (the
# network, the server) means a far server, where overlapping requests pays. Measured against
# the whole process's CPU time, not the request thread's: the time a thread waits for the
# GIL (while other threads parse pages or the target's tags are computed) is no distance.
# Counted as one, it put a loopback mirror's first request at 6-56 ms (a third of runs
# widened), and a loopback relay's either side of a 15 ms bar (its resolution took 0.27 or
# 0.55 s by the side). Against the process's CPU: under 1 ms from loopback, 3-8 ms from a
# PyPI proxy in the same data centre, 150 ms or more over a 50 ms link.
FAR_WAIT = 0.002


class Stopwatch:
    """Time since it was made that this process did not spend on its CPU."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._cpu = time.process_time()

    def waited(self) -> float:
        return (time.perf_counter() - self._started) - (time.process_time() - self._cpu)


class Width:
    """A gate for the requests to one server: ``near`` at once, ``far`` once a request's
    ``waited`` time said the server is far. Use it as a context manager, one per request."""

    def __init__(
        self, near: int, far: int, *, on_widen: Callable[[float, int], None] | None = None
    ) -> None:
        self.near = max(1, min(near, far))
        self.far = max(1, far)
        self._gate = threading.Semaphore(self.near)
        self._lock = threading.Lock()
        self._measured = False
        self._on_widen = on_widen

    @property
    def measured(self) -> bool:
        """Whether the width is decided: requests need no timing any more."""
        return self._measured

    def observe(self, waited: float) -> None:
        """The first call decides: ``waited`` >= FAR_WAIT opens the gate to ``far``;
        ``on_widen(waited, extra)`` is told how many more requests may go at once."""
        with self._lock:
            if self._measured:
                return
            self._measured = True
            extra = self.far - self.near if waited >= FAR_WAIT else 0
        if extra > 0:
            if self._on_widen is not None:
                self._on_widen(waited, extra)
            self._gate.release(extra)

    def observe_since(self, watch: Stopwatch) -> None:
        """``observe`` the time ``watch`` has waited."""
        self.observe(watch.waited())

    def __enter__(self) -> None:
        self._gate.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._gate.release()

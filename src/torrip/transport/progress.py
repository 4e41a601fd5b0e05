"""Showing fetches to people: rich bars on a terminal, one plain line per file otherwise.

    with RichProgress(output.err) as progress:     # NullProgress() at -q
        results = fetcher.fetch_all(requests, progress)

On a terminal: one bar for all bytes with the overall speed, and one bar per file
larger than 1 MB while it downloads. Elsewhere (a log, CI): a line per finished file.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

if TYPE_CHECKING:
    from torrip.transport.fetch import FetchResult, FileRequest

__all__ = ["LARGE_FILE", "NullProgress", "RichProgress"]

# Files above this size get a bar of their own.
LARGE_FILE = 1_000_000


class NullProgress:
    """Shows nothing (``-q``)."""

    def start(self, request: FileRequest, total: int | None) -> None:
        pass

    def advance(self, request: FileRequest, n: int, source: str) -> None:
        pass

    def finish(self, result: FetchResult) -> None:
        pass


class RichProgress:
    """A FetchProgress drawing on ``console``; use it as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
            disable=not self.live,
        )
        self._overall = self._progress.add_task("Fetching", total=0)
        self._files: dict[FileRequest, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start(self, request: FileRequest, total: int | None) -> None:
        with self._lock:
            overall = self._progress.tasks[self._overall].total or 0
            self._progress.update(self._overall, total=overall + (total or 0))
            if self.live and total is not None and total > LARGE_FILE:
                self._files[request] = self._progress.add_task(request.filename, total=total)

    def advance(self, request: FileRequest, n: int, source: str) -> None:
        self._progress.advance(self._overall, n)
        task = self._files.get(request)
        if task is not None:
            self._progress.advance(task, n)

    def finish(self, result: FetchResult) -> None:
        with self._lock:
            task = self._files.pop(result.request, None)
            if task is not None:
                self._progress.remove_task(task)
        if not self.live:
            size = decimal(result.path.stat().st_size)
            self.console.print(
                f"fetched {result.request.filename} ({size}, {result.source})",
                markup=False,
                highlight=False,
            )

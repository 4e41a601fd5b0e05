"""Showing fetches to people: rich bars on a terminal, one plain line per file otherwise.

    with RichProgress(output.err) as progress:     # NullProgress() at -q
        results = fetcher.fetch_all(requests, progress)

On a terminal: one bar for all bytes with the overall speed and, once peers take
part, how much of what arrived came from them ("14.2 MB/s · 83% from 5 peers"); and
one bar per file larger than 1 MB while it downloads. Elsewhere (a log, CI): a line
per finished file, naming where its bytes came from.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only when a display is made: 25 ms a run with -q
    from rich.console import Console
    from rich.progress import TaskID

    from torrip.transport.fetch import FetchResult, FileRequest

__all__ = ["LARGE_FILE", "NullProgress", "RichProgress", "describe_sources", "file_label"]

# Files above this size get a bar of their own.
LARGE_FILE = 1_000_000
# Characters of a bar's label at most (longer ones end in an ellipsis).
LABEL_WIDTH = 32


class NullProgress:
    """Shows nothing (``-q``)."""

    def expect(self, requests: Sequence[FileRequest]) -> None:
        pass

    def start(self, request: FileRequest, total: int | None) -> None:
        pass

    def advance(self, request: FileRequest, n: int, source: str) -> None:
        pass

    def peers(self, request: FileRequest, count: int) -> None:
        pass

    def finish(self, result: FetchResult) -> None:
        pass


class RichProgress:
    """A FetchProgress drawing on ``console``; use it as a context manager."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )
        from rich.table import Column

        self.console = console
        self.live = console.is_terminal
        self._progress = Progress(
            # A wheel's whole filename (tags and all) took the line and squeezed the bars.
            TextColumn(
                "{task.description}",
                table_column=Column(max_width=LABEL_WIDTH, no_wrap=True, overflow="ellipsis"),
            ),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[swarm]}"),
            console=console,
            transient=True,
            disable=not self.live,
        )
        self._overall = self._progress.add_task("Fetching", total=0, swarm="")
        self._files: dict[FileRequest, TaskID] = {}
        self._lock = threading.Lock()
        # Bytes that arrived over the network, and those of them from peers.
        self._arrived = 0
        self._from_peers = 0
        self._peers: dict[FileRequest, int] = {}
        self._expected: set[FileRequest] = set()  # counted in the overall total already

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

    def expect(self, requests: Sequence[FileRequest]) -> None:
        """The overall bar counts every file to download from the start: downloads wait
        their turn (a few at a time from a near host), and a total that grew as each
        began said little."""
        with self._lock:
            sized = [request for request in requests if request.size is not None]
            self._expected.update(sized)
            self._grow_total(sum(request.size or 0 for request in sized))

    def start(self, request: FileRequest, total: int | None) -> None:
        with self._lock:
            if request not in self._expected:
                self._grow_total(total or 0)
            if self.live and total is not None and total > LARGE_FILE:
                self._files[request] = self._progress.add_task(
                    file_label(request.filename), total=total, swarm=""
                )

    def advance(self, request: FileRequest, n: int, source: str) -> None:
        self._progress.advance(self._overall, n)
        task = self._files.get(request)
        if task is not None:
            self._progress.advance(task, n)
        if source in ("origin", "peers"):
            with self._lock:
                self._arrived += n
                if source == "peers":
                    self._from_peers += n
                self._show_swarm()

    def peers(self, request: FileRequest, count: int) -> None:
        with self._lock:
            self._peers[request] = count
            self._show_swarm()

    def finish(self, result: FetchResult) -> None:
        with self._lock:
            task = self._files.pop(result.request, None)
            if task is not None:
                self._progress.remove_task(task)
            if self._peers.pop(result.request, None) is not None:
                self._show_swarm()
        if not self.live:
            from rich.filesize import decimal

            size = decimal(result.path.stat().st_size)
            self.console.print(
                f"fetched {result.request.filename} ({size}, {describe_sources(result)})",
                markup=False,
                highlight=False,
            )

    def _grow_total(self, size: int) -> None:
        overall = self._progress.tasks[self._overall].total or 0
        self._progress.update(self._overall, total=overall + size)

    def _show_swarm(self) -> None:
        """Under the lock: "· 83% from 5 peers" once peers take part."""
        peers = sum(self._peers.values())
        if not self._from_peers and not peers:
            return
        share = 100 * self._from_peers // max(1, self._arrived)
        noun = "peer" if peers == 1 else "peers"
        self._progress.update(self._overall, swarm=f"· {share}% from {peers} {noun}")


def file_label(filename: str) -> str:
    """A file's bar says which package it is: "pydantic-core 2.50.5" for a wheel (as uv
    names its downloads), else the file's name."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        name, version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return filename
    return f"{name} {version}"


def describe_sources(result: FetchResult) -> str:
    """Where a file's bytes came from: "cache", "origin", or "swarm: 97% from peers"."""
    if result.source != "swarm":
        return result.source
    total = result.bytes.get("peers", 0) + result.bytes.get("origin", 0)
    share = 100 * result.bytes.get("peers", 0) // max(1, total)
    return f"swarm: {share}% from peers"

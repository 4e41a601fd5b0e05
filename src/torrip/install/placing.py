"""Put the files of unpacked trees at their destinations: hard links, else reflinks, else
copies; many at once on two cores, part of them by a forked process.

Making a link is kernel work: 11,528 of them (jupyterlab, warm) take 49 ms in one process.
A second thread only passes the GIL back and forth between one link and the next; a
forked process makes its share at the same time as this one (both halves: 27 ms; tmpfs,
2 cores). The fork inherits the list of files, so nothing is sent to it; it answers with
two numbers, and whatever it could not place, this process places itself (so a failure
is raised here, with its usual message).

Usage::

    placer = FilePlacer("hardlink")
    placer.place(source, target, executable)        # one file
    with Placement("hardlink", total=len(files)) as placement:
        for batch in batches_of(files):             # [(source, target, executable), ...]
            placement.add(batch)                    # claimed before: placed now, or later
        linked, copied = placement.finish()
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Literal

from torrip.closing import Closing
from torrip.errors import InstallError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no reflinks
    fcntl = None  # type: ignore[assignment]

__all__ = ["LINK_MODES", "FilePlacer", "FileToPlace", "LinkMode", "Placement", "only_thread"]

LinkMode = Literal["hardlink", "copy"]
LINK_MODES: tuple[LinkMode, ...] = ("hardlink", "copy")
FileToPlace = tuple[str, str, bool]
"""(source, target, executable)"""

# Linux's FICLONE ioctl: share the source's blocks (btrfs, XFS); fails at once elsewhere.
_FICLONE = 0x40049409
# link(2) failures that hold for every file of the file system: stop trying links.
_LINKS_UNSUPPORTED = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.ENOSYS}
# Below this many files a fork (2-3 ms with the copy-on-write faults that follow) costs
# about what it saves.
FORK_MIN_FILES = 1000
# The fork takes the files handed over first, from when they are this much of the total.
# Each file costs this process about as much to claim (a journal entry, its RECORD row,
# its directory) as to link: forked at two thirds, both end together.
FORK_SHARE = 0.66


class FilePlacer:
    """Puts a file of an unpacked tree at its destination: a hard link, else a reflink, else
    a copy. A kind that fails for a file-system reason is not tried again (thread-safe: the
    flags only ever go from True to False)."""

    def __init__(self, link_mode: LinkMode) -> None:
        self.try_links = link_mode == "hardlink"
        self.try_reflinks = fcntl is not None
        self.linked = 0
        self.copied = 0

    def place(self, source: str, target: str, executable: bool) -> None:
        if self.try_links:
            try:
                os.link(source, target)
                self.linked += 1
                return
            except FileNotFoundError:
                raise _gone_from_cache(source) from None
            except FileExistsError:
                raise
            except OSError as error:
                if error.errno in _LINKS_UNSUPPORTED:
                    self.try_links = False  # another file system, or links refused there
        self._copy(source, target, executable)
        self.copied += 1

    def place_each(self, files: Sequence[FileToPlace]) -> None:
        """Place ``files`` in order (``linked + copied`` say how many, if it raises)."""
        place = self.place
        for source, target, executable in files:
            place(source, target, executable)

    def _copy(self, source: str, target: str, executable: bool) -> None:
        """A new file (never the cache's inode): its mode is a fresh file's, plus x bits."""
        try:
            if not (self.try_reflinks and self._reflink(source, target)):
                shutil.copyfile(source, target)
        except FileNotFoundError as error:
            if error.filename == source:
                raise _gone_from_cache(source) from None
            raise
        if executable:
            mode = os.stat(target).st_mode
            os.chmod(target, mode | (mode & 0o444) >> 2)

    def _reflink(self, source: str, target: str) -> bool:
        with open(source, "rb") as original, open(target, "wb") as clone:
            try:
                fcntl.ioctl(clone.fileno(), _FICLONE, original.fileno())
            except OSError:
                self.try_reflinks = False
                return False
        return True


def _gone_from_cache(source: str) -> InstallError:
    return InstallError(
        f"{source} disappeared from torrip's unpacked cache during the install",
        hint="Something (torrip cache clean?) removed it meanwhile; run the install again.",
    )


class Placement(Closing):
    """The files of a transaction, placed as they are handed over (``add``), on two cores.

    With links expected, enough files (``total``), more than one core and no other thread
    running, a forked process places the files handed over first, from when they make up
    ``FORK_SHARE`` of the total: while it links them, this process goes on claiming and
    writing what comes next, then places the rest. ``finish`` waits for the fork and says
    how many files were (hard-)linked and how many copied; ``close`` (the end of ``with``)
    stops a fork still running, so that whatever undoes the transaction runs alone.

    Files handed over must have their targets claimed and their parents made, no two
    alike. Raises what placing a file raises (InstallError, OSError), from ``add`` or
    ``finish``; files placed before are left for the caller's journal to delete.
    """

    def __init__(self, link_mode: LinkMode, total: int) -> None:
        self._link_mode = link_mode
        self._placer = FilePlacer(link_mode)
        self._queued: list[FileToPlace] = []
        self._fork_at = (
            max(1, int(total * FORK_SHARE))
            if self._placer.try_links and total >= FORK_MIN_FILES
            else None
        )
        self._forked: tuple[int, int, list[FileToPlace]] | None = None  # report, pid, files

    def add(self, files: list[FileToPlace]) -> None:
        if self._fork_at is None:
            self._placer.place_each(files)
            return
        self._queued += files
        if len(self._queued) >= self._fork_at:
            self._fork_at = None
            self._fork_queued()

    def finish(self) -> tuple[int, int]:
        placer = self._placer
        placer.place_each(self._queued)  # never forked (too few came, or no fork)
        self._queued = []
        if self._forked is None:
            return placer.linked, placer.copied
        report, pid, files = self._forked
        answer = _read_report(report, pid)
        self._forked = None
        os.close(report)
        if answer is None:
            raise InstallError(
                "the process placing part of the files ended without saying what it did (killed?)",
                hint="Run the install again.",
            )
        linked, copied = answer
        if linked + copied < len(files):  # it stopped at one: here it fails again, or it
            placer.place_each(files[linked + copied :])  # was fleeting
        return placer.linked + linked, placer.copied + copied

    def close(self) -> None:
        if self._forked is not None:
            report, pid, _ = self._forked
            self._forked = None
            _stop(pid)
            os.close(report)

    def _fork_queued(self) -> None:
        files, self._queued = self._queued, []
        if _fork_pays():
            try:
                report, pid = _fork_placing(files, self._link_mode)
            except OSError:  # no fork (a process limit, no memory): placed here
                pass
            else:
                self._forked = report, pid, files
                return
        self._placer.place_each(files)


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


def _fork_pays() -> bool:
    """Linux (macOS's system libraries are not fork-safe), two cores for this process,
    and no other thread now (waiting for one, the swarm's closing, would cost more)."""
    if not sys.platform.startswith("linux"):
        return False
    if len(os.sched_getaffinity(0)) < 2:
        return False
    return only_thread(timeout=0.0)


def _fork_placing(files: Sequence[FileToPlace], link_mode: LinkMode) -> tuple[int, int]:
    """A forked process placing ``files``; (the read end of its report, its pid)."""
    report, answer = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(report)
        os.close(answer)
        raise
    if pid == 0:  # the fork: place, say how far it got, and end without cleaning up
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
            os.close(report)
            placer = FilePlacer(link_mode)
            with contextlib.suppress(BaseException):  # the parent places the rest, and raises
                placer.place_each(files)
            os.write(answer, f"{placer.linked} {placer.copied}".encode())
        finally:
            os._exit(0)
    os.close(answer)
    return report, pid


def _read_report(report: int, pid: int) -> tuple[int, int] | None:
    """What the fork said (files linked, copied), once it has ended; None if it said
    nothing."""
    chunks = []
    while chunk := os.read(report, 64):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    try:
        linked, copied = map(int, b"".join(chunks).split())
    except ValueError:
        return None
    return linked, copied


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)

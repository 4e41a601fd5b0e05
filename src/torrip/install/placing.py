"""Put the files of unpacked trees at their destinations: hard links, else reflinks, else
copies; many at once on two cores, part of them by a forked process.

Making a link is kernel work: 11,528 of them (jupyterlab, warm) take 49 ms in one process,
27 ms shared with a forked one (``forked``; tmpfs, 2 cores). The fork answers with two
numbers; whatever it could not place, this process places itself (so a failure is raised
here, with its usual message).

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
from collections.abc import Sequence
from functools import partial
from typing import Literal

from torrip.closing import Closing
from torrip.errors import InstallError
from torrip.install.forked import ForkedShare, fork_share

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no reflinks
    fcntl = None  # type: ignore[assignment]

__all__ = ["LINK_MODES", "FilePlacer", "FileToPlace", "LinkMode", "Placement"]

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
# Per file, this process claims (a journal entry, its RECORD row, its directory: 3.9 us)
# and then links its own share (5.1 us each); the fork links (5.8 us: its first writes
# copy pages shared with this process). Both end together at (3.9 + 5.1) / (3.9 + 5.1 +
# 5.8) = 0.6 (jupyterlab, warm, tmpfs, 2 cores).
FORK_SHARE = 0.6


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

    With links expected and enough files (``total``), a forked process (``forked``)
    places the first ``FORK_SHARE`` of them, once handed over: while it links them, this
    process goes on claiming and writing what comes next, and places the rest. ``finish``
    waits for the fork and says how many files were (hard-)linked and how many copied;
    ``close`` (the end of ``with``) stops a fork still running, so that whatever undoes
    the transaction runs alone.

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
        self._forked: tuple[ForkedShare, list[FileToPlace]] | None = None

    def add(self, files: list[FileToPlace]) -> None:
        if self._fork_at is None:
            self._placer.place_each(files)
            return
        self._queued += files
        if len(self._queued) >= self._fork_at:
            forked, rest = self._queued[: self._fork_at], self._queued[self._fork_at :]
            self._fork_at, self._queued = None, []
            share = fork_share(partial(_place_and_count, forked, self._link_mode))
            if share is None:
                self._placer.place_each(forked)
            else:
                self._forked = share, forked
            self._placer.place_each(rest)  # a large wheel's last files: this process's

    def finish(self) -> tuple[int, int]:
        placer = self._placer
        placer.place_each(self._queued)  # never forked (too few came, or no fork)
        self._queued = []
        if self._forked is None:
            return placer.linked, placer.copied
        share, files = self._forked
        self._forked = None
        try:
            linked, copied = map(int, (share.answer() or b"").split())
        except ValueError:
            raise InstallError(
                "the process placing part of the files ended without saying what it did (killed?)",
                hint="Run the install again.",
            ) from None
        if linked + copied < len(files):  # it stopped at one: here it fails again, or it
            placer.place_each(files[linked + copied :])  # was fleeting
        return placer.linked + linked, placer.copied + copied

    def close(self) -> None:
        if self._forked is not None:
            self._forked[0].stop()
            self._forked = None


def _place_and_count(files: list[FileToPlace], link_mode: LinkMode) -> bytes:
    """In the fork: place ``files`` up to the first that fails; say how many were linked
    and copied (the parent places the rest, and raises)."""
    placer = FilePlacer(link_mode)
    with contextlib.suppress(Exception):
        placer.place_each(files)
    return f"{placer.linked} {placer.copied}".encode()

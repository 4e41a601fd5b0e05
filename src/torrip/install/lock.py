"""One torrip at a time per environment: an flock on a file in its site-packages.

The lock file is ``<purelib>/.torrip.lock``: site-packages is writable by whoever
installs, unique to one environment, and pip, importlib.metadata and ``site``
ignore a file there that is neither a .pth nor a .dist-info. The file holds the
owner's pid for messages and is removed on release, so an environment looks
exactly as before after torrip is done with it. Waiters that locked a file
which was meanwhile removed notice (its inode is no longer at the path) and
try again on the new one.

Usage::

    with environment_lock(environment, timeout=60):
        ...  # remove, install, roll back

Not re-entrant: taking it twice in one process waits for itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from torrip.environment import TargetEnvironment
from torrip.errors import EnvironmentLockedError, InstallError

__all__ = ["environment_lock", "lock_path"]

_LOCK_NAME = ".torrip.lock"
_POLL_SECONDS = 0.05


def lock_path(environment: TargetEnvironment) -> Path:
    """Where the lock of ``environment`` lives."""
    return Path(environment.scheme["purelib"]) / _LOCK_NAME


@contextlib.contextmanager
def environment_lock(
    environment: TargetEnvironment, timeout: float | None = None
) -> Iterator[Path]:
    """Hold the exclusive lock of ``environment``; wait at most ``timeout`` seconds (None: forever).

    Raises EnvironmentLockedError when the timeout passes first.
    """
    path = lock_path(environment)
    deadline = None if timeout is None else time.monotonic() + timeout
    fd = _acquire(path, deadline, timeout)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        # Unlink while still holding the lock; waiters holding the old inode retry.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def _acquire(path: Path, deadline: float | None, timeout: float | None) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InstallError(
            f"cannot create {path.parent}: {error.strerror or error}",
            hint="Check that you may write to the environment.",
        ) from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise InstallError(
                f"cannot create the lock file {path}: {error.strerror or error}",
                hint="Check that you may write to the environment.",
            ) from None
        try:
            _flock(fd, path, deadline, timeout)
            if _is_current(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # locked a file its previous owner removed; lock the new one


def _flock(fd: int, path: Path, deadline: float | None, timeout: float | None) -> None:
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise EnvironmentLockedError(path, _holder(path), timeout or 0.0) from None
            time.sleep(_POLL_SECONDS)


def _is_current(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _holder(path: Path) -> str | None:
    try:
        pid = path.read_text().strip()
    except OSError:
        return None
    return f"torrip process {pid}" if pid.isdigit() else None

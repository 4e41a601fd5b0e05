"""Small filesystem helpers shared by the caches."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_write", "file_url_path", "flock_is_held", "umask_changed"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once: os.umask can only be read by setting it, which is not thread-safe. A process
# that takes on another umask later (a warm-start fork) says so with ``umask_changed``.
_DEFAULT_MODE = 0o666 & ~_umask()


def umask_changed(mask: int) -> None:
    """This process's umask is now ``mask`` (the caller set it): files made from now on
    get the mode it gives."""
    global _DEFAULT_MODE
    _DEFAULT_MODE = 0o666 & ~mask


def atomic_write(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one.

    ``durable`` fsyncs before the rename; caches of re-fetchable pages skip it for speed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; give the file the mode an ordinary open() would.
        os.fchmod(fd, _DEFAULT_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def file_url_path(url: str) -> Path | None:
    """The local path of a ``file:`` URL; None for any other URL."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    if os.name == "nt":  # pragma: no cover - drive letters and backslashes
        from nturl2path import url2pathname

        return Path(url2pathname(parts.path))
    # What urllib.request.url2pathname does here, without importing urllib.request (15 ms).
    return Path(unquote(parts.path))


def flock_is_held(path: Path) -> bool:
    """Whether some process holds flock(2) on ``path`` now (False if it cannot be opened)."""
    if fcntl is None:  # pragma: no cover - Windows: no flock
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the lock at once
    return False

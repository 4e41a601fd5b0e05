"""One error tree for torrip.

Every error carries the facts (URL, hashes, requirement chain) and formats a
message a user can act on: what was wrong, then what to do (``hint``). Errors of
libraries (httpx, libtorrent, zipfile) are converted at the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "CacheError",
    "ConfigError",
    "DistributionFileError",
    "EnvironmentLockedError",
    "ExternallyManagedError",
    "HTTPStatusError",
    "HashMismatchError",
    "HashNotAllowedError",
    "HashRequirementsError",
    "IndexBuildError",
    "IndexPageError",
    "InstallError",
    "InterpreterError",
    "LockfileError",
    "MetadataError",
    "NetworkError",
    "NoMatchingDistributionError",
    "OfflineError",
    "RequirementsFileError",
    "ResolutionImpossibleError",
    "SizeMismatchError",
    "Terminated",
    "TorrentError",
    "TorripError",
    "UninstallError",
    "UnsafeWheelError",
]


class TorripError(Exception):
    """Root of every error torrip reports to a user.

    ``str(error)`` is the message; ``hint`` says what to do about it.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take arguments of their own, so rebuild from the state rather than by
        # calling __init__ again: errors cross process boundaries (the unpacking workers).
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[TorripError], args: tuple[Any, ...], state: dict[str, Any]) -> TorripError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(TorripError):
    """A setting (flag, TORRIP_* variable or config file) has a bad value."""

    exit_code = 2


class InterpreterError(TorripError):
    """The target interpreter cannot be run or queried."""


class ExternallyManagedError(TorripError):
    """The target interpreter belongs to a system package manager (PEP 668)."""


class OfflineError(TorripError):
    """--offline, and something is not in the cache."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"{url} is not in torrip's cache, and --offline forbids fetching it",
            hint="Run once with the network to fill the cache (the same command without "
            "--offline), then offline runs find it there.",
        )


class RequirementsFileError(TorripError):
    """A requirements or constraints file has a line torrip cannot read."""

    exit_code = 2

    def __init__(self, path: str, line_number: int, line: str, reason: str) -> None:
        self.path = path
        self.line_number = line_number
        self.line = line
        self.reason = reason
        super().__init__(
            f"{path}:{line_number}: {reason}\n    {line}",
            hint="Fix the line, or see `torrip install --help` for the options a file may use.",
        )


class NetworkError(TorripError):
    """A request could not be completed (DNS, connection, timeout, TLS)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"could not fetch {url}: {reason}",
            hint="Check your network connection and the index URL (--index-url).",
        )


class HTTPStatusError(TorripError):
    """The server answered with an error status."""

    def __init__(self, url: str, status: int, hint: str | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(
            f"{url} answered HTTP {status}",
            hint=hint or "Check the URL; if the server is having trouble, try again later.",
        )


class IndexPageError(TorripError):
    """A project page of an index is malformed."""


class HashMismatchError(TorripError):
    """Bytes did not match the hash the index (or lockfile) promised."""

    def __init__(self, what: str, url: str, algorithm: str, expected: str, actual: str) -> None:
        self.what = what
        self.url = url
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"hash mismatch for {what}\n"
            f"    from     {url}\n"
            f"    expected {algorithm}:{expected}\n"
            f"    got      {algorithm}:{actual}",
            hint="The bytes were discarded. The index or a proxy served altered data; "
            "report it to the index's maintainers if it persists.",
        )


class HashNotAllowedError(HashMismatchError):
    """A file's hash is not one of those a requirements file (``--hash``) or a lockfile allows."""

    def __init__(self, what: str, url: str, allowed: Sequence[str], actual: Sequence[str]) -> None:
        self.allowed = list(allowed)
        self.actual_hashes = list(actual)
        super().__init__(what, url, "hash", ", ".join(allowed), ", ".join(actual))
        self.message = (
            f"hash of {what} is not one of those allowed\n"
            f"    from     {url}\n"
            + "".join(f"    allowed  {digest}\n" for digest in self.allowed)
            + "".join(f"    got      {digest}\n" for digest in self.actual_hashes)
        ).rstrip("\n")
        self.args = (self.message,)
        self.hint = (
            "Nothing was installed. The file is not the one the hashes pin: it changed on "
            "the server, or the hashes are wrong. Check where the hashes came from."
        )


class HashRequirementsError(TorripError):
    """Hash-checking mode (``--hash``, ``--require-hashes``) finds requirements it cannot check.

    ``lines`` are the offending requirements, written so they can be pasted into the file.
    """

    def __init__(self, message: str, lines: Sequence[str], *, hint: str) -> None:
        self.lines = list(lines)
        super().__init__(message + "".join(f"\n    {line}" for line in self.lines), hint=hint)


class LockfileError(TorripError):
    """A lockfile (PEP 751 ``pylock.toml``) cannot be read, or does not fit the target."""

    def __init__(self, path: object, reason: str, *, hint: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        default = (
            f"Write the lock again for this environment (torrip lock -o {self.path} ... "
            "--python <target>), or install it into a matching environment."
        )
        super().__init__(f"{self.path}: {reason}", hint=hint or default)


class MetadataError(TorripError):
    """A distribution's core metadata is missing or invalid."""


class NoMatchingDistributionError(TorripError):
    """No file of a project can be installed into the target environment."""

    def __init__(
        self, requirement: str, reasons: Sequence[str], *, hint: str | None = None
    ) -> None:
        self.requirement = requirement
        self.reasons = list(reasons)
        detail = "".join(f"\n    {reason}" for reason in self.reasons)
        super().__init__(
            f"no matching distribution found for {requirement}{detail}",
            hint=hint,
        )


class ResolutionImpossibleError(TorripError):
    """The requirements conflict; the message lists which, from which parents."""

    def __init__(self, message: str, causes: Sequence[str]) -> None:
        self.causes = list(causes)
        super().__init__(
            message,
            hint="Loosen the range of the packages named above, or remove one of them, "
            "so that a version exists that satisfies all of them.",
        )


class TorrentError(TorripError):
    """A .torrent is malformed, breaks torrip's limits, or does not describe the expected file.

    ``reason`` says what is wrong in one phrase; ``source`` names the torrent (path or URL)
    when known.
    """

    def __init__(self, reason: str, *, source: str | None = None, hint: str | None = None) -> None:
        self.reason = reason
        self.source = source
        super().__init__(f"{source}: {reason}" if source else reason, hint=hint)


class DistributionFileError(TorripError):
    """A file cannot be put on an index: not a distribution, unreadable, or inconsistent."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"{self.path}: {reason}",
            hint="Remove or replace the file; the other files are indexed without it.",
        )


class IndexBuildError(TorripError):
    """An index cannot be built at all (missing input folder, unwritable output)."""


class SizeMismatchError(HashMismatchError):
    """A file's length differs from the size the index (or lockfile) promised.

    A HashMismatchError, so callers that discard altered bytes handle both alike.
    """

    def __init__(self, what: str, url: str, expected: int, actual: int) -> None:
        super().__init__(what, url, "size", str(expected), str(actual))
        self.expected_size = expected
        self.actual_size = actual
        self.message = (
            f"size mismatch for {what}\n"
            f"    from     {url}\n"
            f"    expected {expected} bytes\n"
            f"    got      {actual} bytes"
        )
        self.args = (self.message,)


class CacheError(TorripError):
    """The distribution cache cannot be read or written (permissions, full disk)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"cache {self.path}: {reason}",
            hint="Free disk space or fix the folder's permissions; TORRIP_CACHE_DIR moves "
            "the cache and --no-cache bypasses it.",
        )


class UnsafeWheelError(TorripError):
    """A wheel would write outside its scheme, does not match its RECORD, or is an ambiguous zip.

    Structural problems are found before anything is written; a content hash that does
    not match RECORD while the wheel is unpacked into the cache, before the environment
    is touched. ``entry`` names the offending archive member.
    """

    def __init__(self, wheel: object, entry: str | None, reason: str) -> None:
        self.wheel = str(wheel)
        self.entry = entry
        self.reason = reason
        where = f" ({entry!r})" if entry is not None else ""
        super().__init__(
            f"refusing to install {self.wheel}: {reason}{where}",
            hint="Nothing was installed. The wheel is broken or crafted; report it to the "
            "project's maintainers, or install a different version.",
        )


class InstallError(TorripError):
    """Installing failed midway; everything the transaction changed was put back."""

    def __init__(self, message: str, *, wheel: object = None, hint: str | None = None) -> None:
        self.wheel = None if wheel is None else str(wheel)
        super().__init__(
            message,
            hint=hint or "The environment was restored to its state before the install.",
        )


class UninstallError(TorripError):
    """A distribution cannot be removed safely (no RECORD, or files outside the environment)."""

    def __init__(self, distribution: str, reason: str, *, hint: str | None = None) -> None:
        self.distribution = distribution
        self.reason = reason
        super().__init__(f"cannot uninstall {distribution}: {reason}", hint=hint)


class EnvironmentLockedError(TorripError):
    """Another torrip process holds the environment's lock for longer than the timeout."""

    def __init__(self, lock_path: object, holder: str | None, timeout: float) -> None:
        self.lock_path = str(lock_path)
        self.holder = holder
        self.timeout = timeout
        by = f" by {holder}" if holder else ""
        super().__init__(
            f"the environment is locked{by} ({self.lock_path}); waited {timeout:g} s",
            hint="Wait for the other torrip process to finish, then try again.",
        )


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP) while an environment was being changed: raised
    there, like Ctrl-C's KeyboardInterrupt, so that the change is undone before the command
    ends (``torrip.install.signals``). Not a TorripError: nothing went wrong."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)

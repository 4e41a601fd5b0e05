"""Download one file over HTTP: streamed to disk, resumed with Range + If-Range, retried.

    with make_client(settings) as client:
        received, sha256 = download(client, url, partial, expected_size=link.size)
        # ``partial`` now holds the whole body; ``received`` bytes came over the network;
        # ``sha256`` is of what ``partial`` holds, hashed as it was written

A download continues from the length ``dest`` already has. The validator of the
bytes it holds (a strong ETag, else Last-Modified) is kept next to it in
``<dest>.resume`` (before the first byte from 8 MiB, else when the download stops
short: a small file killed midway starts over); the continuation asks ``Range:
bytes=N-`` with ``If-Range: <validator>``, so a file that changed on the server comes
back whole (200) and the old bytes are dropped. A server that ignores ranges is handled
the same way.

Connection errors, timeouts, cut connections, 408/429/5xx are retried with
exponential backoff (``Retry-After`` honoured, capped); an attempt that made the
file longer does not count against ``retries``. Other statuses fail at once with
an HTTPStatusError naming the URL. The sha256 of the file is computed as its bytes are
written (a multi-gigabyte wheel is not read again to hash it); checking it against the
expected one is the caller's job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote, urlsplit

from torrip.errors import HTTPStatusError, NetworkError, SizeMismatchError, TorripError
from torrip.fsutil import atomic_write
from torrip.http import http_errors, raise_for_status, stream_get

if TYPE_CHECKING:
    import httpx

    from torrip.connections import Streamed

    # Either answers ``headers.get`` for names in lower case.
    Response = httpx.Response | Streamed

__all__ = [
    "MAX_RETRY_AFTER",
    "TRANSIENT_STATUSES",
    "Downloaded",
    "discard_partial",
    "download",
    "resume_sidecar",
]

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# A server asking for a longer pause than this is treated as asking for this long.
MAX_RETRY_AFTER = 30.0
# Bytes arrive in TLS records of 16 KiB: written one by one, a 540 MB wheel took 33,000
# write calls and a third of its download's time.
_WRITE_BUFFER = 1 << 20
# From this size a download's resume record is written before its first byte, so that even
# a killed process can resume it; smaller ones write it only when they stop short.
_SIDECAR_AT_ONCE = 8 << 20


def resume_sidecar(dest: Path) -> Path:
    """The file recording which representation (URL, validator) ``dest``'s bytes belong to."""
    return dest.with_name(dest.name + ".resume")


def discard_partial(dest: Path) -> None:
    """Remove a partial download and its resume record."""
    dest.unlink(missing_ok=True)
    resume_sidecar(dest).unlink(missing_ok=True)


class Downloaded(NamedTuple):
    received: int
    """Body bytes that came over the network (dropped ones included)."""
    sha256: str
    """Hex digest of the whole file at ``dest``."""


class _Retry(Exception):
    """An attempt failed in a way another attempt may fix."""

    def __init__(self, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


class _Attempt:
    """One GET, continuing ``dest``; counts the body bytes it receives."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        dest: Path,
        expected_size: int | None,
        on_bytes: Callable[[int], None] | None,
    ) -> None:
        self.client = client
        self.url = url
        self.dest = dest
        self.expected_size = expected_size
        self.on_bytes = on_bytes
        self.received = 0
        self._sha256 = hashlib.sha256()
        self._hashed = 0  # the leading bytes of dest that _sha256 covers

    def sha256(self) -> str:
        """The digest of everything ``dest`` holds; bytes that were not streamed through
        this attempt (a file complete from an earlier run) are read to hash them."""
        if self._hashed != _length(self.dest):
            self._rehash()
        return self._sha256.hexdigest()

    def _rehash(self) -> None:
        self._sha256, self._hashed = hashlib.sha256(), 0
        try:
            with self.dest.open("rb") as held:
                while block := held.read(1 << 20):
                    self._sha256.update(block)
                    self._hashed += len(block)
        except FileNotFoundError:
            pass

    def _report(self, n: int) -> None:
        if self.on_bytes is not None and n:
            self.on_bytes(n)

    def _restart(self) -> None:
        self._report(-_length(self.dest))
        discard_partial(self.dest)
        self._sha256, self._hashed = hashlib.sha256(), 0

    def _size_mismatch(self, actual: int) -> SizeMismatchError:
        assert self.expected_size is not None
        self._restart()
        return SizeMismatchError(_url_filename(self.url), self.url, self.expected_size, actual)

    def run(self) -> None:
        offset = _length(self.dest)
        if self.expected_size is not None and offset > self.expected_size:
            self._restart()
            offset = 0
        validator = _read_validator(self.dest, self.url) if offset else None
        if offset and validator is None:
            self._restart()  # bytes of unknown origin: we cannot ask for "the rest of them"
            offset = 0
        if offset and offset == self.expected_size:
            return  # complete from an earlier attempt; the caller verifies it
        headers = {"Accept-Encoding": "identity"}
        if offset and validator:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = validator
        with stream_get(self.client, self.url, headers) as response:
            self._receive(response, offset)

    def _receive(self, response: Response, offset: int) -> None:
        pending_validator: str | None = None
        status = response.status_code
        if status == 416 and offset:
            if _content_range_total(response) == offset:
                return  # we already hold every byte
            self._restart()
            raise _Retry(status, retry_after=0.0)
        if status in TRANSIENT_STATUSES:
            raise _Retry(status, _retry_after(response))
        raise_for_status(response)
        if status == 206:
            start = _content_range_start(response)
            if start != offset:
                self._restart()
                raise _Retry(status, retry_after=0.0)
            total = _content_range_total(response)
            mode = "ab"
            if self._hashed != offset:
                self._rehash()  # the bytes held from before, once
        else:
            if offset:
                self._restart()  # a new representation (If-Range failed) or ranges ignored
                offset = 0
            total = _content_length(response)
            mode = "wb"
            self._sha256, self._hashed = hashlib.sha256(), 0
            resume_sidecar(self.dest).unlink(missing_ok=True)  # of the bytes just dropped
            validator = _validator(response)
            if validator is not None and (total or 0) >= _SIDECAR_AT_ONCE:
                _write_validator(self.dest, self.url, validator)
            else:
                # Written only if the download stops short: one file less per download.
                pending_validator = validator
        if self.expected_size is not None and total is not None and total != self.expected_size:
            raise self._size_mismatch(total)
        position = offset
        try:
            with self.dest.open(mode, buffering=_WRITE_BUFFER) as out:
                for chunk in response.iter_raw():  # as they arrive: a cut loses nothing
                    position += len(chunk)
                    if self.expected_size is not None and position > self.expected_size:
                        self.received += len(chunk)
                        out.flush()  # so the bytes taken back are all that were reported
                        raise self._size_mismatch(position)
                    out.write(chunk)
                    self._sha256.update(chunk)
                    self._hashed += len(chunk)
                    self.received += len(chunk)
                    self._report(len(chunk))
            if total is not None and position < total:
                raise _Retry()  # the connection ended early without httpx noticing
        except BaseException:
            if pending_validator is not None and _length(self.dest):
                with contextlib.suppress(OSError):  # the download's own error is the news
                    _write_validator(self.dest, self.url, pending_validator)  # resumable
            raise


def download(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    expected_size: int | None,
    on_bytes: Callable[[int], None] | None = None,
    retries: int = 3,
    backoff: float = 0.5,
) -> Downloaded:
    """Download ``url`` into ``dest``, continuing what ``dest`` holds.

    ``received`` counts every body byte that came over the network in this call,
    including bytes dropped by a restart, so per-source accounting is exact; ``sha256``
    is the digest of the file ``dest`` then holds.
    ``on_bytes(n)`` is told of each chunk written, and ``on_bytes(-n)`` when ``n``
    bytes already on disk are dropped, so its running sum is the length of ``dest``
    minus what it held at the start.

    Raises HTTPStatusError (permanent status, or transient ones past ``retries``),
    NetworkError (after retries), or SizeMismatchError when the server's length is
    not ``expected_size`` (then ``dest`` is removed). Other partial bytes stay for a
    later call to continue.
    """
    import httpx  # imported by the client already

    # Transport errors worth another attempt; the rest (bad scheme, proxy setup) are not.
    retryable = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
    attempt = _Attempt(client, url, dest, expected_size, on_bytes)
    failures = 0
    longest = _length(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    while True:
        failure: _Retry | httpx.TransportError
        with http_errors(url):  # what is not retried becomes a NetworkError here
            try:
                attempt.run()
                return Downloaded(attempt.received, attempt.sha256())
            except retryable as exc:
                failure = exc
            except _Retry as exc:
                failure = exc
            length = _length(dest)
            if length > longest:
                longest, failures = length, 0  # progress: this was not a wasted attempt
            failures += 1
            if failures > retries:
                if isinstance(failure, _Retry):
                    raise _out_of_retries(url, failure, failures)
                raise failure
        time.sleep(_delay(failure, failures, backoff))


def _out_of_retries(url: str, failure: _Retry, attempts: int) -> TorripError:
    if failure.status is None or failure.status < 400:
        return NetworkError(url, f"the download kept breaking off ({attempts} attempts)")
    return HTTPStatusError(
        url,
        failure.status,
        f"The server is having trouble (tried {attempts} times); try again later.",
    )


def _delay(failure: _Retry | httpx.TransportError, failures: int, backoff: float) -> float:
    if isinstance(failure, _Retry) and failure.retry_after is not None:
        return min(failure.retry_after, MAX_RETRY_AFTER)
    # Jitter keeps parallel downloads from knocking on the server at the same instant.
    return backoff * 2.0 ** (failures - 1) * random.uniform(0.8, 1.2)


def _retry_after(response: Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _validator(response: Response) -> str | None:
    etag = str(response.headers.get("etag", ""))
    if etag and not etag.startswith("W/"):
        return etag  # If-Range needs a strong validator
    return str(response.headers.get("last-modified", "")) or None


def _write_validator(dest: Path, url: str, validator: str) -> None:
    atomic_write(resume_sidecar(dest), json.dumps({"url": url, "validator": validator}).encode())


def _read_validator(dest: Path, url: str) -> str | None:
    try:
        record = json.loads(resume_sidecar(dest).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("url") != url:
        return None  # bytes from another URL: its validator means nothing here
    validator = record.get("validator")
    return validator if isinstance(validator, str) else None


def _content_length(response: Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _content_range_start(response: Response) -> int | None:
    # "bytes 100-999/1000"
    unit, _, spec = response.headers.get("content-range", "").partition(" ")
    first = spec.split("-", 1)[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def _content_range_total(response: Response) -> int | None:
    total = response.headers.get("content-range", "").rpartition("/")[2]
    return int(total) if total.isdigit() else None


def _url_filename(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or url


def _length(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0

"""torrip.transport.http.download against a real loopback server that misbehaves on request.

``FaultServer`` (also used by test_fetch.py) serves byte strings and can cut a
connection after N bytes, answer error statuses first, ignore ranges, refuse a
second download, or hold each response to show how many run at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import torrip.transport.http as http_module
from torrip.config import Settings
from torrip.connections import StdlibTransport
from torrip.errors import HTTPStatusError, NetworkError, SizeMismatchError
from torrip.http import make_client
from torrip.transport.http import download, resume_sidecar

LAST_MODIFIED = "Wed, 01 Jan 2020 00:00:00 GMT"


@dataclass
class Served:
    """One file and how to misbehave when serving it; the lists are consumed per GET."""

    data: bytes
    etag: str | None = '"v1"'
    last_modified: str | None = LAST_MODIFIED
    honour_ranges: bool = True
    cuts: list[int] = field(default_factory=list)  # close after N body bytes
    statuses: list[int] = field(default_factory=list)  # answer this status instead
    retry_after: str | None = None
    once: bool = False  # after one complete delivery, answer 403
    delay: float = 0.0  # hold each response this long before the body
    length: bool = True  # send Content-Length; without it, the body ends when it closes
    delivered: bool = False


@dataclass(frozen=True)
class Hit:
    name: str
    range: str | None
    if_range: str | None
    status: int
    bytes_sent: int


class FaultServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 serving ``/files/<name>``."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/files/"

    def add(self, name: str, data: bytes, **behaviour: Any) -> str:
        self.files[name] = Served(data, **behaviour)
        return self.url(name)

    def url(self, name: str) -> str:
        return self.base_url + name

    def settle(self) -> None:
        """Wait until answered requests are logged (a client may read before the log is written)."""
        deadline = time.monotonic() + 5
        while self.active and time.monotonic() < deadline:
            time.sleep(0.005)

    def gets(self, name: str) -> list[Hit]:
        self.settle()
        with self.lock:
            return [hit for hit in self.hits if hit.name == name]

    def bytes_sent(self) -> int:
        self.settle()
        with self.lock:
            return sum(hit.bytes_sent for hit in self.hits)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: FaultServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (on purpose, in these tests) are not news


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        name = self.path.rsplit("/", 1)[-1]
        with owner.lock:
            owner.active += 1
            owner.max_active = max(owner.max_active, owner.active)
        status, sent = 0, 0
        try:
            status, sent = self._serve(owner, name)
        finally:
            with owner.lock:
                owner.active -= 1
                owner.hits.append(
                    Hit(name, self.headers.get("Range"), self.headers.get("If-Range"), status, sent)
                )

    def _plain(self, status: int, headers: dict[str, str] | None = None) -> tuple[int, int]:
        body = f"status {status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        return status, 0  # count only file bytes

    def _serve(self, owner: FaultServer, name: str) -> tuple[int, int]:
        with owner.lock:
            served = owner.files.get(name)
            status = served.statuses.pop(0) if served and served.statuses else None
            cut = served.cuts.pop(0) if served and served.cuts else None
            refused = served is not None and served.once and served.delivered
        if served is None:
            return self._plain(404)
        if refused:
            return self._plain(403)  # "never downloads twice" made visible
        if status is not None:
            headers = {"Retry-After": served.retry_after} if served.retry_after else None
            return self._plain(status, headers)
        if served.delay:
            time.sleep(served.delay)
        data = served.data
        start = 0
        header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        validators = {served.etag, served.last_modified} - {None}
        use_range = served.honour_ranges and header and (if_range is None or if_range in validators)
        if use_range:
            assert header is not None
            start = int(header.removeprefix("bytes=").split("-")[0])
        body = data[start:]
        self.send_response(206 if use_range else 200)
        if use_range:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if served.length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        if served.etag:
            self.send_header("ETag", served.etag)
        if served.last_modified:
            self.send_header("Last-Modified", served.last_modified)
        self.end_headers()
        if cut is not None:
            body = body[:cut]
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            return (206 if use_range else 200), 0
        if cut is not None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif start + len(body) == len(data):
            with owner.lock:
                served.delivered = True
        return (206 if use_range else 200), len(body)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture(params=["through-httpx", "direct"])
def client(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[httpx.Client]:
    """An httpx client on the transport torrip's client uses, and torrip's client itself,
    whose downloads go around httpx's (``torrip.http.stream_get``): both behave alike."""
    if request.param == "through-httpx":
        transport = StdlibTransport(tls=None)
        with httpx.Client(transport=transport, timeout=10, trust_env=False) as http:
            yield http
        return
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(cache_dir=tmp_path / "cache", timeout=10)
    with make_client(settings) as http:
        yield http


DATA = os.urandom(300_000)


def test_whole_file(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    dest = tmp_path / "f.part"
    seen: list[int] = []
    received, sha256 = download(
        client, server.add("f.whl", DATA), dest, expected_size=len(DATA), on_bytes=seen.append
    )
    assert dest.read_bytes() == DATA
    assert sha256 == hashlib.sha256(DATA).hexdigest()  # hashed as written
    assert received == sum(seen) == len(DATA) == server.bytes_sent()
    assert not resume_sidecar(dest).exists()  # small and complete: never needed


def test_a_large_download_is_resumable_from_its_first_byte(
    server: FaultServer, client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the process is killed (nothing runs then), the record is already there."""
    monkeypatch.setattr(http_module, "_SIDECAR_AT_ONCE", len(DATA))
    dest = tmp_path / "f.part"
    sidecars: list[bool] = []

    def on_bytes(n: int) -> None:
        sidecars.append(resume_sidecar(dest).exists())

    download(client, server.add("f.whl", DATA), dest, expected_size=len(DATA), on_bytes=on_bytes)
    assert sidecars and all(sidecars)
    assert json.loads(resume_sidecar(dest).read_text())["validator"] == '"v1"'


def test_a_resume_record_that_cannot_be_written_hides_nothing(
    server: FaultServer, client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk full as the download fails: the download's own error is the one told."""

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(http_module, "_write_validator", disk_full)
    url = server.add("f.whl", DATA, cuts=[50_000])
    with pytest.raises(NetworkError):
        download(client, url, tmp_path / "f.part", expected_size=len(DATA), retries=0)


def test_a_small_download_cut_short_leaves_its_resume_record(
    server: FaultServer, client: httpx.Client, tmp_path: Path
) -> None:
    dest = tmp_path / "f.part"
    with pytest.raises(NetworkError):
        url = server.add("f.whl", DATA, cuts=[50_000])
        download(client, url, dest, expected_size=len(DATA), retries=0)
    assert dest.stat().st_size == 50_000
    assert json.loads(resume_sidecar(dest).read_text())["validator"] == '"v1"'


def test_resume_after_cut(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA, cuts=[100_000])
    dest = tmp_path / "f.part"
    received, sha256 = download(client, url, dest, expected_size=len(DATA), backoff=0.01)
    assert dest.read_bytes() == DATA
    assert sha256 == hashlib.sha256(DATA).hexdigest()  # hashed as written
    first, second = server.gets("f.whl")
    assert (first.range, first.bytes_sent) == (None, 100_000)
    assert (second.range, second.if_range, second.status) == ("bytes=100000-", '"v1"', 206)
    assert received == len(DATA) == server.bytes_sent()


def test_resume_across_calls(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA, cuts=[50_000])
    dest = tmp_path / "f.part"
    with pytest.raises(NetworkError) as caught:
        download(client, url, dest, expected_size=len(DATA), retries=0)
    assert caught.value.url == url
    assert dest.stat().st_size == 50_000  # kept for the next run
    received, sha256 = download(client, url, dest, expected_size=len(DATA))
    assert dest.read_bytes() == DATA
    assert sha256 == hashlib.sha256(DATA).hexdigest()  # hashed as written
    assert received == len(DATA) - 50_000
    assert server.gets("f.whl")[1].range == "bytes=50000-"
    assert server.bytes_sent() == len(DATA)


def test_server_ignoring_ranges(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA, cuts=[100_000], honour_ranges=False)
    dest = tmp_path / "f.part"
    seen: list[int] = []
    received, sha256 = download(
        client, url, dest, expected_size=len(DATA), on_bytes=seen.append, backoff=0.01
    )
    assert dest.read_bytes() == DATA
    assert sha256 == hashlib.sha256(DATA).hexdigest()  # hashed as written
    assert [hit.status for hit in server.gets("f.whl")] == [200, 200]
    assert received == 100_000 + len(DATA) == server.bytes_sent()
    assert sum(seen) == len(DATA)  # the dropped bytes were reported as dropped


def test_changed_file_restarts(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    old = server.add("f.whl", DATA, cuts=[100_000])
    dest = tmp_path / "f.part"
    with pytest.raises(NetworkError):
        download(client, old, dest, expected_size=len(DATA), retries=0)
    new_data = os.urandom(len(DATA))
    url = server.add("f.whl", new_data, etag='"v2"', last_modified=None)
    _, sha256 = download(client, url, dest, expected_size=len(DATA))
    assert dest.read_bytes() == new_data
    assert sha256 == hashlib.sha256(new_data).hexdigest()  # not the old bytes' digest
    hit = server.gets("f.whl")[-1]
    assert (hit.range, hit.if_range, hit.status) == ("bytes=100000-", '"v1"', 200)


def test_no_validator_no_resume(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA, cuts=[100_000], etag=None, last_modified=None)
    dest = tmp_path / "f.part"
    download(client, url, dest, expected_size=len(DATA), backoff=0.01)
    assert dest.read_bytes() == DATA
    assert [hit.range for hit in server.gets("f.whl")] == [None, None]


def test_weak_etag_falls_back_to_last_modified(
    server: FaultServer, client: httpx.Client, tmp_path: Path
) -> None:
    url = server.add("f.whl", DATA, cuts=[1000], etag='W/"weak"')
    download(client, url, tmp_path / "f.part", expected_size=len(DATA), backoff=0.01)
    assert server.gets("f.whl")[1].if_range == LAST_MODIFIED


def test_not_found(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.url("missing.whl")
    with pytest.raises(HTTPStatusError) as caught:
        download(client, url, tmp_path / "f.part", expected_size=None, backoff=0.01)
    assert (caught.value.url, caught.value.status) == (url, 404)
    assert url in str(caught.value)
    assert caught.value.hint
    assert len(server.gets("missing.whl")) == 1  # permanent: not retried


def test_forbidden_is_permanent(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA, statuses=[403, 403])
    with pytest.raises(HTTPStatusError) as caught:
        download(client, url, tmp_path / "f.part", expected_size=None, backoff=0.01)
    assert caught.value.status == 403
    assert caught.value.hint and "credentials" in caught.value.hint


def test_retries_503(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA, statuses=[503, 503])
    dest = tmp_path / "f.part"
    received, _ = download(client, url, dest, expected_size=len(DATA), backoff=0.01)
    assert received == len(DATA)
    assert dest.read_bytes() == DATA
    assert [hit.status for hit in server.gets("f.whl")] == [503, 503, 200]


def test_honours_retry_after(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA, statuses=[429], retry_after="1")
    started = time.monotonic()
    download(client, url, tmp_path / "f.part", expected_size=len(DATA), backoff=0.01)
    assert time.monotonic() - started >= 0.9


def test_gives_up_on_5xx(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA, statuses=[502] * 10)
    with pytest.raises(HTTPStatusError) as caught:
        download(client, url, tmp_path / "f.part", expected_size=None, retries=2, backoff=0.01)
    assert caught.value.status == 502
    assert len(server.gets("f.whl")) == 3


def test_connection_refused(client: httpx.Client, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/files/f.whl"
    with pytest.raises(NetworkError) as caught:
        download(client, url, tmp_path / "f.part", expected_size=None, retries=1, backoff=0.01)
    assert caught.value.url == url
    assert "connect" in caught.value.reason


def test_a_body_longer_than_promised_is_stopped_and_taken_back(
    server: FaultServer, client: httpx.Client, tmp_path: Path
) -> None:
    """No Content-Length: the excess shows only as it streams in. The download stops there,
    the file goes, and every byte it reported is taken back (the display ends at zero)."""
    url = server.add("f.whl", DATA, length=False)
    dest = tmp_path / "f.part"
    seen: list[int] = []
    expected = len(DATA) * 2 // 3  # reached within the write buffer: reported, not on disk
    with pytest.raises(SizeMismatchError) as caught:
        download(client, url, dest, expected_size=expected, on_bytes=seen.append)
    assert caught.value.expected_size == expected
    assert caught.value.actual_size > expected
    assert not dest.exists()
    assert sum(seen) == 0 and max(seen) > 0


def test_length_not_as_promised(server: FaultServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add("f.whl", DATA)
    dest = tmp_path / "f.part"
    with pytest.raises(SizeMismatchError) as caught:
        download(client, url, dest, expected_size=1000)
    assert (caught.value.expected_size, caught.value.actual_size) == (1000, len(DATA))
    assert caught.value.what == "f.whl"
    assert not dest.exists()


def test_complete_partial_needs_no_request(
    server: FaultServer, client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large file (its resume record written at once) whose process died before using it.
    monkeypatch.setattr(http_module, "_SIDECAR_AT_ONCE", 0)
    url = server.add("f.whl", DATA)
    dest = tmp_path / "f.part"
    download(client, url, dest, expected_size=len(DATA))
    again = download(client, url, dest, expected_size=len(DATA))
    assert again.received == 0
    assert len(server.gets("f.whl")) == 1
    # Bytes it did not stream are read to hash them: the digest is still the file's.
    assert again.sha256 == hashlib.sha256(DATA).hexdigest()

"""torrip's HTTP/1.1 connections (``torrip.connections``), against real servers on loopback."""

from __future__ import annotations

import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from torrip.connections import StdlibTransport


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.answered: list[str] = []
        self.drop_reused = False  # answer only the first request of each connection
        self.lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up is part of these tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.served_here = 0
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, body: bytes, *, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Transfer-Encoding" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def do_GET(self) -> None:
        if self.server.drop_reused and self.served_here:
            self.close_connection = True  # as a server whose keep-alive time ran out
            return
        self.served_here += 1
        with self.server.lock:
            self.server.answered.append(self.path)
        path, _, query = self.path.partition("?")
        if path == "/hello":
            self._answer(b"hello")
        elif path == "/echo":
            self._answer(query.encode())
        elif path == "/big":
            self._answer(bytes(range(256)) * 4096)
        elif path == "/gzip":
            self._answer(gzip.compress(b"squeezed " * 100), headers={"Content-Encoding": "gzip"})
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"one ", b"two ", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.flush()
            time.sleep(1.0)
            self.wfile.write(b"late")
        elif path == "/headers":  # what it was sent, one header a line
            self._answer("".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode())
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/hello")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/close":
            self._answer(b"bye", headers={"Connection": "close"})
            self.close_connection = True
        else:
            self.send_error(404)


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def _base(server: _Server, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}"


def _client(timeout: float = 10, **transport: Any) -> httpx.Client:
    return httpx.Client(
        transport=StdlibTransport(**{"tls": None, **transport}), timeout=timeout, trust_env=False
    )


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with _client() as http:
        yield http


def test_requests_share_one_kept_alive_connection(server: _Server, client: httpx.Client) -> None:
    base = _base(server)
    assert [client.get(f"{base}/echo?{i}").text for i in range(5)] == [str(i) for i in range(5)]
    head = client.head(f"{base}/hello")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == "5"
    assert client.get(f"{base}/hello").text == "hello"
    assert server.connections == 1


def test_bodies_come_whole_chunked_and_decoded(server: _Server, client: httpx.Client) -> None:
    base = _base(server)
    assert client.get(f"{base}/big").content == bytes(range(256)) * 4096
    assert client.get(f"{base}/chunked").text == "one two three"
    response = client.get(f"{base}/gzip")
    assert response.text == "squeezed " * 100  # httpx decodes Content-Encoding as before
    assert response.http_version == "HTTP/1.1" and response.reason_phrase == "OK"
    assert client.get(f"{base}/missing").status_code == 404
    assert server.connections == 1


def test_a_body_left_unread_closes_its_connection(server: _Server, client: httpx.Client) -> None:
    base = _base(server)
    with client.stream("GET", f"{base}/big") as response:
        first = next(response.iter_raw())
        assert 0 < len(first) < 256 * 4096
    # The next request cannot read the rest of /big as its answer: it gets a new connection.
    assert client.get(f"{base}/echo?after").text == "after"
    assert server.connections == 2


def test_connection_close_is_honoured(server: _Server, client: httpx.Client) -> None:
    base = _base(server)
    assert client.get(f"{base}/close").text == "bye"
    assert client.get(f"{base}/hello").text == "hello"
    assert server.connections == 2


def test_a_connection_the_server_closed_is_replaced_for_a_get(
    server: _Server, client: httpx.Client
) -> None:
    base = _base(server)
    server.drop_reused = True
    assert client.get(f"{base}/echo?1").text == "1"
    assert client.get(f"{base}/echo?2").text == "2"  # sent on the old connection, then again
    assert server.answered == ["/echo?1", "/echo?2"]
    assert server.connections == 2


def test_a_post_is_not_sent_twice(server: _Server, client: httpx.Client) -> None:
    base = _base(server)
    server.drop_reused = True
    assert client.post(f"{base}/echo?1", content=b"data").text == "1"
    with pytest.raises(httpx.RemoteProtocolError, match="closed the connection"):
        client.post(f"{base}/echo?2", content=b"data")
    assert server.answered == ["/echo?1"]


def test_idle_connections_expire(server: _Server) -> None:
    with _client(keepalive_expiry=0) as client:
        for _ in range(3):
            assert client.get(f"{_base(server)}/hello").text == "hello"
    assert server.connections == 3


def test_threads_share_the_pool(server: _Server, client: httpx.Client) -> None:
    base = _base(server)
    wrong: list[str] = []

    def fetch(worker: int) -> None:
        for i in range(10):
            text = client.get(f"{base}/echo?{worker}-{i}").text
            if text != f"{worker}-{i}":
                wrong.append(text)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(server.answered) == 80
    assert server.connections <= 8  # kept alive and reused, never more than at once


def test_a_truncated_body_is_a_protocol_error(server: _Server, client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="before the whole body came"):
        client.get(f"{_base(server)}/truncated")
    assert client.get(f"{_base(server)}/hello").text == "hello"


def test_a_slow_answer_times_out(server: _Server) -> None:
    with _client(timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.get(f"{_base(server)}/slow")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_tried_again_as_retries_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("torrip.connections.time.sleep", slept.append)
    url = f"http://127.0.0.1:{_closed_port()}/"
    with _client(retries=3) as client, pytest.raises(httpx.ConnectError, match="refused") as raised:
        client.get(url)
    assert str(raised.value.request.url) == url  # named, as httpx's own errors are
    assert slept == [0, 0.5, 1.0]  # httpcore's schedule, which --retries meant before
    with _client() as client, pytest.raises(httpx.ConnectError):
        client.get(url)
    assert len(slept) == 3


def test_https_without_a_tls_context_is_refused() -> None:
    with _client() as client, pytest.raises(httpx.UnsupportedProtocol):
        client.get("https://127.0.0.1:9/")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out",
            str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(server: _Server, certificate: tuple[Path, Path]) -> _Server:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def test_https_verifies_the_server_and_keeps_the_connection(
    tls_server: _Server, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _base(tls_server, "https")
    with _client(tls=ssl.create_default_context(cafile=str(certificate[0]))) as client:
        assert client.get(f"{base}/hello").text == "hello"
        assert client.get(f"{base}/big").content == bytes(range(256)) * 4096
    assert tls_server.connections == 1
    slept: list[float] = []
    monkeypatch.setattr("torrip.connections.time.sleep", slept.append)
    untrusting = _client(tls=ssl.create_default_context(), retries=3)
    with untrusting, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get(f"{base}/hello")
    assert slept == []  # a certificate refused once is refused again: not retried


def test_trusted_hosts_and_the_cert_setting(
    tls_server: _Server, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """pip's --trusted-host (no verification for that host) and --cert (the CA bundle),
    through torrip's client."""
    from torrip.config import Settings
    from torrip.errors import ConfigError
    from torrip.http import make_client

    port = tls_server.server_address[1]
    url = f"{_base(tls_server, 'https')}/hello"
    for trusted in (("127.0.0.1",), (f"127.0.0.1:{port}",)):
        with make_client(Settings(cache_dir=tmp_path, trusted_host=trusted)) as client:
            assert client.get(url).text == "hello"
    for untrusted in ((), ("127.0.0.1:1",), ("localhost",)):
        settings = Settings(cache_dir=tmp_path, trusted_host=untrusted)
        with make_client(settings) as client, pytest.raises(httpx.ConnectError):
            client.get(url)
    with make_client(Settings(cache_dir=tmp_path, cert=str(certificate[0]))) as client:
        assert client.get(url).text == "hello"
    missing = Settings(cache_dir=tmp_path, cert=str(tmp_path / "nope.pem"))
    with make_client(missing) as client, pytest.raises(ConfigError, match="is not a file"):
        client.get(url)


_TIMEOUTS: dict[str, float | None] = {"connect": 10, "read": 10, "write": 10}


def test_a_whole_get_reads_what_a_client_get_reads(server: _Server) -> None:
    """get_whole (the index client's pages and metadata files, without httpx's objects)
    answers as httpx would: bodies decoded and whole, headers by lower-case name, Host and
    Accept-Encoding sent, one kept-alive connection; no redirect is followed here."""
    base = _base(server)
    transport = StdlibTransport(tls=None)
    with _client() as client:
        for path in ("/hello", "/gzip", "/chunked", "/big"):
            reply = transport.get_whole(f"{base}{path}", [("Accept", "*/*")], _TIMEOUTS)
            assert (reply.status_code, reply.content) == (200, client.get(f"{base}{path}").content)
            assert reply.url == f"{base}{path}"
    gzipped = transport.get_whole(f"{base}/gzip", [], _TIMEOUTS)
    assert gzipped.headers["content-encoding"] == "gzip"
    sent = transport.get_whole(f"{base}/headers", [("Accept", "text/html")], _TIMEOUTS)
    lines = sent.content.decode().splitlines()
    assert f"Host: 127.0.0.1:{server.server_address[1]}" in lines
    assert {"Accept-Encoding: gzip, deflate", "Accept: text/html"} <= set(lines)
    moved = transport.get_whole(f"{base}/redirect", [], _TIMEOUTS)
    assert (moved.status_code, moved.headers["location"]) == (302, "/hello")
    assert transport.get_whole(f"{base}/nothing", [], _TIMEOUTS).status_code == 404
    assert server.connections == 2  # the httpx client's own, and this transport's


def test_a_streamed_get_reads_what_a_client_stream_reads(server: _Server) -> None:
    """stream (the downloads, without httpx's objects) gives the body undecoded as it
    comes, with httpx's errors; the connection is kept once the body is read to its end,
    and closed if it was not."""
    base = _base(server)
    transport = StdlibTransport(tls=None)
    identity = [("Accept-Encoding", "identity")]
    with _client() as client:
        for path in ("/hello", "/gzip", "/chunked", "/big"):
            streamed = transport.stream(f"{base}{path}", identity, _TIMEOUTS)
            with client.stream("GET", f"{base}{path}", headers=dict(identity)) as response:
                assert b"".join(streamed.iter_raw()) == b"".join(response.iter_raw())
                assert streamed.headers.get("content-length") == response.headers.get(
                    "Content-Length"
                )
            assert (streamed.url, streamed.status_code) == (f"{base}{path}", 200)
            streamed.close()
    assert server.connections == 2  # the httpx client's own, and this transport's, kept
    unread = transport.stream(f"{base}/big", identity, _TIMEOUTS)
    unread.close()
    assert b"".join(transport.stream(f"{base}/hello", [], _TIMEOUTS).iter_raw()) == b"hello"
    assert server.connections == 3  # the unread body's connection was closed, not kept
    truncated = transport.stream(f"{base}/truncated", [], _TIMEOUTS)
    with pytest.raises(httpx.RemoteProtocolError, match="before the whole body came"):
        b"".join(truncated.iter_raw())
    slow = transport.stream(f"{base}/slow", [], {**_TIMEOUTS, "read": 0.2})
    with pytest.raises(httpx.ReadTimeout):
        b"".join(slow.iter_raw())


def test_a_whole_get_is_sent_again_on_a_closed_connection_and_says_errors(
    server: _Server,
) -> None:
    base = _base(server)
    transport = StdlibTransport(tls=None)
    server.drop_reused = True
    assert transport.get_whole(f"{base}/echo?1", [], _TIMEOUTS).content == b"1"
    assert transport.get_whole(f"{base}/echo?2", [], _TIMEOUTS).content == b"2"
    server.drop_reused = False
    with pytest.raises(httpx.RemoteProtocolError, match="before the whole body came"):
        transport.get_whole(f"{base}/truncated", [], _TIMEOUTS)
    with pytest.raises(httpx.ReadTimeout):
        transport.get_whole(f"{base}/slow", [], {**_TIMEOUTS, "read": 0.2})
    with pytest.raises(httpx.ConnectError):
        transport.get_whole(f"http://127.0.0.1:{_closed_port()}/", [], _TIMEOUTS)
    assert transport.get_whole(f"{base}/hello", [], _TIMEOUTS).content == b"hello"

"""torrip's HTTP client: made at its first request, TLS set up only for https."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from torrip.config import Settings
from torrip.http import get_whole, make_client, stream_get
from torrip.httptransport import TransportPerScheme


class _Handler(BaseHTTPRequestHandler):
    def answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Hello(_Handler):
    def do_GET(self) -> None:
        self.answer(b"hello")


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on loopback; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def plain_server() -> Iterator[str]:
    with _serving(_Hello) as url:
        yield url


def test_each_scheme_gets_a_transport_made_at_its_first_request() -> None:
    built: list[bool] = []

    def build(tls: bool) -> httpx.BaseTransport:
        built.append(tls)
        return httpx.MockTransport(lambda request: httpx.Response(200, text=f"tls={tls}"))

    with httpx.Client(transport=TransportPerScheme(build)) as client:
        assert built == []
        assert client.get("http://127.0.0.1:9/a").text == "tls=False"
        assert client.get("http://127.0.0.1:9/b").text == "tls=False"
        assert built == [False]
        assert client.get("https://127.0.0.1:9/c").text == "tls=True"
    assert built == [False, True]


def test_a_plain_http_index_needs_no_tls(
    plain_server: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_tls(*args: object, **kwargs: object) -> ssl.SSLContext:
        raise AssertionError("TLS set up for a plain HTTP request")

    settings = Settings(cache_dir=tmp_path)
    with make_client(settings) as client:
        monkeypatch.setattr(ssl, "create_default_context", no_tls)
        assert client.get(plain_server).text == "hello"


def test_a_closed_client_refuses_requests(tmp_path) -> None:
    client = make_client(Settings(cache_dir=tmp_path))
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.get("http://127.0.0.1:9/")


def test_the_tls_context_is_made_ahead_once_per_ca_setting(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    from torrip.http import _tls_context, prepare_tls

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    prepare_tls(Settings(cache_dir=tmp_path))
    default = _tls_context()
    assert default is _tls_context()
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    assert default.cert_store_stats()["x509_ca"] > 0

    # SSL_CERT_FILE names the CA file, as for httpx and pip: a context of its own.
    own = tmp_path / "ca.pem"
    own.write_bytes(Path(certifi.where()).read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(own))
    assert _tls_context() is not default
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(OSError):
        _tls_context()


class _ForwardProxy(_Handler):
    """A forward proxy for http:// URLs: takes absolute-form requests, records them, and
    relays them."""

    seen: list[str]

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # not itself
        with direct.open(self.path, timeout=10) as answer:
            self.answer(answer.read())


def test_the_environments_proxy_and_the_proxy_setting_carry_requests(
    plain_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As pip: HTTP_PROXY applies, or the proxy setting (--proxy) instead; NO_PROXY exempts
    hosts from either. (torrip's own connections serve what goes direct.)"""
    _ForwardProxy.seen = []
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with _serving(_ForwardProxy) as proxy:
        from_environment = Settings(cache_dir=tmp_path)
        from_setting = Settings(cache_dir=tmp_path, proxy=proxy)
        for settings, environment in (
            (from_environment, {"HTTP_PROXY": proxy}),
            (from_setting, {}),
        ):
            for name, value in environment.items():
                monkeypatch.setenv(name, value)
            _ForwardProxy.seen = []
            with make_client(settings) as client:
                assert client.get(plain_server).text == "hello"
            assert _ForwardProxy.seen == [plain_server]
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            with make_client(settings) as client:
                assert client.get(plain_server).text == "hello"
            assert _ForwardProxy.seen == [plain_server]  # not asked again
            for name in ("NO_PROXY", *environment):
                monkeypatch.delenv(name)


def test_a_proxy_that_cannot_be_reached_is_named(
    plain_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://user:secret@127.0.0.1:{unused.getsockname()[1]}"
    monkeypatch.setenv("HTTP_PROXY", closed)
    proxy = closed.replace("user:secret@", "")  # named without its credentials
    with (
        make_client(Settings(cache_dir=tmp_path, retries=0)) as client,
        pytest.raises(httpx.ConnectError, match=f"through the proxy {re.escape(proxy)}: "),
    ):
        client.get(plain_server)


class _Cookies(_Handler):
    """/set sets a cookie; any path answers with the Cookie header it was sent."""

    def do_GET(self) -> None:
        body = (self.headers.get("Cookie") or "-").encode()
        self.send_response(200)
        if self.path == "/set":
            self.send_header("Set-Cookie", "session=abc; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_cookies_a_server_sets_are_sent_back_and_others_not_made_up(tmp_path: Path) -> None:
    """The client's jar passes over responses without Set-Cookie unparsed; what a server
    does set is kept and sent again, as pip's session does."""
    with _serving(_Cookies) as url, make_client(Settings(cache_dir=tmp_path)) as client:
        assert client.get(url + "before").text == "-"
        assert client.get(url + "set").text == "-"
        assert client.get(url + "after").text == "session=abc"
        assert [cookie.name for cookie in client.cookies.jar] == ["session"]


class _Pages(_Handler):
    """/old redirects to /new; /set sets a cookie; every answer says the Cookie and
    Authorization headers it was sent."""

    def do_GET(self) -> None:
        if self.path == "/old":
            self.send_response(301)
            self.send_header("Location", "/new")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        said = f"{self.path} {self.headers.get('Cookie')} {self.headers.get('Authorization')}"
        self.send_response(200)
        if self.path == "/set":
            self.send_header("Set-Cookie", "session=abc; Path=/")
        self.send_header("Content-Length", str(len(said)))
        self.end_headers()
        self.wfile.write(said.encode())


def _whole(client: httpx.Client, url: str) -> tuple[str, int, bytes]:
    reply = get_whole(client, url)
    return reply.url, reply.status_code, reply.content


def _streamed(client: httpx.Client, url: str) -> tuple[str, int, bytes]:
    with stream_get(client, url) as response:
        return str(response.url), response.status_code, b"".join(response.iter_raw())


@pytest.mark.parametrize("get", [_whole, _streamed])
def test_gets_go_around_httpx_only_where_nothing_of_it_applies(
    get: Callable[[httpx.Client, str], tuple[str, int, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without credentials, proxy or cookie, get_whole and stream_get (the index client's
    pages and metadata files, the downloads) send no request through httpx's client (and
    follow redirects themselves); once a server set a cookie, or with the index's
    credentials, the client sends them as for any request."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with _serving(_Pages) as url:
        with make_client(Settings(cache_dir=tmp_path)) as client:
            client.get(url + "new")  # the client is made: from now on, watch its send()
            sent_by_httpx: list[str] = []
            send = httpx.Client.send

            def watched(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
                sent_by_httpx.append(request.url.path)
                return send(self, request, **kwargs)

            monkeypatch.setattr(httpx.Client, "send", watched)
            assert get(client, url + "old") == (url + "new", 200, b"/new None None")
            assert get(client, url + "set")[2] == b"/set None None"
            assert sent_by_httpx == []
            assert get(client, url + "new")[2] == b"/new session=abc None"
            assert sent_by_httpx == ["/new"]
        sent_by_httpx.clear()
        port = url.split(":")[2].rstrip("/")
        with_credentials = Settings(cache_dir=tmp_path, index_url=f"http://u:p@127.0.0.1:{port}/")
        with make_client(with_credentials) as client:
            assert get(client, url + "new")[2] == b"/new None Basic dTpw"
        assert sent_by_httpx == ["/new"]


@pytest.mark.parametrize("get", [_whole, _streamed])
def test_gets_take_the_proxy(
    get: Callable[[httpx.Client, str], tuple[str, int, bytes]],
    plain_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with _serving(_ForwardProxy) as proxy:
        _ForwardProxy.seen = []
        monkeypatch.setenv("HTTP_PROXY", proxy)
        with make_client(Settings(cache_dir=tmp_path)) as client:
            assert get(client, plain_server)[2] == b"hello"
        assert _ForwardProxy.seen == [plain_server]

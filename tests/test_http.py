"""torrip's HTTP client: made at its first request, TLS set up only for https."""

from __future__ import annotations

import ssl
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from torrip.config import Settings
from torrip.http import make_client
from torrip.httptransport import TransportPerScheme


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


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


class _ForwardProxy(BaseHTTPRequestHandler):
    """A forward proxy for http:// URLs: takes absolute-form requests, records them, and
    relays them."""

    seen: list[str]

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # not itself
        with direct.open(self.path, timeout=10) as answer:
            body = answer.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_environments_proxy_carries_requests(
    plain_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As pip: HTTP_PROXY applies (trust_env); torrip's own connections serve the rest."""
    _ForwardProxy.seen = []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
    try:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        with make_client(Settings(cache_dir=tmp_path)) as client:
            assert client.get(plain_server).text == "hello"
        assert _ForwardProxy.seen == [plain_server]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with make_client(Settings(cache_dir=tmp_path)) as client:
            assert client.get(plain_server).text == "hello"
        assert _ForwardProxy.seen == [plain_server]  # the proxy was not asked again
        # The proxy setting (--proxy) is used without the environment's; NO_PROXY holds.
        monkeypatch.delenv("HTTP_PROXY")
        monkeypatch.delenv("NO_PROXY")
        explicit = Settings(cache_dir=tmp_path, proxy=f"http://127.0.0.1:{proxy.server_address[1]}")
        with make_client(explicit) as client:
            assert client.get(plain_server).text == "hello"
        assert _ForwardProxy.seen == [plain_server, plain_server]
    finally:
        proxy.shutdown()
        proxy.server_close()

"""The transport behind torrip's HTTP client (``torrip.http``): one per scheme, built at first use.

A TLS transport loads the CA bundle (30 ms of CPU); an index or mirror served over plain
HTTP (an office's, a CI fleet's, a local ``torrip index serve``) never needs it.
"""

from __future__ import annotations

import base64
import http.cookiejar
import os
import threading
import urllib.request
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import httpx

from torrip.connections import StdlibTransport
from torrip.credentials import Origin, without_credentials
from torrip.fsutil import file_url_path
from torrip.ranges import ByteRange, parse_range

__all__ = [
    "CookieJar",
    "HostCredentials",
    "LocalFiles",
    "Offline",
    "TransportPerScheme",
    "environment_proxies",
]


class TransportPerScheme(httpx.BaseTransport):
    """Sends ``http://`` requests through ``build(tls=False)`` and the rest through
    ``build(tls=True)``, each made at its first request (thread-safe).

    ``proxies`` (scheme or ``all`` -> proxy URL, as ``urllib.request.getproxies`` reads
    them from the environment) send a request through ``build_proxy(proxy URL)`` instead,
    unless ``no_proxy`` exempts its host: the rules pip follows. (httpx reads the
    environment's proxies only for a client without a transport of its own.)
    """

    def __init__(
        self,
        build: Callable[[bool], httpx.BaseTransport],
        *,
        proxies: Mapping[str, str] | None = None,
        build_proxy: Callable[[str], httpx.BaseTransport] | None = None,
    ) -> None:
        self._build = build
        self._built: dict[bool | str, httpx.BaseTransport] = {}
        self._lock = threading.Lock()
        self._proxies = dict(proxies or {}) if build_proxy is not None else {}
        self._build_proxy = build_proxy
        self._bypassed: dict[str, bool] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        proxy = self._proxy_for(url.scheme, url.host, url.port)
        transport = self._transport(proxy or url.scheme != "http")
        if proxy is None:
            return transport.handle_request(request)
        try:
            return transport.handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:  # say which way it went
            raise type(error)(
                f"through the proxy {without_credentials(proxy)}: {error}", request=request
            ) from error

    def direct(self, scheme: str, host: str, port: int | None) -> StdlibTransport | None:
        """The connections an http(s) request to ``host`` goes through when they are
        torrip's own (``StdlibTransport.get_whole`` can use them); None through a proxy, or
        for a host named in other letters than ASCII (httpx encodes it as IDNA)."""
        if scheme not in ("http", "https") or not host.isascii():
            return None
        if self._proxy_for(scheme, host, port) is not None:
            return None
        transport = self._transport(scheme != "http")
        return transport if isinstance(transport, StdlibTransport) else None

    def _transport(self, key: bool | str) -> httpx.BaseTransport:
        transport = self._built.get(key)
        if transport is None:
            with self._lock:
                transport = self._built.get(key)
                if transport is None:
                    transport = self._built[key] = self._make(key)
        return transport

    def _proxy_for(self, scheme: str, host: str, port: int | None) -> str | None:
        if not self._proxies:
            return None
        proxy = self._proxies.get(scheme) or self._proxies.get("all")
        if proxy is None:
            return None
        host = host if port is None else f"{host}:{port}"
        bypassed = self._bypassed.get(host)
        if bypassed is None:
            bypassed = self._bypassed[host] = bool(urllib.request.proxy_bypass(host))
        return None if bypassed else proxy

    def _make(self, key: bool | str) -> httpx.BaseTransport:
        if isinstance(key, str):
            assert self._build_proxy is not None
            return self._build_proxy(key)
        return self._build(key)

    def close(self) -> None:
        with self._lock:
            for transport in self._built.values():
                transport.close()


def environment_proxies() -> dict[str, str]:
    """The proxies the environment names for http, https and every scheme (HTTP_PROXY,
    HTTPS_PROXY, ALL_PROXY and their lowercase forms), as pip reads them."""
    found = urllib.request.getproxies()
    return {scheme: found[scheme] for scheme in ("http", "https", "all") if found.get(scheme)}


class LocalFiles(httpx.BaseTransport):
    """Answers ``file:`` URLs as a static web server would: an index laid out in a local
    folder (``--index-url file:///srv/simple``, as pip reads one), its pages (a folder's
    ``index.json`` when JSON is accepted, as ``torrip index build`` writes it, else its
    ``index.html``), metadata files and range reads of wheels, through the same client."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = file_url_path(str(request.url))
        if path is None:
            return httpx.Response(400)
        if path.is_dir():
            json_page = path / "index.json"
            wants_json = _JSON_PAGE in request.headers.get("Accept", "")
            path = json_page if wants_json and json_page.is_file() else path / "index.html"
        try:
            with path.open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                header = request.headers.get("Range")
                wanted = parse_range(header, size) if header else None
                if wanted is None:
                    return httpx.Response(200, headers=_headers(path, size), content=file.read())
                if not isinstance(wanted, ByteRange):  # unsatisfiable
                    return httpx.Response(416, headers={"Content-Range": f"bytes */{size}"})
                file.seek(wanted.start)
                headers = {
                    **_headers(path, wanted.length),
                    "Content-Range": wanted.content_range(size),
                }
                return httpx.Response(206, headers=headers, content=file.read(wanted.length))
        except (FileNotFoundError, NotADirectoryError):
            return httpx.Response(404)
        except PermissionError:
            return httpx.Response(403)


_JSON_PAGE = "application/vnd.pypi.simple.v1+json"


def _headers(path: Path, length: int) -> dict[str, str]:
    if path.name == "index.json":
        kind = _JSON_PAGE
    elif path.suffix in (".html", ".htm"):
        kind = "text/html"
    else:
        kind = "application/octet-stream"
    return {"Content-Type": kind, "Content-Length": str(length), "Accept-Ranges": "bytes"}


class HostCredentials(httpx.Auth):
    """Basic auth for each request (``torrip.credentials``), from: its own URL, else the
    index URL of the same scheme, host and port that has credentials, else the netrc
    file's entry for the host (or its ``default``). With a ``keyring`` (pip's
    ``--keyring-provider subprocess``), a 401 asks it for the origin's credentials, and
    the request is sent again with them (``keyring_credentials`` asks once per origin, one
    question at a time: requests that meet the 401 together wait for the one answer)."""

    def __init__(
        self,
        by_origin: Mapping[Origin, tuple[str, str]],
        netrc: Mapping[str, tuple[str, str]],
        keyring: Callable[[str, str | None], tuple[str, str] | None] | None = None,
    ) -> None:
        self._by_origin = dict(by_origin)
        self._netrc = dict(netrc)
        self._keyring = keyring
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url = request.url
        origin = (url.scheme, url.host, url.port)
        user: str | None = url.username or None
        if "Authorization" not in request.headers:
            found: tuple[str, str] | None
            if url.password:
                found = (url.username, url.password)
            else:
                with self._lock:
                    found = self._by_origin.get(origin)
                if found is None and not user:
                    found = self._netrc.get(url.host) or self._netrc.get("default")
            if found is not None:
                _set_basic(request, found)
                user = found[0]
        response = yield request
        if response.status_code != 401 or self._keyring is None:
            return
        found = self._keyring(without_credentials(str(url)), user)
        if found is None:
            return
        with self._lock:
            self._by_origin[origin] = found
        _set_basic(request, found)
        yield request


def _set_basic(request: httpx.Request, credentials: tuple[str, str]) -> None:
    token = base64.b64encode(":".join(credentials).encode("utf-8")).decode("ascii")
    request.headers["Authorization"] = f"Basic {token}"


class Offline(httpx.BaseTransport):
    """--offline: every request over the network is an OfflineError naming its URL (what
    the caches hold is found before any request is made)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from torrip.credentials import without_credentials
        from torrip.errors import OfflineError

        raise OfflineError(without_credentials(str(request.url)))


class CookieJar(http.cookiejar.CookieJar):
    """The client's cookies, as a browser keeps them. Indexes and file servers seldom set
    any: a response without Set-Cookie is passed over before its headers are parsed into
    the email message the standard jar reads them from (35 us of each request's CPU)."""

    def extract_cookies(self, response: Any, request: urllib.request.Request) -> None:
        headers = getattr(getattr(response, "response", None), "headers", None)  # httpx's
        if isinstance(headers, httpx.Headers) and not (
            "set-cookie" in headers or "set-cookie2" in headers
        ):
            return
        super().extract_cookies(response, request)

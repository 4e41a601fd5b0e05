"""The transport behind torrip's HTTP client (``torrip.http``): one per scheme, built at first use.

A TLS transport loads the CA bundle (30 ms of CPU); an index or mirror served over plain
HTTP (an office's, a CI fleet's, a local ``torrip index serve``) never needs it.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Generator, Mapping
from pathlib import Path

import httpx

from torrip.credentials import Origin, without_credentials
from torrip.fsutil import file_url_path

__all__ = ["HostCredentials", "LocalFiles", "Offline", "TransportPerScheme"]


class TransportPerScheme(httpx.BaseTransport):
    """Sends ``http://`` requests through ``build(tls=False)`` and the rest through
    ``build(tls=True)``, each made at its first request (thread-safe)."""

    def __init__(self, build: Callable[[bool], httpx.BaseTransport]) -> None:
        self._build = build
        self._built: dict[bool, httpx.BaseTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        tls = request.url.scheme != "http"
        transport = self._built.get(tls)
        if transport is None:
            with self._lock:
                transport = self._built.get(tls)
                if transport is None:
                    transport = self._built[tls] = self._build(tls)
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            for transport in self._built.values():
                transport.close()


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
                wanted = _byte_range(request.headers.get("Range"), size)
                if wanted is None:
                    return httpx.Response(200, headers=_headers(path, size), content=file.read())
                start, end = wanted
                file.seek(start)
                headers = {
                    **_headers(path, end - start + 1),
                    "Content-Range": f"bytes {start}-{end}/{size}",
                }
                return httpx.Response(206, headers=headers, content=file.read(end - start + 1))
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


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first (start, end) of a ``Range: bytes=...`` header, inclusive; None for all."""
    if not header or not header.startswith("bytes=") or size == 0:
        return None
    first = header[len("bytes=") :].split(",")[0].strip()
    start_text, _, end_text = first.partition("-")
    try:
        if not start_text:  # the last N bytes
            return max(0, size - int(end_text)), size - 1
        start = int(start_text)
        end = min(int(end_text), size - 1) if end_text else size - 1
    except ValueError:
        return None
    return (start, end) if start <= end else None


class HostCredentials(httpx.Auth):
    """Basic auth for each request (``torrip.credentials``), from: its own URL, else the
    index URL of the same scheme, host and port that has credentials, else the netrc
    file's entry for the host (or its ``default``). With a ``keyring`` (pip's
    ``--keyring-provider subprocess``), a 401 asks it for the origin's credentials once,
    and the request is sent again with them."""

    def __init__(
        self,
        by_origin: Mapping[Origin, tuple[str, str]],
        netrc: Mapping[str, tuple[str, str]],
        keyring: Callable[[str, str | None], tuple[str, str] | None] | None = None,
    ) -> None:
        self._by_origin = dict(by_origin)
        self._netrc = dict(netrc)
        self._keyring = keyring
        self._asked: dict[Origin, threading.Event] = {}  # set once the keyring answered
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
        # Requests at once to the origin all meet the 401: one asks, the others wait for it.
        with self._lock:
            answered = self._asked.get(origin)
            asking = answered is None
            if answered is None:
                answered = self._asked[origin] = threading.Event()
        if asking:
            service = without_credentials(str(url))
            found = self._keyring(service, user)
            with self._lock:
                if found is not None:
                    self._by_origin[origin] = found
            answered.set()
        else:
            answered.wait(60)
            with self._lock:
                found = self._by_origin.get(origin)
        if found is None:
            return
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

"""The origin as a web seed, through a relay on loopback that counts every byte.

libtorrent can fetch pieces from a file's URL (a BEP 19 web seed), but its own
counters miss web-seed bytes, and the product's headline is how few bytes the
origin served. So a swarm download never gives libtorrent the origin's URL: it gives
a URL on this relay, which forwards each ranged GET to the origin with torrip's own
HTTP client (its TLS, proxies and timeouts) and counts the bytes it reads.

    with OriginRelay(http) as relay:
        route = relay.open("https://files.example/demo.whl", "demo.whl", on_bytes)
        handle.add_url_seed(route.url)        # libtorrent asks the relay
        ...
        route.bytes                           # exactly what the origin sent for it
        relay.close_route(route)

The relay listens on 127.0.0.1 only; each route has an unguessable token, so
nothing else on the machine can use it to reach the origin.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

import httpx

from torrip.closing import Closing

__all__ = ["OriginRelay", "RelayRoute"]

_CHUNK = 256 * 1024


@dataclass
class RelayRoute:
    """One file's way to its origin; ``bytes`` counts what the origin sent for it."""

    token: str
    origin_url: str
    url: str
    on_bytes: Callable[[int], None]
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, n: int) -> None:
        with self._lock:
            self.bytes += n
        self.on_bytes(n)


class OriginRelay(Closing):
    """A loopback HTTP server relaying ranged GETs to origins, counting bytes per route."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self._routes: dict[str, RelayRoute] = {}
        self._lock = threading.Lock()
        self._server = _RelayServer(("127.0.0.1", 0), _RelayHandler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="torrip-relay",
            daemon=True,
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def open(self, origin_url: str, filename: str, on_bytes: Callable[[int], None]) -> RelayRoute:
        token = secrets.token_urlsafe(16)
        route = RelayRoute(
            token, origin_url, f"{self.base_url}/{token}/{quote(filename)}", on_bytes
        )
        with self._lock:
            self._routes[token] = route
        return route

    def close_route(self, route: RelayRoute) -> None:
        with self._lock:
            self._routes.pop(route.token, None)

    def route(self, token: str) -> RelayRoute | None:
        with self._lock:
            return self._routes.get(token)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _RelayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        relay: OriginRelay,
    ) -> None:
        super().__init__(address, handler)
        self.relay = relay


def _parse_range(header: str | None) -> tuple[int, int | None] | None:
    """``bytes=a-b`` or ``bytes=a-`` -> (a, b or None); anything else -> None."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    start, sep, end = header[len("bytes=") :].partition("-")
    if not sep or not start.isdigit() or (end and not end.isdigit()):
        return None
    return int(start), int(end) if end else None


class _RelayHandler(BaseHTTPRequestHandler):
    server: _RelayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # libtorrent's requests are not the user's business

    def do_GET(self) -> None:
        parts = urlsplit(self.path).path.split("/")
        route = self.server.relay.route(unquote(parts[1])) if len(parts) == 3 else None
        if route is None:
            self._reply_error(404)
            return
        wanted = _parse_range(self.headers.get("Range"))
        headers = {"Range": self.headers["Range"]} if wanted is not None else {}
        try:
            with self.server.relay.http.stream("GET", route.origin_url, headers=headers) as answer:
                if answer.status_code not in (200, 206):
                    self._reply_error(502 if answer.status_code >= 500 else answer.status_code)
                    return
                self._relay_body(route, answer, wanted)
        except (httpx.HTTPError, OSError):
            with contextlib.suppress(OSError):
                self._reply_error(502)

    def _relay_body(
        self, route: RelayRoute, answer: httpx.Response, wanted: tuple[int, int | None] | None
    ) -> None:
        skip = 0
        length = answer.headers.get("Content-Length")
        if answer.status_code == 200 and wanted is not None:
            # The origin ignored the range: pass on only the part libtorrent asked for.
            total = int(length) if length and length.isdigit() else None
            start, end = wanted
            if total is None:
                self._reply_error(502)
                return
            end = total - 1 if end is None else min(end, total - 1)
            skip, length = start, str(end - start + 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        else:
            self.send_response(answer.status_code)
            if "Content-Range" in answer.headers:
                self.send_header("Content-Range", answer.headers["Content-Range"])
        if length is not None:
            self.send_header("Content-Length", length)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        remaining = int(length) if length is not None and length.isdigit() else None
        for chunk in answer.iter_raw(_CHUNK):
            route.count(len(chunk))  # the origin sent these, whatever libtorrent does next
            if skip:
                drop = min(skip, len(chunk))
                chunk, skip = chunk[drop:], skip - drop
            if remaining is not None:
                chunk = chunk[:remaining]
                remaining -= len(chunk)
            if chunk:
                self.wfile.write(chunk)
            if remaining == 0:
                break

    def _reply_error(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

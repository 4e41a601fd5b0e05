"""Serve a built index over HTTP: a small threaded server for a team's index and for tests.

    with IndexServer(Path("public"), port=0) as server:
        print(server.url)          # http://127.0.0.1:PORT/simple/
        ...                         # pip install --index-url {server.url} ...

It serves the folder written by ``build_index`` with what clients expect of an
index: PEP 691 content negotiation on ``/simple/`` pages (``Vary: Accept``),
redirects to normalized project names, byte ranges, HEAD, ETag and
Last-Modified revalidation (304), and HTTP/1.1 keep-alive. Any path that would
leave the folder (``..``, encoded or not, symlinks pointing out, dotfiles) is 404.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from torrip import __version__
from torrip.indexserver.negotiation import PageFormat, choose_format
from torrip.ranges import UNSATISFIABLE, ByteRange, parse_range

__all__ = ["FORMATS", "IndexServer", "RequestRecord"]

FORMATS = ("json", "html")
PAGE_CACHE_CONTROL = "max-age=600"
_PAGE_FILES = {"index.json": "json", "index.html": "html"}
_CONTENT_TYPES = {
    ".whl": "application/octet-stream",
    ".gz": "application/gzip",
    ".zip": "application/zip",
    ".metadata": "text/plain; charset=utf-8",
    ".torrent": "application/x-bittorrent",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
}


class RequestRecord(NamedTuple):
    """One answered request, as ``on_request`` receives it."""

    method: str
    path: str  # as requested, without the query
    status: int
    bytes_sent: int  # body bytes
    range: str | None  # the Range header, if any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections when installers open dozens
    # at once (uv opens 50), and the kernel's retry makes clients wait seconds.
    request_queue_size = socket.SOMAXCONN

    def __init__(
        self,
        address: tuple[str, int],
        root: Path,
        formats: Sequence[str],
        on_request: Callable[[RequestRecord], None] | None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.root = root.resolve()
        self.formats = tuple(formats)
        self.on_request = on_request
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        # Requests between their first line and their on_request call.
        self.active = 0
        self.idle = threading.Condition()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up is no error of the server's; anything else is reported.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End open keep-alive connections, so a stopped server answers nothing more."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class IndexServer:
    """Serves ``root`` (a folder written by ``build_index``) on ``host:port``.

    ``port=0`` picks a free port; ``url`` then tells which. ``formats`` limits the
    page formats: ``("html",)`` answers HTML whatever the client asks, like an old
    index; ``("json",)`` answers JSON, or 406 to a client that takes only HTML.
    ``on_request`` is called once per answered request, from the serving thread.
    """

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RequestRecord], None] | None = None,
        *,
        formats: Sequence[str] = FORMATS,
    ) -> None:
        unknown = set(formats) - set(FORMATS)
        if unknown or not formats:
            raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {formats!r}")
        self.root = Path(root)
        self._server = _Server((host, port), self.root, formats, on_request)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL of the served folder, ending in ``/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def url(self) -> str:
        """The simple index URL, for ``--index-url``."""
        return f"{self.base_url}simple/"

    def start(self) -> IndexServer:
        """Serve from a background (daemon) thread; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"torrip-index-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop`` is called from another (or Ctrl-C)."""
        try:
            self._server.serve_forever(poll_interval=0.25)
        finally:
            self._server.server_close()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being answered; False if ``timeout`` passed first.

        A client has its response before the server has reported it to
        ``on_request``; tests that count requests call this first.
        """
        with self._server.idle:
            return self._server.idle.wait_for(lambda: self._server.active == 0, timeout)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._server.close_connections()

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = f"torrip-index/{__version__}"
    sys_version = ""
    # An idle keep-alive connection gives its thread back after this many seconds.
    timeout = 60
    # Headers and body go out in separate writes; Nagle + delayed ACK would stall each by 40 ms.
    disable_nagle_algorithm = True

    _status = 0
    _sent = 0

    # -- plumbing ----------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass  # on_request reports requests; nothing goes to stderr

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = int(code)
        super().send_response(code, message)

    def _record(self) -> None:
        callback = self.server.on_request
        if callback is None or not self._status:
            return
        callback(
            RequestRecord(
                method=self.command,
                path=urlsplit(self.path).path,
                status=self._status,
                bytes_sent=self._sent,
                range=self.headers.get("Range"),
            )
        )

    def _handle(self, answer: Callable[[], None]) -> None:
        self._status = 0
        self._sent = 0
        with self.server.idle:
            self.server.active += 1
        try:
            answer()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            self.close_connection = True
            if not self._status:
                self._send_text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n", head=False)
            raise  # handle_error prints the traceback
        finally:
            try:
                self._record()
            finally:
                with self.server.idle:
                    self.server.active -= 1
                    self.server.idle.notify_all()

    def do_GET(self) -> None:
        self._handle(lambda: self._route(head=False))

    def do_HEAD(self) -> None:
        self._handle(lambda: self._route(head=True))

    def _method_not_allowed(self) -> None:
        self._handle(
            lambda: self._send_text(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method not allowed\n",
                head=self.command == "HEAD",
                headers={"Allow": "GET, HEAD"},
            )
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _send_text(
        self, status: int, text: str, *, head: bool, headers: dict[str, str] | None = None
    ) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)
            self._sent += len(body)

    def _not_found(self, head: bool) -> None:
        self._send_text(HTTPStatus.NOT_FOUND, "not found\n", head=head)

    def _redirect(self, location: str, query: str, head: bool) -> None:
        if query:
            location = f"{location}?{query}"
        self._send_text(
            HTTPStatus.MOVED_PERMANENTLY,
            f"see {location}\n",
            head=head,
            headers={"Location": location},
        )

    # -- routing -----------------------------------------------------------------------

    def _route(self, head: bool) -> None:
        parts = urlsplit(self.path)
        segments = _safe_segments(parts.path)
        if segments is None:
            self._not_found(head)
            return
        names, trailing_slash = segments
        if not names:
            self._redirect("/simple/", parts.query, head)
            return
        if names[0] == "simple" and len(names) <= 2:
            if len(names) == 2 and names[1] in _PAGE_FILES:
                self._serve_page_file(names, head)
                return
            if len(names) == 2:
                project = canonicalize_name(names[1])
                if project != names[1] or not trailing_slash:
                    self._redirect(f"/simple/{project}/", parts.query, head)
                    return
            elif not trailing_slash:
                self._redirect("/simple/", parts.query, head)
                return
            self._serve_negotiated(names, head)
            return
        if names[0] == "simple" and len(names) == 3 and names[2] in _PAGE_FILES:
            self._serve_page_file(names, head)
            return
        if trailing_slash:
            self._not_found(head)
            return
        path = self._resolve(names)
        if path is None:
            self._not_found(head)
            return
        self._send_file(path, _content_type(path.name), head=head)

    def _resolve(self, names: Sequence[str]) -> Path | None:
        """The file at ``names`` under the root, or None if absent or outside the root."""
        candidate = self.server.root.joinpath(*names)
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(self.server.root) or not resolved.is_file():
            return None
        return resolved

    def _serve_page_file(self, names: Sequence[str], head: bool) -> None:
        family = _PAGE_FILES[names[-1]]
        path = self._resolve(names)
        if family not in self.server.formats or path is None:
            self._not_found(head)
            return
        self._send_file(
            path,
            _content_type(path.name),
            head=head,
            headers={"Cache-Control": PAGE_CACHE_CONTROL},
        )

    def _serve_negotiated(self, names: Sequence[str], head: bool) -> None:
        page_format = choose_format(self.headers.get("Accept"), self.server.formats)
        if page_format is None:
            offered = ", ".join(f.value for f in PageFormat if f.family in self.server.formats)
            self._send_text(
                HTTPStatus.NOT_ACCEPTABLE,
                f"this index serves {offered}\n",
                head=head,
                headers={"Vary": "Accept"},
            )
            return
        path = self._resolve([*names, f"index.{page_format.family}"])
        if path is None:
            self._not_found(head)
            return
        self._send_file(
            path,
            page_format.content_type,
            head=head,
            headers={"Cache-Control": PAGE_CACHE_CONTROL, "Vary": "Accept"},
            etag_suffix=f"-{page_format.family}",
        )

    # -- files -------------------------------------------------------------------------

    def _send_file(
        self,
        path: Path,
        content_type: str,
        *,
        head: bool,
        headers: dict[str, str] | None = None,
        etag_suffix: str = "",
    ) -> None:
        try:
            handle = path.open("rb")
        except OSError:
            self._not_found(head)
            return
        with handle:
            stat = os.fstat(handle.fileno())
            size = stat.st_size
            etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}{etag_suffix}"'
            last_modified = formatdate(stat.st_mtime, usegmt=True)
            common = {"ETag": etag, "Last-Modified": last_modified, **(headers or {})}
            if self._not_modified(etag, int(stat.st_mtime)):
                # No Content-Length: on a 304 it would have to be the full body's length.
                self.send_response(HTTPStatus.NOT_MODIFIED)
                for key, value in common.items():
                    self.send_header(key, value)
                self.end_headers()
                return
            byte_range = self._requested_range(size, etag, last_modified)
            if byte_range is UNSATISFIABLE:
                self._send_text(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                    "range not satisfiable\n",
                    head=head,
                    headers={"Content-Range": f"bytes */{size}", **common},
                )
                return
            if isinstance(byte_range, ByteRange):
                self.send_response(HTTPStatus.PARTIAL_CONTENT)
                self.send_header("Content-Range", byte_range.content_range(size))
                start, length = byte_range.start, byte_range.length
            else:
                self.send_response(HTTPStatus.OK)
                start, length = 0, size
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            for key, value in common.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self._copy_body(handle, start, length)

    def _copy_body(self, handle: BinaryIO, start: int, length: int) -> None:
        # sendfile(2): no copies through Python, and the GIL is free while the kernel sends.
        try:
            sent = self.connection.sendfile(handle, offset=start, count=length)
        except OSError:
            self.close_connection = True  # the client went away
            return
        self._sent += sent
        if sent < length:
            self.close_connection = True  # the file shrank under us

    def _not_modified(self, etag: str, mtime: int) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [tag.strip() for tag in if_none_match.split(",")]
            return "*" in tags or any(_weak(tag) == _weak(etag) for tag in tags)
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                since = parsedate_to_datetime(if_modified_since).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return False
            return mtime <= since
        return False

    def _requested_range(self, size: int, etag: str, last_modified: str) -> object:
        header = self.headers.get("Range")
        if not header:
            return None
        if_range = self.headers.get("If-Range")
        # If-Range: the range holds only for the same (strongly matching) representation.
        if if_range is not None and if_range.strip() not in (etag, last_modified):
            return None
        return parse_range(header, size)


def _weak(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def _content_type(filename: str) -> str:
    suffix = "." + filename.rsplit(".", 1)[-1] if "." in filename else ""
    return _CONTENT_TYPES.get(suffix, "application/octet-stream")


def _safe_segments(raw_path: str) -> tuple[list[str], bool] | None:
    """The decoded path segments and whether the path ends in ``/``; None if unsafe.

    Unsafe: not absolute, NUL or backslash, empty, ``.`` or ``..`` or dot-prefixed
    segments (after percent-decoding, so ``%2e%2e`` is ``..`` too).
    """
    if not raw_path.startswith("/"):
        return None
    try:
        decoded = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in decoded or "\\" in decoded:
        return None
    trailing_slash = decoded.endswith("/") and decoded != "/"
    body = decoded[1:-1] if trailing_slash else decoded[1:]
    if not body:
        return [], False
    names = body.split("/")
    if any(not name or name.startswith(".") for name in names):
        return None
    return names, trailing_slash

"""HTTP/1.1 connections under torrip's httpx client, made with the standard library's
``http.client``.

httpx's Client stays (redirects, auth, timeouts, its exception tree), and so does its
transport for proxied requests (``torrip.httptransport`` routes them). What this replaces
is its default transport, httpcore with h11 in pure Python, whose pool
bookkeeping grows with the connections open. A cold resolve of jupyterlab sends 190
requests from 16 threads under one GIL: sending them took 220-275 ms of CPU through
httpcore and takes 160-210 ms through these connections; one request after another,
0.55 ms against 0.42-0.46 ms each (docs/benchmarks.md, resolution, session 8).

torrip bounds the requests it has in flight itself (the index client's and the
fetcher's widths), so there is no limit here on connections open at once; only idle
ones are capped, per origin.

``StdlibTransport.get_whole`` sends a GET over the same connections without httpx's
request and response objects, and reads the body whole: what the index client's pages
and metadata files need where no credentials or proxy apply (``torrip.http.get_whole``).
``StdlibTransport.stream`` does the same for a body read as it arrives: a download's
(``torrip.http.stream_get``).
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import time
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

__all__ = ["Reply", "StdlibTransport", "Streamed"]

Origin = tuple[str, str, int]

# Requests that can be sent again when a kept-alive connection turns out to have been
# closed by the server before it read them (RFC 9110, 9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
# A body is read as it arrives, at most this much at a time (one recv each: a slow link
# still shows progress); on a fast link, large reads mean fewer trips through Python and
# fewer hand-offs of the GIL between downloading threads.
_CHUNK = 1024 * 1024
# httpcore's schedule for --retries: again at once, then after 0.5 s, 1 s, 2 s...
_BACKOFF = 0.5


class _Stale(Exception):
    """A reused connection closed before any of the response came."""


class Reply(NamedTuple):
    """A response read whole (``get_whole``): named as httpx.Response's fields are."""

    url: str
    status_code: int
    headers: Mapping[str, str]  # lower-case names; a repeated one's values joined by ", "
    content: bytes  # decoded as its Content-Encoding says
    header_list: tuple[tuple[str, str], ...] = ()  # as they came (Set-Cookie's must not join)

    @classmethod
    def of(
        cls, url: str, status: int, header_list: tuple[tuple[str, str], ...], content: bytes
    ) -> Reply:
        """The reply with these headers (lower-case names), repeated ones joined."""
        return cls(url, status, _joined(header_list), content, header_list)


class Streamed(NamedTuple):
    """A response whose body is read as it arrives (``stream``); named as httpx.Response's
    fields are. ``close`` keeps the connection for the next request if the body was read
    to its end, and closes it otherwise."""

    url: str
    status_code: int
    headers: Mapping[str, str]  # as Reply's
    header_list: tuple[tuple[str, str], ...]
    body: _Body

    def iter_raw(self) -> Iterator[bytes]:
        """The body's bytes as they come, undecoded."""
        return iter(self.body)

    def close(self) -> None:
        self.body.close()


def _joined(header_list: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in header_list:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class StdlibTransport(httpx.BaseTransport):
    """One pool of kept-alive connections per origin; thread-safe.

    ``tls``: the context for https (None: plain http only). ``retries``: how many more
    times a connection that cannot be made is tried (pip's and httpx's ``retries``).
    ``unverified_hosts``: hosts (``host`` for any port, or ``host:port``) whose https
    certificate is not checked (the ``trusted-host`` setting).
    """

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None,
        retries: int = 0,
        max_idle_per_origin: int = 16,
        keepalive_expiry: float = 30.0,
        unverified_hosts: Collection[str] = (),
    ) -> None:
        self._tls = tls
        self._unverified = frozenset(host.lower() for host in unverified_hosts)
        self._unverified_tls: ssl.SSLContext | None = None
        self._retries = retries
        self._max_idle = max_idle_per_origin
        self._expiry = keepalive_expiry
        self._idle: dict[Origin, list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https") or (url.scheme == "https" and self._tls is None):
            raise httpx.UnsupportedProtocol(
                f"no transport for {url.scheme!r} URLs", request=request
            )
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = request.read()
        while True:
            connection, reused = self._open(origin, timeouts, request)
            try:
                response = _exchange(connection, request, body, timeouts, reused=reused)
            except _Stale:
                connection.close()
                if request.method in _IDEMPOTENT:
                    continue
                raise httpx.RemoteProtocolError(
                    "the server closed the connection before answering", request=request
                ) from None
            except BaseException:
                connection.close()
                raise
            return httpx.Response(
                response.status,
                headers=response.getheaders(),
                stream=_Body(
                    self, origin, connection, response, request, head=request.method == "HEAD"
                ),
                extensions={
                    "http_version": b"HTTP/1.1" if response.version == 11 else b"HTTP/1.0",
                    "reason_phrase": response.reason.encode("latin-1", errors="replace"),
                },
            )

    def get_whole(
        self,
        url: str,
        headers: Iterable[tuple[str, str]],
        timeouts: dict[str, float | None],
    ) -> Reply:
        """GET ``url`` (http or https) with ``headers`` (Host and Accept-Encoding are
        added), and read the body whole; no redirect is followed. Raises httpx's
        exceptions, as ``handle_request`` does."""
        origin, connection, response = self._get(
            url, [("Accept-Encoding", "gzip, deflate"), *headers], timeouts
        )
        try:
            body = _read_whole(response)
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self.release(origin, connection)
        reply = Reply.of(url, response.status, _listed(response), body)
        return reply._replace(content=_decoded(body, reply.headers))

    def stream(
        self,
        url: str,
        headers: Iterable[tuple[str, str]],
        timeouts: dict[str, float | None],
    ) -> Streamed:
        """GET ``url`` (http or https) with ``headers`` (Host is added; a body to read
        undecoded should ask for ``Accept-Encoding: identity``), and give the response
        once its head has come; no redirect is followed. Raises httpx's exceptions, as
        ``handle_request`` does; so does reading the body. Close what it gives."""
        origin, connection, response = self._get(url, headers, timeouts)
        listed = _listed(response)
        body = _Body(self, origin, connection, response, None, head=False)
        return Streamed(url, response.status, _joined(listed), listed, body)

    def _get(
        self,
        url: str,
        headers: Iterable[tuple[str, str]],
        timeouts: dict[str, float | None],
    ) -> tuple[Origin, http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a GET and read the response's head: the connection, which the caller
        releases or closes once it has read the body."""
        parts = urlsplit(url)
        scheme = parts.scheme
        if scheme not in ("http", "https") or (scheme == "https" and self._tls is None):
            raise httpx.UnsupportedProtocol(f"no transport for {scheme!r} URLs")
        origin = (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        while True:
            connection, reused = self._open(origin, timeouts, None)
            try:
                response = _send(
                    connection, "GET", target, headers, b"", timeouts, reused=reused, request=None
                )
            except _Stale:
                connection.close()
                continue  # a GET may be sent again
            except BaseException:
                connection.close()
                raise
            return origin, connection, response

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [connection for pool in self._idle.values() for connection, _ in pool]
            self._idle.clear()
        for connection in idle:
            connection.close()

    # the pool ---------------------------------------------------------------------------

    def _open(
        self, origin: Origin, timeouts: dict[str, float | None], request: httpx.Request | None
    ) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to ``origin`` and True, else a new one and False."""
        connection = self._take_idle(origin)
        if connection is not None:
            return connection, True
        return self._connect(origin, timeouts, request), False

    def _take_idle(self, origin: Origin) -> http.client.HTTPConnection | None:
        """The most recently used idle connection that is still open, if any."""
        now = time.monotonic()
        while True:
            with self._lock:
                pool = self._idle.get(origin)
                if not pool:
                    return None
                connection, since = pool.pop()
            if now - since < self._expiry and not _closed_by_peer(connection):
                return connection
            connection.close()

    def release(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        """Keep ``connection`` (its response read to the end) for the next request."""
        with self._lock:
            pool = self._idle.setdefault(origin, [])
            if not self._closed and connection.sock is not None and len(pool) < self._max_idle:
                pool.append((connection, time.monotonic()))
                return
        connection.close()

    def _context_for(self, host: str, port: int) -> ssl.SSLContext | None:
        if self._unverified and (
            host.lower() in self._unverified or f"{host.lower()}:{port}" in self._unverified
        ):
            if self._unverified_tls is None:
                self._unverified_tls = _unverified_context()
            return self._unverified_tls
        return self._tls

    def _connect(
        self, origin: Origin, timeouts: dict[str, float | None], request: httpx.Request | None
    ) -> http.client.HTTPConnection:
        scheme, host, port = origin
        attempts = 0
        while True:
            connection: http.client.HTTPConnection
            if scheme == "https":
                connection = http.client.HTTPSConnection(
                    host,
                    port,
                    timeout=timeouts.get("connect"),
                    context=self._context_for(host, port),
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=timeouts.get("connect"))
            try:
                connection.connect()
                return connection
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                # A certificate that fails verification will fail again: no retry.
                if attempts >= self._retries or isinstance(exc, ssl.SSLCertVerificationError):
                    if isinstance(exc, TimeoutError):
                        raise httpx.ConnectTimeout(
                            str(exc) or "timed out", request=request
                        ) from exc
                    raise httpx.ConnectError(
                        str(exc) or type(exc).__name__, request=request
                    ) from exc
                time.sleep(_BACKOFF * 2 ** (attempts - 1) if attempts else 0)
                attempts += 1


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection has something to read: the server's close (or bytes
    it should not have sent). Either way it cannot carry another request."""
    sock = connection.sock
    if sock is None:
        return True
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _exchange(
    connection: http.client.HTTPConnection,
    request: httpx.Request,
    body: bytes,
    timeouts: dict[str, float | None],
    *,
    reused: bool,
) -> http.client.HTTPResponse:
    # httpx's headers carry Host and Accept-Encoding.
    headers = [(name.decode("latin-1"), value) for name, value in request.headers.raw]
    target = request.url.raw_path.decode("ascii")
    return _send(
        connection, request.method, target, headers, body, timeouts, reused=reused, request=request
    )


def _send(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str | bytes]],
    body: bytes,
    timeouts: dict[str, float | None],
    *,
    reused: bool,
    request: httpx.Request | None,
) -> http.client.HTTPResponse:
    """Send a request and read the response's head. Without httpx's ``request`` (whose
    headers hold Host), http.client says the Host."""
    sock = connection.sock
    assert sock is not None
    try:
        sock.settimeout(timeouts.get("write"))
        connection.putrequest(
            method, target, skip_host=request is not None, skip_accept_encoding=True
        )
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders(body or None)
    except TimeoutError as exc:
        raise httpx.WriteTimeout(str(exc) or "timed out", request=request) from exc
    except OSError as exc:
        if reused:
            raise _Stale from exc
        raise httpx.WriteError(str(exc), request=request) from exc
    try:
        sock.settimeout(timeouts.get("read"))
        return connection.getresponse()
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
        if reused:
            raise _Stale from exc
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except http.client.HTTPException as exc:
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc), request=request) from exc


def _listed(response: http.client.HTTPResponse) -> tuple[tuple[str, str], ...]:
    """The response's headers as they came, their names in lower case."""
    return tuple((name.lower(), value) for name, value in response.getheaders())


def _read_whole(response: http.client.HTTPResponse) -> bytes:
    """The rest of ``response``'s body, with _Body's errors."""
    try:
        body = response.read()
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out") from exc
    except http.client.IncompleteRead as exc:
        raise httpx.RemoteProtocolError(
            "the server closed the connection before the whole body came "
            f"({exc.expected} bytes missing)"
        ) from exc
    except http.client.HTTPException as exc:
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc)) from exc
    return body


def _decoded(body: bytes, headers: Mapping[str, str]) -> bytes:
    """``body`` undone of its Content-Encoding (the last one applied first), as httpx
    decodes it."""
    for coding in reversed(headers.get("content-encoding", "").split(",")):
        coding = coding.strip().lower()
        try:
            if coding in ("gzip", "x-gzip"):
                body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
            elif coding == "deflate":  # zlib-wrapped, as it should be, or raw as some send
                try:
                    body = zlib.decompress(body)
                except zlib.error:
                    body = zlib.decompress(body, -zlib.MAX_WBITS)
            elif coding not in ("", "identity"):
                raise httpx.RemoteProtocolError(f"a body encoded as {coding!r}, not asked for")
        except zlib.error as exc:
            raise httpx.RemoteProtocolError(f"a body that is not valid {coding}: {exc}") from None
    return body


class _Body(httpx.SyncByteStream):
    """A response's body as it arrives; its connection goes back to the pool once the
    body is read to the end, and is closed if the response is closed before that."""

    def __init__(
        self,
        transport: StdlibTransport,
        origin: Origin,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        request: httpx.Request | None,
        *,
        head: bool,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection: http.client.HTTPConnection | None = connection
        self._response = response
        self._request = request  # httpx's, if it sent the request: its errors name it
        self._head = head  # the answer to a HEAD request: no body, whatever it says

    def __iter__(self) -> Iterator[bytes]:
        response = self._response
        while True:
            try:
                if response.length == 0 or self._head:
                    # Nothing left: read() ends the body, which read1 would leave open,
                    # and the connection is kept for the next request.
                    chunk = response.read()
                else:
                    chunk = response.read1(_CHUNK)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(str(exc) or "timed out", request=self._request) from exc
            except http.client.HTTPException as exc:  # a broken chunked body among them
                raise httpx.RemoteProtocolError(str(exc), request=self._request) from exc
            except OSError as exc:
                raise httpx.ReadError(str(exc), request=self._request) from exc
            if not chunk:
                # http.client's read(amt) ends quietly where the server hung up early.
                missing = response.length
                self.close()
                if missing:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection before the whole body came "
                        f"({missing} bytes missing)",
                        request=self._request,
                    )
                return
            yield chunk

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        response = self._response
        # Read to its end (a body cut short leaves ``length`` bytes still to come).
        if response.isclosed() and not response.length and not response.will_close:
            self._transport.release(self._origin, connection)
        else:
            response.close()
            connection.close()

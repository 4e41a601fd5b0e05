"""The one HTTP client torrip uses, and the boundary where httpx errors become TorripErrors.

httpx gives a pooled, thread-safe client: the resolver's prefetch threads and the
downloaders share its connections, so PyPI's CDN is asked over a few warm TLS
connections instead of a new one per request.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urljoin, urlsplit

from torrip import __version__
from torrip.closing import Closing
from torrip.config import Settings
from torrip.errors import ConfigError, HTTPStatusError, NetworkError

if TYPE_CHECKING:
    import ssl

    import httpx

    from torrip.connections import Reply, StdlibTransport, Streamed
    from torrip.httptransport import TransportPerScheme

# What one of torrip's own connections answers a GET with: read whole, or as it comes.
_Answer = TypeVar("_Answer", "Reply", "Streamed")

__all__ = [
    "USER_AGENT",
    "get_whole",
    "http_errors",
    "make_client",
    "prepare_tls",
    "raise_for_status",
    "stream_get",
    "url_reader",
]

USER_AGENT = f"torrip/{__version__}"


def make_client(settings: Settings) -> httpx.Client:
    """A client sized for parallel metadata and file requests, made at its first request.

    Importing httpx costs 20-30 ms, which a run answered wholly by the cache (a warm
    install) never needs; its TLS transport (the CA bundle) is built at the first https
    request (``torrip.httptransport``).
    """
    return cast("httpx.Client", _ClientOnFirstUse(settings))


def _build_client(settings: Settings) -> tuple[httpx.Client, TransportPerScheme | None]:
    """The client, and its transport where ``get_whole`` may go around the client: no
    credentials anywhere (no auth step to run), not offline."""
    import httpx

    from torrip.connections import StdlibTransport
    from torrip.credentials import credentials_by_origin, netrc_entries, without_credentials
    from torrip.httptransport import (
        CookieJar,
        HostCredentials,
        LocalFiles,
        Offline,
        TransportPerScheme,
        environment_proxies,
    )

    cert = _cert_file(settings)

    def transport(tls: bool) -> httpx.BaseTransport:
        # Without TLS (http:// URLs only), no CA bundle: nothing is verified on them anyway.
        return StdlibTransport(
            tls=_tls_context(cert) if tls else None,
            retries=settings.retries,
            max_idle_per_origin=settings.max_connections_per_host,
            unverified_hosts=settings.trusted_host,
        )

    def proxy_transport(proxy: str) -> httpx.BaseTransport:
        try:  # httpx's own connections, which speak to proxies (CONNECT for https)
            return httpx.HTTPTransport(
                proxy=proxy, verify=_tls_context(cert), retries=settings.retries
            )
        except ImportError as error:  # a SOCKS proxy without socksio
            raise ConfigError(
                f"cannot use the proxy {without_credentials(proxy)}: {error}",
                hint="Unset ALL_PROXY (or HTTP_PROXY/HTTPS_PROXY), or use an HTTP proxy.",
            ) from None

    by_origin = credentials_by_origin(
        (*settings.index_urls, *settings.find_links, *settings.torrent_index)
    )
    netrc = netrc_entries()
    keyring = _keyring(settings)
    per_scheme = TransportPerScheme(
        transport,
        proxies={"all": settings.proxy} if settings.proxy else environment_proxies(),
        build_proxy=proxy_transport,
    )
    credentials = by_origin or netrc or keyring
    client = httpx.Client(
        # Without credentials anywhere, no auth step runs for each request.
        auth=HostCredentials(by_origin, netrc, keyring) if credentials else None,
        transport=Offline() if settings.offline else per_scheme,
        mounts={"file://": LocalFiles()},
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 15.0)),
        headers={"User-Agent": USER_AGENT},
        cookies=CookieJar(),
        follow_redirects=True,
        # The CA settings of the environment apply, as for pip (its proxies: above).
        trust_env=True,
    )
    return client, None if credentials or settings.offline else per_scheme


def _keyring(settings: Settings) -> Callable[[str, str | None], tuple[str, str] | None] | None:
    if settings.keyring_provider == "disabled":
        return None
    if settings.keyring_provider == "subprocess":
        from torrip.credentials import keyring_credentials

        return keyring_credentials
    raise ConfigError(
        f"bad value {settings.keyring_provider!r} for keyring-provider",
        hint="Use disabled or subprocess (the keyring command on PATH asked after a 401).",
    )


# The default TLS context by the CA settings it was made for: one per process, so that it
# can be made ahead (prepare_tls) and shared by every client.
_tls_contexts: dict[tuple[str | None, str | None], Future[ssl.SSLContext]] = {}
_tls_lock = threading.Lock()


def prepare_tls(settings: Settings) -> None:
    """Start making the TLS context of https requests now, on a thread.

    Loading the CA bundle is 30 ms of C code that lets Python threads run: started before
    torrip imports its resolver, it is ready by the first request to an https index.
    """
    _tls_context_future(_cert_file(settings))


def _cert_file(settings: Settings) -> str | None:
    """The ``cert`` setting's CA bundle, made absolute; ConfigError if it is no file."""
    if not settings.cert:
        return None
    path = Path(settings.cert).expanduser().absolute()
    if not path.is_file():
        raise ConfigError(
            f"the CA bundle {settings.cert} (cert) is not a file",
            hint="Give the path of a PEM file of certificates, or leave cert unset.",
        )
    return str(path)


def _tls_context(cert: str | None = None) -> ssl.SSLContext:
    return _tls_context_future(cert).result()


def _tls_context_future(cert: str | None = None) -> Future[ssl.SSLContext]:
    """The context for ``cert`` (a CA bundle given by the ``cert`` setting), else for the
    environment's SSL_CERT_FILE and SSL_CERT_DIR."""
    if cert is not None:
        key: tuple[str | None, str | None] = (cert, None)
    else:
        key = (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)
    with _tls_lock:
        future = _tls_contexts.get(key)
        if future is None:
            future = _tls_contexts[key] = Future()
            threading.Thread(
                target=_make_tls_context, args=(future, *key), name="torrip-tls", daemon=True
            ).start()
    return future


def _make_tls_context(
    future: Future[ssl.SSLContext], cafile: str | None, capath: str | None
) -> None:
    """What httpx makes for ``verify=True``: the CA file or folder that SSL_CERT_FILE or
    SSL_CERT_DIR name (the environment's CA settings, as pip), else certifi's bundle."""
    import ssl

    try:
        if cafile is not None:
            context = ssl.create_default_context(cafile=cafile)
        elif capath is not None:
            context = ssl.create_default_context(capath=capath)
        else:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
        future.set_result(context)
    except BaseException as error:  # raised at the first https request, as httpx would
        future.set_exception(error)


class _ClientOnFirstUse(Closing):
    """Stands for the ``httpx.Client`` that ``_build_client`` makes at the first attribute
    asked for (thread-safe); closing it before then closes nothing."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: httpx.Client | None = None
        self._direct: TransportPerScheme | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _real(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the HTTP client is closed")
                if self._client is None:
                    self._client, self._direct = _build_client(self._settings)
                client = self._client
        return client

    def get_whole(self, url: str, headers: Mapping[str, str]) -> Reply:
        client = self._real()
        url, reply = self._direct_get(client, url, headers, lambda t: t.get_whole)
        return reply if reply is not None else _reply(client.get(url, headers=headers))

    @contextlib.contextmanager
    def stream_get(
        self, url: str, headers: Mapping[str, str]
    ) -> Iterator[httpx.Response | Streamed]:
        client = self._real()
        url, streamed = self._direct_get(client, url, headers, lambda t: t.stream)
        if streamed is None:
            with client.stream("GET", url, headers=headers) as response:
                yield response
            return
        try:
            yield streamed
        finally:
            streamed.close()

    def _direct_get(
        self,
        client: httpx.Client,
        url: str,
        headers: Mapping[str, str],
        method: Callable[[StdlibTransport], Callable[..., _Answer]],
    ) -> tuple[str, _Answer | None]:
        """GET ``url`` with ``method`` of torrip's own connections, redirects followed as
        the client follows them: the last URL and its answer, or the URL the rest must be
        asked of through the client (None: its connections are not torrip's own)."""
        import httpx

        from torrip.connections import Streamed

        lines = [("User-Agent", USER_AGENT), *headers.items()]
        timeout = client.timeout
        timeouts = {"connect": timeout.connect, "read": timeout.read, "write": timeout.write}
        for _ in range(client.max_redirects + 1):
            parts = urlsplit(url)
            transport = None
            # Cookies the client holds go with its own requests (a server set them).
            if self._direct is not None and not client.cookies:
                transport = self._direct.direct(parts.scheme, parts.hostname or "", parts.port)
            if transport is None:
                return url, None
            answer = method(transport)(url, lines, timeouts)
            if "set-cookie" in answer.headers:  # kept as the client keeps them
                request = httpx.Request("GET", url)
                client.cookies.extract_cookies(
                    httpx.Response(answer.status_code, headers=answer.header_list, request=request)
                )
            location = answer.headers.get("location")
            if answer.status_code not in _REDIRECTS or location is None:
                return url, answer
            if isinstance(answer, Streamed):  # a body not read: its connection is not kept
                answer.close()
            url = urljoin(url, location)
        raise httpx.TooManyRedirects("exceeded the maximum number of redirects")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._client is not None:
                self._client.close()


@contextlib.contextmanager
def http_errors(url: str) -> Iterator[None]:
    """Convert httpx and socket errors raised inside the block into NetworkError."""
    import ssl

    import httpx  # both already imported by the request the block makes

    try:
        yield
    except httpx.TimeoutException:
        raise NetworkError(url, "timed out") from None
    except httpx.ConnectError as exc:
        raise NetworkError(url, f"cannot connect ({_root_reason(exc)})") from None
    except httpx.InvalidURL as exc:
        raise NetworkError(url, f"invalid URL ({exc})") from None
    except httpx.UnsupportedProtocol as exc:
        raise NetworkError(url, f"unsupported URL scheme ({exc})") from None
    except httpx.TransportError as exc:
        raise NetworkError(url, _root_reason(exc)) from None
    except ssl.SSLError as exc:
        raise NetworkError(url, f"TLS error ({exc})") from None


def url_reader(settings: Settings) -> Callable[[str], bytes]:
    """Reads a small file by its URL (a requirements file given as one), through a client
    of ``settings``: the index credentials, proxies and ``file:`` URLs apply. Raises
    NetworkError or HTTPStatusError."""

    def read(url: str) -> bytes:
        with make_client(settings) as http, http_errors(url):
            response = http.get(url)
            raise_for_status(response)
            return response.content

    return read


def get_whole(client: httpx.Client, url: str, headers: Mapping[str, str] | None = None) -> Reply:
    """GET ``url`` as ``client.get`` would (redirects followed, the body read and decoded),
    through torrip's own connections directly where nothing of httpx's applies: no
    credentials, no proxy, no cookie set. An index page or metadata file then costs 0.19
    ms of CPU instead of 0.35 ms, and a cold resolve asks for them one after another (190
    for jupyterlab: its resolution took 0.31 s against 0.24 s)."""
    if isinstance(client, _ClientOnFirstUse):
        return client.get_whole(url, headers or {})
    return _reply(client.get(url, headers=headers))


def stream_get(
    client: httpx.Client, url: str, headers: Mapping[str, str] | None = None
) -> contextlib.AbstractContextManager[httpx.Response | Streamed]:
    """``client.stream("GET", url)``, through torrip's own connections directly where
    nothing of httpx's applies (as ``get_whole``): less CPU per download (the web set's 35
    wheels from a mirror on this machine: 26 ms against 32 ms)."""
    if isinstance(client, _ClientOnFirstUse):
        return client.stream_get(url, headers or {})
    return client.stream("GET", url, headers=headers)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _reply(response: httpx.Response) -> Reply:
    from torrip.connections import Reply

    listed = tuple(response.headers.multi_items())
    return Reply.of(str(response.url), response.status_code, listed, response.content)


def raise_for_status(response: httpx.Response | Reply | Streamed) -> None:
    if response.status_code >= 400:
        hint = None
        if response.status_code == 404:
            hint = "Check the name and the index URL."
        elif response.status_code in (401, 403):
            hint = "The index needs credentials; put them in the URL or in ~/.netrc."
        raise HTTPStatusError(str(response.url), response.status_code, hint)


def _root_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__

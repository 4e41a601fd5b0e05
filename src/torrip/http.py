"""The one HTTP client torrip uses, and the boundary where httpx errors become TorripErrors.

httpx gives a pooled, thread-safe client: the resolver's prefetch threads and the
downloaders share its connections, so PyPI's CDN is asked over a few warm TLS
connections instead of a new one per request.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator

import httpx

from torrip import __version__
from torrip.config import Settings
from torrip.errors import HTTPStatusError, NetworkError

__all__ = ["USER_AGENT", "http_errors", "make_client", "raise_for_status"]

USER_AGENT = f"torrip/{__version__}"


def make_client(settings: Settings) -> httpx.Client:
    """A client sized for parallel metadata and file requests."""
    limits = httpx.Limits(
        max_connections=settings.max_connections_per_host * 2,
        max_keepalive_connections=settings.max_connections_per_host * 2,
        keepalive_expiry=30.0,
    )
    transport = _TransportOnFirstUse(
        lambda: httpx.HTTPTransport(limits=limits, retries=settings.retries)
    )
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 15.0)),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
        # The proxy and CA settings of the environment apply, as for pip.
        trust_env=True,
    )


class _TransportOnFirstUse(httpx.BaseTransport):
    """Builds the real transport at the first request: building it loads the CA bundle
    (50 ms), which a run served wholly from the cache never needs."""

    def __init__(self, build: Callable[[], httpx.BaseTransport]) -> None:
        self._build = build
        self._transport: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transport
        if transport is None:
            with self._lock:
                if self._transport is None:
                    self._transport = self._build()
                transport = self._transport
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()


@contextlib.contextmanager
def http_errors(url: str) -> Iterator[None]:
    """Convert httpx and socket errors raised inside the block into NetworkError."""
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


def raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        hint = None
        if response.status_code == 404:
            hint = "Check the name and the index URL."
        elif response.status_code in (401, 403):
            hint = "The index needs credentials; put them in the URL or in ~/.netrc."
        raise HTTPStatusError(str(response.request.url), response.status_code, hint)


def _root_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__

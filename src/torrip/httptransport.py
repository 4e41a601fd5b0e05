"""The transport behind torrip's HTTP client (``torrip.http``): one per scheme, built at first use.

A TLS transport loads the CA bundle (30 ms of CPU); an index or mirror served over plain
HTTP (an office's, a CI fleet's, a local ``torrip index serve``) never needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

__all__ = ["TransportPerScheme"]


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

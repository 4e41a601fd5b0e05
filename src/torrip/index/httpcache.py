"""An HTTP cache for index pages, with the semantics that matter for them.

``Cache-Control: max-age`` decides freshness; stale entries are revalidated
with ``If-None-Match`` / ``If-Modified-Since`` and a 304 refreshes them;
``no-store`` is honoured. Entries are written atomically, so concurrent torrip
processes may share the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from torrip.credentials import without_credentials
from torrip.fsutil import atomic_write
from torrip.http import get_whole, http_errors, raise_for_status

if TYPE_CHECKING:
    import httpx

    from torrip.connections import Reply

__all__ = ["CachedResponse", "PageCache"]

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


class CachedResponse(NamedTuple):
    url: str  # after redirects
    status: int
    body: bytes
    content_type: str
    from_cache: bool


def _directives(cache_control: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in cache_control.split(",") if part}


class PageCache:
    """GETs pages through a cache directory (or straight through when ``directory`` is None)."""

    def __init__(self, directory: Path | None, *, offline: bool = False) -> None:
        self.directory = directory
        self.offline = offline  # a cached page serves however old; no request is made

    def _paths(self, url: str, accept: str) -> tuple[Path, Path]:
        assert self.directory is not None
        key = hashlib.sha256(f"{url}\n{accept}".encode()).hexdigest()
        folder = self.directory / key[:2]
        return folder / f"{key}.json", folder / f"{key}.body"

    def _load(self, url: str, accept: str) -> tuple[dict[str, object], bytes] | None:
        if self.directory is None:
            return None
        meta_path, body_path = self._paths(url, accept)
        try:
            meta = json.loads(meta_path.read_bytes())
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or hashlib.sha256(body).hexdigest() != meta.get("sha256"):
            return None  # torn or foreign entry: fetch again
        return meta, body

    def _store(self, url: str, accept: str, response: Reply, body: bytes) -> None:
        if self.directory is None:
            return
        cache_control = response.headers.get("cache-control", "")
        if "no-store" in _directives(cache_control):
            return
        validators = response.headers.get("etag") or response.headers.get("last-modified")
        if not validators and not _MAX_AGE.search(cache_control):
            return  # could never be reused: neither fresh for a while nor revalidatable
        meta = {
            "url": without_credentials(str(response.url)),  # the host's auth supplies them
            "status": response.status_code,
            "content_type": response.headers.get("content-type", ""),
            "etag": response.headers.get("etag"),
            "last_modified": response.headers.get("last-modified"),
            "cache_control": cache_control,
            "stored_at": time.time(),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        meta_path, body_path = self._paths(url, accept)
        try:
            # Body first: a meta file never points at a missing body.
            atomic_write(body_path, body)
            atomic_write(meta_path, json.dumps(meta).encode())
        except OSError:
            pass  # a read-only or full cache must not break an install

    def is_fresh(self, url: str, accept: str) -> bool:
        """Whether ``get`` would answer from the cache without asking the server (a
        quick look: the body is checked when read)."""
        meta = self._meta(url, accept)
        return meta is not None and (self.offline or self._meta_is_fresh(meta))

    def digest(self, url: str, accept: str, *, fresh: bool) -> str | None:
        """The sha256 of the page the cache holds for ``url`` (with ``fresh``, only if
        ``get`` would answer with it without asking the server); None if it holds none."""
        meta = self._meta(url, accept)
        if meta is None or not isinstance(meta.get("sha256"), str):
            return None
        if fresh and not (self.offline or self._meta_is_fresh(meta)):
            return None
        return str(meta["sha256"])

    def _meta(self, url: str, accept: str) -> dict[str, object] | None:
        """What the cache recorded of ``url``'s page (its body is not read)."""
        if self.directory is None:
            return None
        meta_path, _ = self._paths(url, accept)
        try:
            meta = json.loads(meta_path.read_bytes())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    @staticmethod
    def _meta_is_fresh(meta: dict[str, object]) -> bool:
        cache_control = str(meta.get("cache_control") or "")
        if "no-cache" in _directives(cache_control):
            return False
        match = _MAX_AGE.search(cache_control)
        if not match:
            return False
        stored_at = meta.get("stored_at")
        age = time.time() - (stored_at if isinstance(stored_at, float | int) else 0)
        return 0 <= age < int(match.group(1))

    def get(self, client: httpx.Client, url: str, accept: str) -> CachedResponse:
        """GET ``url``; 404 comes back as a response (an index may not have a project)."""
        cached = self._load(url, accept)
        headers = {"Accept": accept}
        if cached is not None:
            meta, body = cached
            if self.offline or self._meta_is_fresh(meta):
                return _from_meta(meta, body)
            if meta.get("etag"):
                headers["If-None-Match"] = str(meta["etag"])
            if meta.get("last_modified"):
                headers["If-Modified-Since"] = str(meta["last_modified"])
        with http_errors(url):
            response = get_whole(client, url, headers)
        if response.status_code == 304 and cached is not None:
            meta, body = cached
            meta_path, _ = self._paths(url, accept)
            meta.update(stored_at=time.time())
            if response.headers.get("cache-control"):
                meta["cache_control"] = response.headers["cache-control"]
            with contextlib.suppress(OSError):
                atomic_write(meta_path, json.dumps(meta).encode())
            return _from_meta(meta, body)
        if response.status_code == 404:
            return CachedResponse(str(response.url), 404, b"", "", from_cache=False)
        raise_for_status(response)
        body = response.content
        self._store(url, accept, response, body)
        return CachedResponse(
            str(response.url),
            response.status_code,
            body,
            response.headers.get("content-type", ""),
            from_cache=False,
        )


def _from_meta(meta: dict[str, object], body: bytes) -> CachedResponse:
    return CachedResponse(
        str(meta.get("url")),
        int(str(meta.get("status", 200))),
        body,
        str(meta.get("content_type") or ""),
        from_cache=True,
    )

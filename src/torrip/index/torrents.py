"""Torrents from torrent indexes: ``<base>/<sha256[:2]>/<sha256>.torrent``.

A torrent index knows nothing but files' sha256, so anyone can publish torrents for
an index that has none (docs/torrent-index.md). What it serves is untrusted: a
torrent is kept only if it parses within limits and describes exactly the file the
index lists (one file, that name, that size). Lookups never fail an install: a
missing, unreachable or wrong torrent just means the file comes over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from torrip.errors import TorrentError, TorripError
from torrip.http import http_errors, raise_for_status
from torrip.index.links import Link, TorrentRef
from torrip.transport.recipe import MAX_TORRENT_BYTES, parse_torrent, validate_for_file

if TYPE_CHECKING:
    import httpx

__all__ = ["download_torrent", "lookup_torrents", "torrent_index_url"]

Log = Callable[[str], None]


def torrent_index_url(base: str, sha256: str) -> str:
    digest = sha256.lower()
    return f"{base.rstrip('/')}/{digest[:2]}/{digest}.torrent"


def download_torrent(http: httpx.Client, url: str) -> bytes | None:
    """The body, or None on 404; at most MAX_TORRENT_BYTES are read."""
    with http_errors(url), http.stream("GET", url) as response:
        if response.status_code == 404:
            return None
        raise_for_status(response)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_TORRENT_BYTES:
                raise TorrentError(f"larger than {MAX_TORRENT_BYTES} bytes", source=url)
        return bytes(body)


def _lookup_one(
    http: httpx.Client, link: Link, bases: Sequence[str], log: Log
) -> TorrentRef | None:
    assert link.sha256 is not None
    for base in bases:
        url = torrent_index_url(base, link.sha256)
        try:
            data = download_torrent(http, url)
            if data is None:
                continue
            torrent = parse_torrent(data)
            validate_for_file(
                torrent, filename=link.filename, size=link.size if link.size else torrent.length
            )
        except TorripError as error:
            log(f"warning: discarded the torrent {url} for {link.filename}: {error}")
            continue
        log(f"torrent of {link.filename} from {url}")
        return TorrentRef(btih=torrent.btih, btmh=torrent.btmh, sha256=torrent.sha256, url=url)
    return None


def lookup_torrents(
    http: httpx.Client,
    links: Sequence[Link],
    bases: Sequence[str],
    *,
    log: Log = lambda _: None,
    workers: int = 8,
) -> dict[str, TorrentRef]:
    """Torrents found for ``links`` (file URL -> reference), in parallel.

    Links whose index already announced a torrent, or that have no sha256 to key
    on, are not looked up.
    """
    wanted = [link for link in links if link.torrent is None and link.sha256]
    if not bases or not wanted:
        return {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="torrip-torrents") as pool:
        found = pool.map(lambda link: _lookup_one(http, link, bases, log), wanted)
        return {link.url: ref for link, ref in zip(wanted, found, strict=True) if ref is not None}

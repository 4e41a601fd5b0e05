"""Parse project pages of a Simple Repository API into Links: PEP 691 JSON and PEP 503 HTML."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from torrip.errors import IndexPageError
from torrip.index.links import Link, TorrentRef

__all__ = [
    "JSON_CONTENT_TYPE",
    "PAGE_ACCEPT",
    "parse_html_page",
    "parse_json_page",
    "parse_page",
]

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
# Prefer JSON, accept the HTML forms (PEP 691's recommended header).
PAGE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
_HASH_NAMES = ("sha256", "sha384", "sha512", "sha224", "sha1", "md5")


def parse_page(
    body: bytes,
    content_type: str,
    page_url: str,
    *,
    platforms: frozenset[str] | None = None,
    skipped: list[str] | None = None,
) -> list[Link]:
    """Links of a page. With ``platforms``, JSON wheels for none of them are left out
    (their filenames go to ``skipped``): most files of big projects are for other platforms."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == JSON_CONTENT_TYPE:
        return parse_json_page(body, page_url, platforms=platforms, skipped=skipped)
    if media_type in ("application/vnd.pypi.simple.v1+html", "text/html", ""):
        return parse_html_page(body.decode("utf-8", errors="replace"), page_url)
    raise IndexPageError(
        f"{page_url} answered with content type {content_type!r}, not a Simple API page",
        hint="Check that --index-url points at a PEP 503/691 'simple' index.",
    )


# PEP 714: "core-metadata" wins; "dist-info-metadata" is the older spelling.
_ABSENT = object()


def _json_torrent(value: Any, file_url: str) -> TorrentRef | None:
    if not isinstance(value, dict):
        return None
    ref = TorrentRef(
        btih=_str_or_none(value.get("btih")),
        btmh=_str_or_none(value.get("btmh")),
        sha256=_str_or_none(value.get("sha256")),
        url=urljoin(file_url, value["url"]) if isinstance(value.get("url"), str) else None,
    )
    return ref if (ref.btih or ref.btmh) else None


def _str_or_none(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def _absolute(page_url: str, url: str) -> str:
    """The file URL without fragment. PyPI gives absolute URLs: skip urljoin, which
    costs more than the rest of parsing on pages with thousands of files."""
    if "#" in url:
        url = urldefrag(url).url
    if url.startswith(("https://", "http://")):
        return url
    return urljoin(page_url, url)


def parse_json_page(
    body: bytes,
    page_url: str,
    *,
    platforms: frozenset[str] | None = None,
    skipped: list[str] | None = None,
) -> list[Link]:
    try:
        data = json.loads(body)
        version = str(data.get("meta", {}).get("api-version", "1.0"))
        files = data["files"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexPageError(f"{page_url} is not a valid PEP 691 JSON page: {exc}") from None
    if not version.startswith("1."):
        raise IndexPageError(
            f"{page_url} speaks Simple API version {version}; torrip understands 1.x",
            hint="Upgrade torrip, or use an index that serves API version 1.",
        )
    links: list[Link] = []
    append = links.append
    # Whether a wheel's platform tags (the last part of its name) fit: decided once per
    # distinct tags, which a big project repeats across hundreds of releases.
    fits: dict[str, bool] = {}
    # This loop runs for every file of every project (tens of thousands per resolve):
    # plain lookups, no per-entry helper calls. Hash values are lowercased where used.
    for entry in files:
        try:
            filename = entry["filename"]
            if platforms is not None and filename.endswith(".whl"):
                tags = filename[:-4].rpartition("-")[2]
                fit = fits.get(tags)
                if fit is None:
                    fit = tags in platforms or any(p in platforms for p in tags.split("."))
                    fits[tags] = fit
                if not fit:
                    if skipped is not None:
                        skipped.append(filename)
                    continue
            url = entry["url"]
            if "#" in url or not url.startswith(("https://", "http://")):
                url = _absolute(page_url, url)
        except (KeyError, TypeError, AttributeError):
            continue  # a malformed entry does not spoil the page
        hashes = entry.get("hashes")
        metadata = entry.get("core-metadata", _ABSENT)
        if metadata is _ABSENT:
            metadata = entry.get("dist-info-metadata", _ABSENT)
        if metadata is True:
            metadata_hashes: Mapping[str, str] | None = {}
        elif isinstance(metadata, dict):
            metadata_hashes = metadata
        else:
            metadata_hashes = None
        yanked = entry.get("yanked")
        size = entry.get("size")
        upload_time = entry.get("upload-time")
        torrent = entry.get("_torrent")
        append(
            Link(
                filename,
                url,
                hashes if isinstance(hashes, dict) else {},
                entry.get("requires-python") or None,
                None if not yanked else ("" if yanked is True else str(yanked)),
                metadata_hashes,
                size if isinstance(size, int) else None,
                upload_time if isinstance(upload_time, str) else None,
                page_url,
                _json_torrent(torrent, url) if torrent else None,
            )
        )
    return links


def _parse_hash_pairs(value: str) -> dict[str, str]:
    """``sha256=abc`` (PEP 658) or ``btih=..;btmh=..;sha256=..`` (data-torrent)."""
    pairs = {}
    for part in value.replace(",", ";").split(";"):
        key, sep, digest = part.strip().partition("=")
        if sep and key and digest:
            pairs[key.strip().lower()] = digest.strip().lower()
    return pairs


def parse_html_page(text: str, page_url: str) -> list[Link]:
    from torrip.index.anchors import collect_anchors

    page_base, anchors = collect_anchors(text)
    base = urljoin(page_url, page_base) if page_base else page_url
    links = []
    for attrs in anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(base, href))
        filename = unquote(url.rsplit("/", 1)[-1])
        hashes = {}
        key, sep, digest = fragment.partition("=")
        if sep and key.lower() in _HASH_NAMES:
            hashes[key.lower()] = digest.lower()
        metadata_hashes: dict[str, str] | None = None
        for name in ("data-core-metadata", "data-dist-info-metadata"):
            if name in attrs:
                raw = attrs[name] or "true"
                metadata_hashes = {} if raw.lower() == "true" else _parse_hash_pairs(raw)
                break
        yanked = attrs.get("data-yanked")
        torrent = None
        if attrs.get("data-torrent"):
            pairs = _parse_hash_pairs(attrs["data-torrent"] or "")
            if pairs.get("btih") or pairs.get("btmh"):
                torrent = TorrentRef(
                    btih=pairs.get("btih"), btmh=pairs.get("btmh"), sha256=pairs.get("sha256")
                )
        links.append(
            Link(
                filename=filename,
                url=url,
                hashes=hashes,
                requires_python=attrs.get("data-requires-python") or None,
                yanked=(yanked or "") if "data-yanked" in attrs else None,
                metadata_hashes=metadata_hashes,
                index_url=page_url,
                torrent=torrent,
            )
        )
    return links

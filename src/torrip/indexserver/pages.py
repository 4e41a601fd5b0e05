"""The Simple Repository API pages of a built index: PEP 691 JSON and PEP 503 HTML.

    entry = FileEntry(filename=..., url="../../files/x-1.0-py3-none-any.whl", sha256=..., size=...)
    render_project_json("x", [entry])   # {"meta": {"api-version": "1.1"}, "name": "x", ...}
    render_project_html("x", [entry])   # <a href="...#sha256=..." data-...>

Both forms carry the same facts: hashes (PEP 503 fragment / "hashes"),
Requires-Python, PEP 658/714 core metadata, PEP 592 yanking, PEP 700 size and
versions, and torrip's private ``_torrent`` key / ``data-torrent`` attribute
(docs/torrent-index.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Any

__all__ = [
    "API_VERSION",
    "FileEntry",
    "ProjectSummary",
    "TorrentInfo",
    "format_data_torrent",
    "parse_data_torrent",
    "render_project_html",
    "render_project_json",
    "render_root_html",
    "render_root_json",
]

API_VERSION = "1.1"


@dataclass(frozen=True)
class TorrentInfo:
    """How a client finds and checks the torrent of a file (docs/torrent-index.md)."""

    btih: str  # v1 infohash, 40 hex digits
    btmh: str  # v2 infohash as a multihash: "1220" + 64 hex digits
    sha256: str  # of the .torrent file's bytes

    def as_json(self) -> dict[str, str]:
        return {"btih": self.btih, "btmh": self.btmh, "sha256": self.sha256}


@dataclass(frozen=True)
class FileEntry:
    """One file of a project page."""

    filename: str
    url: str
    sha256: str
    size: int
    version: str
    requires_python: str | None = None
    # sha256 of the .metadata file; True: offered without a hash; False: not offered.
    core_metadata: str | bool = False
    # None: not yanked; "": yanked without a reason; else the reason.
    yanked: str | None = None
    upload_time: datetime | None = None
    torrent: TorrentInfo | None = None


@dataclass(frozen=True)
class ProjectSummary:
    """One project of the root page: its normalized name and the name it shows."""

    name: str
    display_name: str


def format_data_torrent(torrent: TorrentInfo) -> str:
    """The ``data-torrent`` attribute value: ``btih=<hex>;btmh=<hex>;sha256=<hex>``."""
    return f"btih={torrent.btih};btmh={torrent.btmh};sha256={torrent.sha256}"


def parse_data_torrent(value: str) -> dict[str, str]:
    """The key=value pairs of a ``data-torrent`` attribute; unknown keys are kept."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, item = part.strip().partition("=")
        if sep and key:
            fields[key.strip()] = item.strip()
    return fields


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def _upload_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render_root_json(projects: Iterable[ProjectSummary]) -> str:
    return _dumps(
        {
            "meta": {"api-version": API_VERSION},
            "projects": [{"name": project.display_name} for project in projects],
        }
    )


def render_root_html(projects: Iterable[ProjectSummary]) -> str:
    links = "".join(
        f'    <a href="{escape(project.name)}/">{escape(project.display_name)}</a><br>\n'
        for project in projects
    )
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
        f"{links}  </body>\n</html>\n"
    )


def _file_json(entry: FileEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "filename": entry.filename,
        "url": entry.url,
        "hashes": {"sha256": entry.sha256},
    }
    if entry.requires_python:
        item["requires-python"] = entry.requires_python
    if entry.core_metadata is not False:
        metadata: dict[str, str] | bool = (
            {"sha256": entry.core_metadata} if isinstance(entry.core_metadata, str) else True
        )
        item["core-metadata"] = metadata
        # PEP 714's old name, for clients older than the rename.
        item["dist-info-metadata"] = metadata
    item["yanked"] = (entry.yanked or True) if entry.yanked is not None else False
    item["size"] = entry.size
    if entry.upload_time is not None:
        item["upload-time"] = _upload_time(entry.upload_time)
    if entry.torrent is not None:
        item["_torrent"] = entry.torrent.as_json()
    return item


def render_project_json(project: str, entries: Sequence[FileEntry]) -> str:
    versions: list[str] = []
    for entry in entries:
        if entry.version not in versions:
            versions.append(entry.version)
    return _dumps(
        {
            "meta": {"api-version": API_VERSION},
            "name": project,
            "files": [_file_json(entry) for entry in entries],
            "versions": versions,
        }
    )


def _file_html(entry: FileEntry) -> str:
    attributes = [f'href="{escape(entry.url)}#sha256={entry.sha256}"']
    if entry.requires_python:
        attributes.append(f'data-requires-python="{escape(entry.requires_python)}"')
    if entry.core_metadata is not False:
        value = f"sha256={entry.core_metadata}" if isinstance(entry.core_metadata, str) else "true"
        attributes.append(f'data-dist-info-metadata="{value}"')
        attributes.append(f'data-core-metadata="{value}"')
    if entry.yanked is not None:
        attributes.append(f'data-yanked="{escape(entry.yanked)}"')
    if entry.torrent is not None:
        attributes.append(f'data-torrent="{escape(format_data_torrent(entry.torrent))}"')
    return f"    <a {' '.join(attributes)}>{escape(entry.filename)}</a><br>\n"


def render_project_html(project: str, entries: Sequence[FileEntry]) -> str:
    links = "".join(_file_html(entry) for entry in entries)
    title = escape(f"Links for {project}")
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>{title}</title>\n  </head>\n  <body>\n"
        f"    <h1>{title}</h1>\n{links}  </body>\n</html>\n"
    )

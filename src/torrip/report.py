"""pip's installation report (format version "1"), with room for torrip's own data.

Tools that read ``pip install --report`` read torrip's: the same keys, plus a
``torrip`` key per item and at top level (bytes by source, timings).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torrip import __version__
from torrip.credentials import without_credentials
from torrip.environment import TargetEnvironment
from torrip.fsutil import atomic_write
from torrip.index.links import TorrentRef
from torrip.install.plan import Plan
from torrip.resolver.resolve import ResolvedDistribution

__all__ = ["build_report", "write_report"]


def _download_info(dist: ResolvedDistribution) -> dict[str, Any]:
    link = dist.candidate.link
    assert link is not None
    info: dict[str, Any] = {"url": without_credentials(link.url), "archive_info": {}}
    if link.hashes:
        algorithm = "sha256" if "sha256" in link.hashes else sorted(link.hashes)[0]
        info["archive_info"] = {
            "hash": f"{algorithm}={link.hashes[algorithm]}",
            "hashes": dict(link.hashes),
        }
    return info


def _item(
    dist: ResolvedDistribution,
    fetched: Mapping[str, dict[str, Any]],
    torrents: Mapping[str, TorrentRef],
) -> dict[str, Any]:
    link = dist.candidate.link
    assert link is not None
    item: dict[str, Any] = {
        "download_info": _download_info(dist),
        "is_direct": dist.candidate.source == "url",
        "is_yanked": link.yanked is not None,
        "requested": dist.requested,
        "metadata": dist.metadata.as_json(),
    }
    if dist.requested_extras:
        item["requested_extras"] = sorted(dist.requested_extras)
    torrip: dict[str, Any] = {"filename": link.filename}
    if link.size is not None:
        torrip["size"] = link.size
    if link.index_url:
        torrip["index"] = without_credentials(link.index_url)
    torrent = link.torrent or torrents.get(link.url)
    if torrent is not None:
        torrip["torrent"] = torrent.as_dict()
    torrip.update(fetched.get(link.url, {}))
    item["torrip"] = torrip
    return item


def build_report(
    plan: Plan,
    environment: TargetEnvironment,
    *,
    extra: dict[str, Any] | None = None,
    fetched: Mapping[str, dict[str, Any]] | None = None,
    torrents: Mapping[str, TorrentRef] | None = None,
) -> dict[str, Any]:
    """``fetched`` maps a file URL to what torrip adds after fetching it (source, bytes)."""
    return {
        "version": "1",
        "pip_version": f"torrip-{__version__}",
        "install": [_item(dist, fetched or {}, torrents or {}) for dist in plan.install],
        "environment": dict(environment.markers),
        "torrip": {
            "version": __version__,
            "python": str(environment.python),
            "remove": [{"name": d.display_name, "version": str(d.version)} for d in plan.remove],
            "kept": [
                {"name": d.metadata.display_name, "version": str(d.candidate.version)}
                for d in plan.kept
            ],
            **(extra or {}),
        },
    }


def write_report(report: dict[str, Any], destination: str) -> None:
    """``-`` writes to stdout, as pip does."""
    text = json.dumps(report, indent=2, sort_keys=False) + "\n"
    if destination == "-":
        import sys

        sys.stdout.write(text)
    else:
        atomic_write(Path(destination), text.encode())

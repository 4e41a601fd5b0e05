"""torrip's own table in a lockfile: ``[packages.tool.torrip]``, the torrents of its wheels.

PEP 751 lets tools keep data under ``tool.<name>`` as long as it does not change what is
installed. Torrents only add ways to fetch the same bytes (which are checked against the
lock's hashes), so they qualify::

    [packages.tool.torrip.torrents."idna-3.7-py3-none-any.whl"]
    btih = "<40 hex: v1 infohash>"
    btmh = "1220<64 hex: v2 infohash as a multihash>"
    sha256 = "<64 hex: of the .torrent file>"
    url = "https://host/idna-3.7-py3-none-any.whl.torrent"   # only if not <file url>.torrent

Keyed by wheel file name, because a package may list several wheels. What is read back
is untrusted transport data: malformed entries are dropped, never fatal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from torrip.index.links import TorrentRef

__all__ = ["TOOL_NAME", "tool_table", "torrents_from_tool"]

TOOL_NAME = "torrip"

_PATTERNS = {
    "btih": re.compile(r"[0-9a-f]{40}"),
    "btmh": re.compile(r"1220[0-9a-f]{64}"),
    "sha256": re.compile(r"[0-9a-f]{64}"),
    "url": re.compile(r"https?://\S+"),
}


def tool_table(torrents: Mapping[str, TorrentRef]) -> dict[str, Any] | None:
    """The ``tool`` table of a package whose wheels (by file name) have these torrents."""
    if not torrents:
        return None
    return {
        TOOL_NAME: {"torrents": {name: ref.as_dict() for name, ref in sorted(torrents.items())}}
    }


def torrents_from_tool(
    tool: Mapping[str, Any] | None, log: Callable[[str], None] = lambda _: None
) -> dict[str, TorrentRef]:
    """Wheel file name -> torrent, from a package's ``tool`` table (anyone's lock)."""
    ours = (tool or {}).get(TOOL_NAME)
    entries = ours.get("torrents") if isinstance(ours, Mapping) else None
    if not isinstance(entries, Mapping):
        return {}
    found = {}
    for filename, entry in entries.items():
        ref = _torrent_ref(entry)
        if ref is None:
            log(f"lockfile: ignoring the malformed torrent entry of {filename}")
        else:
            found[str(filename)] = ref
    return found


def _torrent_ref(entry: object) -> TorrentRef | None:
    if not isinstance(entry, Mapping):
        return None
    values: dict[str, str] = {}
    for key, pattern in _PATTERNS.items():
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            return None
        value = value if key == "url" else value.lower()  # hex digests in either case
        if not pattern.fullmatch(value):
            return None
        values[key] = value
    if "btih" not in values and "btmh" not in values:
        return None
    return TorrentRef(**values)

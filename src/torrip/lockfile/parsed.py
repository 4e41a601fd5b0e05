"""A lockfile's TOML, parsed once: kept as JSON in the cache by the sha256 of its bytes.

``tomllib`` is pure Python: jupyterlab's 60 KB lock takes it 13 ms, every install of it
(a CI fleet installs one lock hundreds of times); ``json`` reads the same document in 1 ms.
The key is the content, so a kept document can only be the one those bytes parse to.
TOML's dates and times, which JSON lacks, are kept as ``{"$toml": kind, "value": iso}``;
a document with a key starting with "$" is not kept, so that marker cannot be confused.

Usage::

    document = parse_lockfile_toml(data, cache_dir)   # tomllib.TOMLDecodeError if bad
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from torrip.fsutil import atomic_write

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["AREA", "parse_lockfile_toml"]

AREA = "lockfiles-v1"
_KINDS: dict[str, type[dt.datetime] | type[dt.date] | type[dt.time]] = {
    "datetime": dt.datetime,  # before date: a datetime is a date too
    "date": dt.date,
    "time": dt.time,
}


def parse_lockfile_toml(data: bytes, cache_dir: Path | None) -> dict[str, Any]:
    """The TOML document ``data`` (UTF-8): as kept in ``cache_dir``, else parsed (and kept).

    Raises UnicodeDecodeError or tomllib.TOMLDecodeError for what is not TOML."""
    kept = None
    if cache_dir is not None:
        kept = cache_dir / AREA / f"{hashlib.sha256(data).hexdigest()}.json"
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            found = json.loads(kept.read_bytes(), object_hook=_from_json)
            if isinstance(found, dict):
                return found
    document: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    if kept is not None and not _has_marker_like_key(document):
        with contextlib.suppress(OSError, ValueError):  # not kept: parsed again next time
            atomic_write(kept, json.dumps(document, default=_to_json).encode("utf-8"))
    return document


def _has_marker_like_key(value: object) -> bool:
    if isinstance(value, dict):
        return any(key.startswith("$") or _has_marker_like_key(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_marker_like_key(item) for item in value)
    return False


def _to_json(value: object) -> dict[str, str]:
    for kind, cls in _KINDS.items():
        if isinstance(value, cls):
            return {"$toml": kind, "value": value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not a TOML value")


def _from_json(table: dict[str, Any]) -> Any:
    marker = table.get("$toml")
    if marker is not None:
        return _KINDS[marker].fromisoformat(table["value"])
    return table

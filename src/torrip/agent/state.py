"""The agent's state: what it seeds and what it uploaded, one JSON file written atomically.

    state, problem = load_state(paths.state_file)   # problem: why it was unusable, or None
    if state is None:
        state = AgentState()                         # the caller rebuilds it from the cache
    state.files[sha256] = FileRecord(sha256, "demo-1.0-py3-none-any.whl", size, mtime_ns)
    save_state(paths.state_file, state)

Each file's record keeps the size and modification time the file had when it was
last known good, so a file changed on disk is checked against its torrent before
it is served again. A state file that is truncated, not JSON, or not of this shape
is reported (not trusted in part) and rebuilt from the cache by the agent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torrip.fsutil import atomic_write

__all__ = ["STATE_FORMAT", "STATE_VERSION", "AgentState", "FileRecord", "load_state", "save_state"]

STATE_FORMAT = "torrip-agent-state"
STATE_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


class StateError(ValueError):
    """The state file is not a valid state (the message says where)."""


@dataclass
class FileRecord:
    """One cached file the agent knows."""

    sha256: str
    filename: str
    size: int
    mtime_ns: int  # of the file when it was last known good
    uploaded: int = 0  # bytes, all runs
    added: float = 0.0  # when the agent first seeded it (seconds since the epoch)
    removed: bool = False  # `torrip agent remove`: not seeded until added again
    environments: list[str] = field(default_factory=list)  # site-packages it went into

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "uploaded": self.uploaded,
            "added": self.added,
            "removed": self.removed,
            "environments": list(self.environments),
        }

    @classmethod
    def from_json(cls, sha256: str, data: Any) -> FileRecord:
        where = f"files.{sha256[:12]}"
        if not _SHA256.fullmatch(sha256):
            raise StateError(f"{where}: not a sha256")
        if not isinstance(data, dict):
            raise StateError(f"{where}: not an object")
        environments = data.get("environments", [])
        if not isinstance(environments, list) or not all(isinstance(e, str) for e in environments):
            raise StateError(f"{where}.environments: not a list of paths")
        filename = data.get("filename")
        if not isinstance(filename, str) or not filename or "/" in filename:
            raise StateError(f"{where}.filename: not a file name")
        return cls(
            sha256=sha256,
            filename=filename,
            size=_count(data, "size", where),
            mtime_ns=_count(data, "mtime_ns", where),
            uploaded=_count(data, "uploaded", where),
            added=_number(data, "added", where),
            removed=_flag(data, "removed", where),
            environments=environments,
        )


@dataclass
class AgentState:
    files: dict[str, FileRecord] = field(default_factory=dict)
    uploaded: int = 0  # bytes, all files, all runs

    def to_json(self) -> bytes:
        document = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "uploaded": self.uploaded,
            "files": {sha256: record.to_json() for sha256, record in sorted(self.files.items())},
        }
        return json.dumps(document, indent=1).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> AgentState:
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, ValueError) as error:
            raise StateError(f"not JSON ({error})") from None
        if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
            raise StateError("not a torrip agent state")
        if document.get("version") != STATE_VERSION:
            raise StateError(f"state version {document.get('version')!r} is not {STATE_VERSION}")
        files = document.get("files")
        if not isinstance(files, dict):
            raise StateError("files: not an object")
        records = {sha256: FileRecord.from_json(sha256, data) for sha256, data in files.items()}
        return cls(files=records, uploaded=_count(document, "uploaded", "state"))


def load_state(path: Path) -> tuple[AgentState | None, str | None]:
    """The state at ``path``; or None and why (None, None when there is no file yet)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as error:
        return None, f"cannot read {path}: {error.strerror or error}"
    try:
        return AgentState.from_json(data), None
    except StateError as error:
        return None, f"{path} is damaged: {error}"


def save_state(path: Path, state: AgentState) -> None:
    """Write the whole state atomically and durably (readers see the old or the new)."""
    atomic_write(path, state.to_json(), durable=True)


def _count(data: dict[str, Any], key: str, where: str) -> int:
    value = data.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise StateError(f"{where}.{key}: not a count")
    return value


def _number(data: dict[str, Any], key: str, where: str) -> float:
    value = data.get(key, 0.0)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise StateError(f"{where}.{key}: not a number")
    return float(value)


def _flag(data: dict[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise StateError(f"{where}.{key}: not true or false")
    return value

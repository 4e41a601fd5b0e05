"""What target interpreters said of themselves, kept between commands.

Running the target so that it describes itself (``environment.Probe``) costs 25-40 ms,
most of what is left of a warm command once it starts warm (docs/warm-start.md). What an
interpreter says of itself changes only when it, or what it reads at start, changes; so
torrip keeps the description, as uv keeps its interpreters', keyed by the probe's own
code, the interpreter's path, the working folder and the environment variables the probe
reads, and valid while the executable is the same file (inode, size, mtime) and its
``pyvenv.cfg`` says the same (a virtual environment made again in the same place is the
same). At each use, the ``.pth`` files, ``sitecustomize.py`` and ``EXTERNALLY-MANAGED``
in the folders on its path must also be the ones it saw (``.pth`` files and sitecustomize
can add folders to sys.path), and the folders it would have put on the path had they
existed (a user site) must still be missing. The installed distributions are never
kept: they are read afresh, in this process, by the probe's own function.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torrip.fsutil import atomic_write

__all__ = ["AREA", "InterpreterCache"]

AREA = "interpreters-v1"
# What the probe reads from the environment besides the interpreter's own files: the user
# scheme (HOME, PYTHONUSERBASE), whether the user site counts, the language of a
# distributor's EXTERNALLY-MANAGED message, macOS's version shim.
_VARIABLES = (
    "HOME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "LANG",
    "LC_ALL",
    "LC_MESSAGES",
    "SYSTEM_VERSION_COMPAT",
)
_GUARDED = ("sitecustomize.py", "EXTERNALLY-MANAGED")
# Facts read afresh at every use.
_FRESH = ("distributions", "listing")

Distributions = Callable[[list[str], dict[str, list[str]]], list[dict[str, Any]]]


class InterpreterCache:
    """One interpreter's kept description, under ``cache_dir/interpreters-v1``."""

    def __init__(
        self,
        cache_dir: Path,
        python: Path,
        arguments: Sequence[str],
        probe_source: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = ""
        key = json.dumps(
            [
                hashlib.sha256(probe_source.encode()).hexdigest(),
                str(python),
                list(arguments),
                cwd,
                [env.get(name) for name in _VARIABLES],
            ]
        )
        self.path = cache_dir / AREA / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
        self.python = python

    def load(self, distributions: Distributions) -> dict[str, Any] | None:
        """The kept facts, with the installed distributions read now; None if nothing is
        kept, or what is kept may no longer be true."""
        try:
            kept = json.loads(self.path.read_bytes())
            if kept["signature"] != self._signature():
                return None
            facts: dict[str, Any] = kept["facts"]
            entries = [str(entry) for entry in facts["site_packages"]]
            if kept["guards"] != _guards(entries):
                return None
            # A folder made since (the user site, by a first --user install) joins the path.
            if any(os.path.isdir(entry) for entry in facts.get("absent", ())):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        listing: dict[str, list[str]] = {}
        facts["distributions"] = distributions(entries, listing)
        facts["listing"] = listing
        return facts

    def store(self, facts: Mapping[str, Any]) -> None:
        """Keep what the probe said (but the distributions); best effort."""
        try:
            entries = [str(entry) for entry in facts["site_packages"]]
            kept = {
                "signature": self._signature(),
                "guards": _guards(entries),
                "facts": {key: value for key, value in facts.items() if key not in _FRESH},
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(kept).encode())
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def _signature(self) -> list[Any]:
        """The executable (its target, for a venv's symlink) and what the venv's pyvenv.cfg
        says: a venv made again in the same place, from the same Python, is the same."""
        try:
            config: str | None = (self.python.parent.parent / "pyvenv.cfg").read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            config = None
        return [_stat(self.python), config]


def _stat(path: Path) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_ino, info.st_size, info.st_mtime_ns]


def _guards(entries: Sequence[str]) -> dict[str, list[list[Any]]]:
    """Per folder on the path: its .pth files, sitecustomize and EXTERNALLY-MANAGED."""
    guards: dict[str, list[list[Any]]] = {}
    for entry in entries:
        found: list[list[Any]] = []
        try:
            with os.scandir(entry) as children:
                for child in children:
                    name = child.name
                    if name.endswith(".pth") or name in _GUARDED:
                        info = child.stat()
                        found.append([name, info.st_ino, info.st_size, info.st_mtime_ns])
        except OSError:
            found.append(["-missing-"])
        guards[entry] = sorted(found)
    return guards

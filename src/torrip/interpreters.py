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
import re
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
# Stands for a virtual environment's own folder in what is kept of it.
_HERE = "@torrip-venv@"

Distributions = Callable[[list[str], dict[str, list[str]]], list[dict[str, Any]]]


class InterpreterCache:
    """One interpreter's kept description, under ``cache_dir/interpreters-v1``.

    A virtual environment's is kept with its own folder left out (``_HERE``), so that it
    describes every venv made the same way from the same Python, wherever it lies: a CI
    job's or a benchmark's fresh venv, tox's and nox's. Its own folder goes back in when
    it is read.
    """

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
        self.python = python
        self.venv = _venv_of(python)
        self.signature = self._signature()
        # A venv's description holds for the same Python and the same pyvenv.cfg (the
        # signature); another interpreter's, for its own path.
        where = (
            [str(python.relative_to(self.venv)), self.signature]
            if self.venv is not None
            else [str(python)]
        )
        key = json.dumps(
            [
                hashlib.sha256(probe_source.encode()).hexdigest(),
                where,
                [self._generic(argument) for argument in arguments],
                cwd,
                [env.get(name) for name in _VARIABLES],
            ]
        )
        self.path = cache_dir / AREA / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def load(self, distributions: Distributions) -> dict[str, Any] | None:
        """The kept facts, with the installed distributions read now; None if nothing is
        kept, or what is kept may no longer be true."""
        try:
            text = self.path.read_text("utf-8")
            if self.venv is not None:
                text = text.replace(_HERE, _json_text(str(self.venv)))
            kept = json.loads(text)
            if kept["signature"] != self.signature:
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
                "signature": self.signature,
                "guards": _guards(entries),
                "facts": {key: value for key, value in facts.items() if key not in _FRESH},
            }
            text: str | None = json.dumps(kept)
            if self.venv is not None and text is not None:
                text = _generic_text(text, _json_text(str(self.venv)))
            if text is None:
                return  # its folder shows in a way a template cannot stand for
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, text.encode("utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def _signature(self) -> list[Any]:
        """The executable (its target, for a venv's symlink) and what the venv's pyvenv.cfg
        says, its own folder left out: venvs made the same way from the same Python are
        the same."""
        try:
            config: str | None = (self.python.parent.parent / "pyvenv.cfg").read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            config = None
        if config is None:
            return [_stat(self.python), None]
        return [_stat(self.python), hashlib.sha256(self._generic(config).encode()).hexdigest()]

    def _generic(self, text: str) -> str:
        return text if self.venv is None else text.replace(str(self.venv), _HERE)


def _venv_of(python: Path) -> Path | None:
    """The virtual environment ``python`` belongs to (its pyvenv.cfg one folder up from
    the executable's), if its path is plain enough to stand in for: absolute, and the same
    when symlinks are resolved."""
    venv = python.parent.parent
    if not venv.is_absolute() or not (venv / "pyvenv.cfg").is_file():
        return None
    if os.path.realpath(venv) != str(venv) or _HERE in str(venv):
        return None
    return venv


def _json_text(value: str) -> str:
    """``value`` as it appears inside a JSON string."""
    return json.dumps(value)[1:-1]


def _generic_text(text: str, folder: str) -> str | None:
    """``text`` with ``folder`` replaced by ``_HERE`` wherever it is a whole path or the
    start of one; None if it also shows as part of something else (``/venv`` in
    ``/venv2``), where putting another folder back would be wrong."""
    whole = re.compile(re.escape(folder) + r'(?=["/\\])')
    if len(whole.findall(text)) != text.count(folder):
        return None
    return text.replace(folder, _HERE)


def _stat(path: Path) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_ino, info.st_size, info.st_mtime_ns]


def _guards(entries: Sequence[str]) -> dict[str, list[list[Any]]]:
    """Per folder on the path: its .pth files, sitecustomize and EXTERNALLY-MANAGED, by
    name and content (the same in venvs made the same way)."""
    guards: dict[str, list[list[Any]]] = {}
    for entry in entries:
        found: list[list[Any]] = []
        try:
            with os.scandir(entry) as children:
                for child in children:
                    name = child.name
                    if name.endswith(".pth") or name in _GUARDED:
                        with open(child.path, "rb") as file:
                            digest = hashlib.sha256(file.read()).hexdigest()
                        found.append([name, digest])
        except OSError:
            found.append(["-missing-"])
        guards[entry] = sorted(found)
    return guards

"""Which ``-r`` arguments are PEP 751 lockfiles: cheap, so ``torrip install`` can ask first.

is_lockfile_name("pylock.toml")             # True; "pylock.dev.toml" too
split_extras("pylock.toml[fast,x]")         # ("pylock.toml", frozenset({"fast", "x"}))
"""

from __future__ import annotations

import re
from pathlib import PurePath

__all__ = ["is_lockfile_name", "split_extras"]

# PEP 751: "pylock.toml", or "pylock.<name>.toml" with a name of no dots.
_LOCKFILE_NAME = re.compile(r"pylock(\.[^.]+)?\.toml")
# pip's form for selecting extras of a lock: "pylock.toml[extra,...]".
_EXTRAS = re.compile(r"^(?P<path>.+?)\[(?P<extras>[^\]]*)\]$")


def split_extras(argument: str) -> tuple[str, frozenset[str]]:
    """``pylock.toml[a,b]`` -> (``pylock.toml``, {a, b}), as pip reads ``-r`` arguments."""
    match = _EXTRAS.match(argument)
    if match is None:
        return argument, frozenset()
    extras = (e.strip() for e in match.group("extras").split(","))
    return match.group("path"), frozenset(e for e in extras if e)


def is_lockfile_name(argument: str) -> bool:
    """Whether ``argument`` (maybe with ``[extras]``) names a PEP 751 lockfile."""
    return bool(_LOCKFILE_NAME.fullmatch(PurePath(split_extras(argument)[0]).name))

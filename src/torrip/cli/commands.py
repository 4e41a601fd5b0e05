"""The list of commands. Each module's registrar adds its subparser and sets ``run``.

A command line that names a command imports that command's module alone: building the
other fifteen subparsers (and importing their modules) cost 10-15 ms of every run.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

__all__ = ["COMMANDS", "registrars"]

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# Command -> (module, registrar), in the order of `torrip --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "install": ("torrip.cli.install", "register"),
    "uninstall": ("torrip.cli.uninstall", "register"),
    "download": ("torrip.cli.download", "register"),
    "lock": ("torrip.cli.lock", "register_lock"),
    "sync": ("torrip.cli.lock", "register_sync"),
    "list": ("torrip.cli.inventory", "register_list"),
    "freeze": ("torrip.cli.inventory", "register_freeze"),
    "show": ("torrip.cli.inventory", "register_show"),
    "check": ("torrip.cli.inventory", "register_check"),
    "tree": ("torrip.cli.inventory", "register_tree"),
    "cache": ("torrip.cli.cache", "register"),
    "torrent": ("torrip.cli.torrent", "register"),
    "index": ("torrip.cli.index", "register"),
    "seed": ("torrip.cli.seed", "register"),
    "agent": ("torrip.cli.agent", "register"),
    "completion": ("torrip.cli.completion", "register"),
}


def registrars(only: str | None = None) -> list[Registrar]:
    """The registrar of command ``only``, or of every command."""
    names = [only] if only in COMMANDS else list(COMMANDS)
    found: list[Registrar] = []
    for name in names:
        module, function = COMMANDS[name]
        found.append(getattr(importlib.import_module(module), function))
    return found

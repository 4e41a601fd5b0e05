"""The list of commands. Each module's ``register`` adds its subparser and sets ``run``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from torrip.cli import (
    agent,
    cache,
    completion,
    index,
    install,
    inventory,
    lock,
    seed,
    torrent,
    uninstall,
)

__all__ = ["REGISTRARS"]

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: list[Registrar] = [
    install.register,
    uninstall.register,
    lock.register_lock,
    lock.register_sync,
    inventory.register_list,
    inventory.register_freeze,
    inventory.register_show,
    inventory.register_check,
    cache.register,
    torrent.register,
    index.register,
    seed.register,
    agent.register,
    completion.register,
]

"""The list of commands. Each module's ``register`` adds its subparser and sets ``run``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from torrip.cli import index, install, torrent

__all__ = ["REGISTRARS"]

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: list[Registrar] = [install.register, torrent.register, index.register]

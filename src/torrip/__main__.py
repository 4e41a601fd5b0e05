"""``python -m torrip``, and the ``torrip`` command's entry point."""

from __future__ import annotations

import gc
import os
import sys

# Not `typing.TYPE_CHECKING`: importing typing costs 2-3 ms of every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def entry() -> NoReturn:
    # Off before torrip imports anything: the collector's passes over the objects that
    # importing creates cost about 10 ms of every start, and free nothing.
    gc.disable()
    from torrip.warmstart.client import run_in_server

    status, server_socket = run_in_server(sys.argv[1:])
    if status is not None:
        os._exit(status)
    from torrip.cli.main import entry as run_command

    if server_socket is None:
        run_command()
    from torrip.warmstart.client import start_server

    run_command(before_exit=lambda: start_server(server_socket))


if __name__ == "__main__":  # not when multiprocessing imports it in a worker process
    entry()

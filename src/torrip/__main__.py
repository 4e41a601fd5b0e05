"""``python -m torrip``, and the ``torrip`` command's entry point."""

import gc
from typing import NoReturn


def entry() -> NoReturn:
    # Off before torrip imports anything: the collector's passes over the objects that
    # importing creates cost about 10 ms of every start, and free nothing.
    gc.disable()
    from torrip.cli.main import entry as run_command

    run_command()


if __name__ == "__main__":  # not when multiprocessing imports it in a worker process
    entry()

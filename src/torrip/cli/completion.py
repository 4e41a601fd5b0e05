"""``torrip completion bash|zsh|fish``: print the shell's completion script.

Examples::

    torrip completion bash > ~/.local/share/bash-completion/completions/torrip
    torrip completion zsh > "${fpath[1]}/_torrip"
    torrip completion fish > ~/.config/fish/completions/torrip.fish
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from torrip.cli.output import Output

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

# torrip.completion.SHELLS, repeated so that building the parser needs no import of it.
SHELLS = ("bash", "zsh", "fish")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="Print a shell completion script.",
        description="Print the completion script of SHELL, generated from torrip's own "
        "options. Load it in the shell's start-up file, or save it where the shell "
        "looks for completions.",
    )
    parser.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash, zsh or fish")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, output: Output) -> int:
    from torrip.cli.main import build_parser
    from torrip.completion import completion_script

    output.data(completion_script(args.shell, build_parser()))
    return 0

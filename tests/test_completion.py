"""Shell completions: generated from the parser, committed as generated, loadable, in step."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from torrip.cli import commands
from torrip.cli.main import build_parser, main
from torrip.completion import SHELLS, Command, command_tree, completion_script

COMPLETIONS = Path(__file__).resolve().parents[1] / "completions"
FILES = {"bash": "torrip.bash", "zsh": "_torrip", "fish": "torrip.fish"}


@pytest.fixture(scope="module")
def tree() -> tuple[Command, ...]:
    return command_tree(build_parser())


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_scripts_are_the_generators_output(shell: str) -> None:
    committed = COMPLETIONS / FILES[shell]
    assert committed.read_text() == completion_script(shell, build_parser()), (
        f"{committed} is out of date; regenerate it with "
        f"`torrip completion {shell} > completions/{FILES[shell]}`"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_the_command_prints_the_script(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    assert capsys.readouterr().out == completion_script(shell, build_parser())


def test_tree_has_every_command_and_subcommand(tree: tuple[Command, ...]) -> None:
    paths = [command.path for command in tree]
    assert list(commands.COMMANDS) == [word.name for word in tree[0].words]
    assert [word.name for word in tree[0].words] == [
        "install",
        "uninstall",
        "download",
        "lock",
        "sync",
        "list",
        "freeze",
        "show",
        "check",
        "tree",
        "cache",
        "torrent",
        "index",
        "seed",
        "agent",
        "completion",
    ]
    for path in ("torrip cache clean", "torrip index serve", "torrip torrent make"):
        assert path in paths
    listing = next(command for command in tree if command.path == "torrip list")
    format_option = next(option for option in listing.options if "--format" in option.names)
    assert format_option.choices == ("columns", "freeze", "json")
    assert "--python" in listing.value_options and "-v" not in listing.value_options


def test_bash_loads_and_registers_the_function() -> None:
    result = subprocess.run(
        ["bash", "-c", f"source {COMPLETIONS / 'torrip.bash'}; complete -p torrip"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "complete -o default -F _torrip torrip"
    assert result.stderr == ""


def _bash_complete(cases: list[list[str]]) -> list[list[str]]:
    """What bash offers after each list of words (the last one is being typed)."""
    lines = [f"source {COMPLETIONS / 'torrip.bash'}"]
    for words in cases:
        quoted = " ".join(f"'{word}'" for word in words)
        lines += [
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; COMPREPLY=()",
            '_torrip; echo "${COMPREPLY[*]}"',
        ]
    result = subprocess.run(
        ["bash", "-c", "\n".join(lines)], capture_output=True, text=True, check=True
    )
    return [line.split() for line in result.stdout.splitlines()]


def test_bash_offers_what_the_parser_accepts(tree: tuple[Command, ...]) -> None:
    cases: list[list[str]] = []
    expected: list[list[str]] = []
    for command in tree:
        words = command.path.split()
        cases.append([*words, "-"])
        expected.append([name for option in command.options for name in option.names])
        cases.append([*words, ""])
        expected.append([word.name for word in command.words])
        for option in command.options:
            if option.takes_value:
                cases.append([*words, option.names[-1], ""])
                expected.append(list(option.choices))
    assert _bash_complete(cases) == expected


def test_bash_skips_options_and_their_values_to_find_the_command() -> None:
    cases = [
        ["torrip", "li"],
        ["torrip", "index", "--help", "b"],
        ["torrip", "list", "--python", "show", "--fo"],
        ["torrip", "index", "serve", "--format", "h"],
        ["torrip", "torrent", "show", "x.torrent", "--j"],
        ["torrip", "show", "--python", "venv", "demo", "-"],
    ]
    assert _bash_complete(cases) == [
        ["list"],
        ["build"],
        ["--format"],
        ["html"],
        ["--json"],
        [
            "-h",
            "--help",
            "-f",
            "--files",
            "--python",
            "-v",
            "--verbose",
            "-q",
            "--quiet",
            "--warm-start",
            "--no-warm-start",
        ],
    ]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses() -> None:
    subprocess.run(["zsh", "-n", str(COMPLETIONS / "_torrip")], check=True)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_parses() -> None:
    subprocess.run(["fish", "--no-execute", str(COMPLETIONS / "torrip.fish")], check=True)


def test_unknown_shell() -> None:
    with pytest.raises(ValueError, match="bash, zsh, fish"):
        completion_script("tcsh", build_parser())

"""The command's entry point: exit codes and output survive the quick exit; ``main`` leaves
the garbage collector as it found it."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from torrip import __version__
from torrip.cli.main import main

TORRIP = Path(sys.executable).parent / "torrip"


def test_the_command_prints_and_exits_with_its_code() -> None:
    shown = subprocess.run([TORRIP, "--version"], capture_output=True, text=True, check=False)
    assert (shown.returncode, shown.stdout.strip().split()[:2]) == (0, ["torrip", __version__])
    failed = subprocess.run(
        [sys.executable, "-m", "torrip", "install"], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert "you must give at least one requirement" in failed.stderr


def test_ctrl_c_while_the_command_loads_is_no_traceback() -> None:
    """Ctrl-C while the command's modules are imported, before ``main`` handles it."""
    interrupted = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, torrip.cli.commands as commands\n"
            "def loading(only): raise KeyboardInterrupt\n"
            "commands.registrars = loading\n"
            "from torrip.cli.main import entry\n"
            "sys.argv = ['torrip', 'install', 'requests']\n"
            "entry()\n",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (interrupted.returncode, interrupted.stderr) == (130, "error: interrupted\n")


def test_output_through_a_pipe_is_complete() -> None:
    """Written through a pipe (block-buffered): everything arrives despite os._exit."""
    listed = subprocess.run(
        [TORRIP, "completion", "bash"], capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0
    assert listed.stdout.rstrip().endswith(
        (Path(__file__).parents[2] / "completions" / "torrip.bash").read_text().rstrip()[-200:]
    )


def test_main_restores_the_garbage_collector() -> None:
    assert gc.isenabled()
    assert main(["completion", "fish"]) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["completion", "fish"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def _help_of(parser_argv: list[str], only: str | None, capsys) -> str:
    from torrip.cli.main import build_parser

    try:
        build_parser(only).parse_args(parser_argv)
    except SystemExit as done:
        assert done.code == 0
    return capsys.readouterr().out


def test_a_commands_own_parser_reads_it_as_the_whole_one_does(capsys) -> None:
    from torrip.cli.commands import COMMANDS

    for name in COMMANDS:
        assert _help_of([name, "--help"], name, capsys) == _help_of([name, "--help"], None, capsys)


def test_a_command_imports_no_other_command(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from torrip.cli.main import main\n"
        "main(['cache', 'dir'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('torrip.cli.')))\n"
    )
    env = {"TORRIP_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    loaded = shown.stdout.strip().splitlines()[-1]
    assert "torrip.cli.cache" in loaded
    assert "torrip.cli.install" not in loaded and "torrip.cli.agent" not in loaded

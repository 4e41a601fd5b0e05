"""Signals during an install: a termination undoes it as Ctrl-C does; a signal during the
undoing waits for it to end. The handlers are the main thread's: these run in pytest's."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

import torrip.install.transaction as transaction
from fixtures.locks import one_wheel_lock
from install.support import package_wheel, snapshot, to_install
from torrip.cli.main import main
from torrip.environment import TargetEnvironment
from torrip.errors import Terminated
from torrip.install.signals import interrupts_deferred, terminations_interrupt
from torrip.install.transaction import install_transaction
from torrip.install.wheel import WriteJournal


def _wheels(directory: Path) -> list[Path]:
    return [package_wheel(directory, name, "1.0") for name in ("s1", "s2", "s3")]


def test_sigterm_midway_undoes_the_install(
    environment: TargetEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(Path(environment.prefix))
    real = transaction.install_wheel
    calls: list[str] = []

    def terminated_midway(verified, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(verified.name)
        if len(calls) == 2:  # the first wheel is in place
            os.kill(os.getpid(), signal.SIGTERM)
        return real(verified, **kwargs)

    monkeypatch.setattr(transaction, "install_wheel", terminated_midway)
    with pytest.raises(Terminated) as raised:
        install_transaction(
            environment, [to_install(p) for p in _wheels(tmp_path)], remove=[], parallel=False
        )
    assert raised.value.signum == signal.SIGTERM
    assert len(calls) == 2
    assert snapshot(Path(environment.prefix)) == before
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # as it was


def test_ctrl_c_during_the_undoing_waits_for_it(
    environment: TargetEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C (the first made the install fail) comes after everything is back."""
    before = snapshot(Path(environment.prefix))
    real_undo = WriteJournal.undo

    def interrupted_undo(self: WriteJournal) -> list[str]:
        os.kill(os.getpid(), signal.SIGINT)
        return real_undo(self)

    def failing(verified, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(WriteJournal, "undo", interrupted_undo)
    monkeypatch.setattr(transaction, "install_wheel", failing)
    with pytest.raises(KeyboardInterrupt):
        install_transaction(
            environment, [to_install(p) for p in _wheels(tmp_path)], remove=[], parallel=False
        )
    assert snapshot(Path(environment.prefix)) == before


def test_a_termination_the_program_ignores_or_handles_stays_so() -> None:
    caught: list[int] = []
    previous_term = signal.signal(signal.SIGTERM, lambda signum, _frame: caught.append(signum))
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with terminations_interrupt():
            os.kill(os.getpid(), signal.SIGHUP)  # ignored, as nohup has it
            os.kill(os.getpid(), signal.SIGTERM)  # the program's own handler
        assert caught == [signal.SIGTERM]
        with pytest.raises(KeyboardInterrupt), interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            caught.append(0)  # reached: the Ctrl-C waits for the block's end
        assert caught == [signal.SIGTERM, 0]
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGHUP, previous_hup)


def test_the_command_says_it_was_terminated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torrip.cli.cache as cache_cli

    def terminated(*args: object) -> int:
        raise Terminated(signal.SIGTERM)

    monkeypatch.setenv("TORRIP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache_cli, "run_info", terminated)
    assert main(["cache", "info"]) == 128 + signal.SIGTERM
    assert "terminated (SIGTERM)" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="unpacking workers are forked on Linux with two cores only",
)
def test_a_command_killed_outright_leaves_no_unpacking_worker(make_venv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM's default action while the files download: the forked workers end with the
    command. Left behind, they waited for work forever and held the caller's pipes open
    (a CI step waiting for the command's output hung)."""
    import socket
    import subprocess
    import time

    from torrip.install.unpacked import FORK_MIN_BYTES

    silent = socket.socket()  # a file server that accepts and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/big-1.0-py3-none-any.whl"
    lock = tmp_path / "pylock.toml"
    lock.write_text(one_wheel_lock("big", url, size=FORK_MIN_BYTES + 1, sha256="a" * 64))
    venv = make_venv()
    argv = ["install", "--no-warm-start", "--no-p2p", "-q", "-r", str(lock)]
    argv += ["--python", str(venv / "bin" / "python"), "--cache-dir", str(tmp_path / "cache")]
    command = subprocess.Popen(
        [sys.executable, "-m", "torrip", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with silent:
        silent.settimeout(30)
        held, _ = silent.accept()  # the download has started
        with held:
            deadline = time.monotonic() + 10
            while len(workers := _children(command.pid)) < 2:
                assert time.monotonic() < deadline, workers
                time.sleep(0.02)
            command.send_signal(signal.SIGTERM)
            command.communicate(timeout=20)  # hung here, the workers holding stderr
    assert command.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{worker}") for worker in workers):
        assert time.monotonic() < deadline, workers
        time.sleep(0.02)

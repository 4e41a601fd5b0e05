"""Warm start: commands run in forks of a server that has torrip imported.

Real processes throughout: the ``torrip`` command (``python -m torrip``), the server it
leaves behind, and its forks, in a private run folder per test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.wheels import make_wheel
from torrip.warmstart.identity import could_serve, enabled, failure_path, private_run_dir

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="warm start is Linux only")

SRC = Path(__file__).resolve().parents[1] / "src"


class Warm:
    """A run folder of this test's, the environment that points torrip at it, and the
    server (if any) that commands left there."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(run)}
        del self.env["TORRIP_WARM_START"]

    @property
    def folder(self) -> Path:
        return self.run / "torrip"

    def torrip(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "torrip", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=cwd,
            timeout=120,
        )

    def sockets(self) -> list[Path]:
        return sorted(self.folder.glob("warm-*.sock")) if self.folder.is_dir() else []

    def wait_for_server(self, count: int = 1) -> Path:
        deadline = time.monotonic() + 20
        while len(self.sockets()) < count:
            assert time.monotonic() < deadline, f"no server in {self.folder}: {self.logs()}"
            time.sleep(0.05)
        return self.sockets()[-1]

    def logs(self) -> str:
        return "".join(log.read_text() for log in sorted(self.folder.glob("warm-*.log")))

    def served(self) -> list[str]:
        """The commands the servers ran, from their logs."""
        return [line.split(": ", 1)[1] for line in self.logs().splitlines() if ": torrip " in line]

    def server_pids(self) -> list[int]:
        pids = []
        for lock in self.folder.glob("warm-*.lock"):
            text = lock.read_text().strip()
            if text:
                pids.append(int(text))
        return pids

    def stop(self) -> None:
        for pid in self.server_pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def warm() -> Iterator[Warm]:
    # Short: a Unix socket's path holds 107 bytes, and pytest's tmp_path can be longer.
    run = Path(tempfile.mkdtemp(prefix="tw-", dir="/tmp"))
    state = Warm(run)
    yield state
    state.stop()
    shutil.rmtree(run, ignore_errors=True)


def test_a_command_leaves_a_server_and_the_next_runs_in_it(warm: Warm, tmp_path: Path) -> None:
    first = warm.torrip("cache", "dir", env={"TORRIP_CACHE_DIR": str(tmp_path / "one")})
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(tmp_path / "one")
    warm.wait_for_server()
    assert warm.served() == []  # the first ran in its own process

    # The fork takes the command's environment, not the server's.
    second = warm.torrip("cache", "dir", env={"TORRIP_CACHE_DIR": str(tmp_path / "two")})
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == str(tmp_path / "two")
    assert warm.served() == ["torrip cache dir"]
    folder = warm.folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(warm.sockets()[0].stat().st_mode) == 0o600


def test_commands_at_once_are_each_served_with_their_own_environment(
    warm: Warm, tmp_path: Path
) -> None:
    """One spare at a time: the others wait for the next, and none is mixed up."""
    warm.torrip("cache", "dir")
    warm.wait_for_server()
    commands = [
        subprocess.Popen(
            [sys.executable, "-m", "torrip", "cache", "dir"],
            stdout=subprocess.PIPE,
            text=True,
            env={**warm.env, "TORRIP_CACHE_DIR": str(tmp_path / f"cache-{n}")},
        )
        for n in range(6)
    ]
    outputs = [command.communicate(timeout=60)[0].strip() for command in commands]
    assert [command.returncode for command in commands] == [0] * 6
    assert outputs == [str(tmp_path / f"cache-{n}") for n in range(6)]
    assert warm.served().count("torrip cache dir") == 6


def test_exit_status_and_both_streams_come_back(warm: Warm, tmp_path: Path) -> None:
    warm.torrip("cache", "dir")
    warm.wait_for_server()
    missing = warm.torrip("show", "no-such-project", "--python", sys.executable)
    usage = warm.torrip("install", "--no-such-option")
    helped = warm.torrip("list", "--help")
    assert warm.served() == [
        f"torrip show no-such-project --python {sys.executable}",
        "torrip install --no-such-option",
        "torrip list --help",
    ]
    assert missing.returncode == 1
    assert "not found: no-such-project" in missing.stderr
    assert usage.returncode == 2
    assert "unrecognized arguments: --no-such-option" in usage.stderr
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: torrip list")


def test_an_install_in_a_fork_is_the_install_in_a_process(
    warm: Warm, tmp_path: Path, local_index, make_venv
) -> None:
    """Working folder (a relative -r file), umask and environment all reach the fork."""
    dists = tmp_path / "dists"
    index = local_index(
        [
            make_wheel(
                dists,
                "app",
                "1.0",
                requires_dist=["lib"],
                entry_points="[console_scripts]\napp = app:main\n",
            ),
            make_wheel(dists, "lib", "2.0"),
        ]
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("app\n")
    warm.torrip("cache", "dir")
    warm.wait_for_server()
    trees = {}
    caches = {}
    reports = {}
    for mode in ("--warm-start", "--no-warm-start"):
        venv = make_venv()
        command = [
            "install",
            mode,
            "-q",
            "--index-url",
            index.url,
            "--python",
            str(venv),
            "-r",
            "requirements.txt",
            "--report",
            f"report{mode}.json",
        ]
        # Files written whole and renamed into place (pages, records, the report) too:
        # their mode comes from the command's umask, not the server's.
        trees[mode], caches[mode] = _install_in_umask_077(
            warm, command, venv, tmp_path / f"cache{mode}", cwd=project
        )
        script = venv / "bin" / "app"
        assert script.read_text().startswith(f"#!{venv}/bin/python")
        reports[mode] = stat.S_IMODE((project / f"report{mode}.json").stat().st_mode)
    assert caches["--warm-start"] == caches["--no-warm-start"]
    assert reports["--warm-start"] == reports["--no-warm-start"] == 0o600
    assert trees["--warm-start"] == trees["--no-warm-start"]
    assert any(name.endswith("app-1.0.dist-info/INSTALLER") for name in trees["--warm-start"])
    assert all(mode & 0o077 == 0 for mode in trees["--warm-start"].values())
    assert len(warm.served()) == 1 and " -r requirements.txt" in warm.served()[0]


def _install_in_umask_077(
    warm: Warm, command: list[str], venv: Path, cache: Path, *, cwd: Path | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """Run ``torrip`` with ``command`` under umask 077 (what it writes is the user's alone,
    as in a process of its own) and the cache ``cache``: the mode of each file it wrote in
    the venv's site-packages, and in the cache."""
    result = subprocess.run(
        ["sh", "-c", 'umask 077 && exec "$@"', "sh", sys.executable, "-m", "torrip", *command],
        capture_output=True,
        text=True,
        env={**warm.env, "TORRIP_CACHE_DIR": str(cache)},
        cwd=cwd,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    site = next((venv / "lib").glob("python*/site-packages"))
    tree = {
        str(path.relative_to(venv)): stat.S_IMODE(path.stat().st_mode)
        for path in site.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pth"
    }
    cached = {
        str(path.relative_to(cache)): stat.S_IMODE(path.stat().st_mode)
        for path in cache.rglob("*")
        if path.is_file()
    }
    return tree, cached


def _children(pid: int) -> list[int]:
    children = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(stat_file.parent.name))
    return children


def test_workers_forked_ahead_unpack_as_the_command_s_own_would(
    warm: Warm, tmp_path: Path, local_index, make_venv
) -> None:
    """The spare forks an install's unpacking workers while it waits for a command
    (``fork_ahead``): a cold install through them writes the cache and the environment as
    the install in its own process does, with the command's umask; and they hold none of
    the server's descriptors (its listening socket: they take no command)."""
    from torrip.install.unpacked import FORK_MIN_BYTES

    dists = tmp_path / "dists"
    # Enough to unpack that the install's workers are worth it (stored: it compresses).
    big = {"big/data.bin": os.urandom(FORK_MIN_BYTES), "big/__init__.py": b""}
    index = local_index([make_wheel(dists, "big", "1.0", files=big)])
    warm.torrip("cache", "dir")
    warm.wait_for_server()
    (server,) = warm.server_pids()
    expected = min(os.cpu_count() or 1, 4)
    deadline = time.monotonic() + 20
    while True:
        spares = _children(server)
        workers = [pid for spare in spares for pid in _children(spare)]
        if len(spares) == 1 and len(workers) == expected:
            break
        assert time.monotonic() < deadline, (spares, workers, warm.logs())
        time.sleep(0.05)
    socket_inode = os.stat(warm.sockets()[0]).st_ino
    for worker in workers:
        held = {os.readlink(fd) for fd in Path(f"/proc/{worker}/fd").iterdir()}
        assert not any(str(socket_inode) in link for link in held)  # the listener is closed
    trees, caches = {}, {}
    for mode in ("--warm-start", "--no-warm-start"):
        venv = make_venv()
        command = ["install", mode, "-q", "--index-url", index.url, "--python", str(venv), "big"]
        trees[mode], caches[mode] = _install_in_umask_077(
            warm, command, venv, tmp_path / f"cache{mode}"
        )
    assert any(name.endswith("big/data.bin") for name in trees["--warm-start"])
    assert trees["--warm-start"] == trees["--no-warm-start"]
    assert caches["--warm-start"] == caches["--no-warm-start"]
    assert any("unpacked" in name and name.endswith("data.bin") for name in caches["--warm-start"])
    # What the workers wrote: the unpacked files (the wheel itself is kept read-only).
    unpacked = {name: mode for name, mode in caches["--warm-start"].items() if "unpacked" in name}
    assert unpacked and all(mode & 0o077 == 0 for mode in unpacked.values())
    assert [line.split()[1] for line in warm.served()] == ["install"]
    assert not any(_alive(pid) for pid in workers)  # they ended with the command


def _hanging_install(
    warm: Warm, *, shell: str | None = None
) -> tuple[subprocess.Popen[str], int, socket.socket, socket.socket]:
    """A served install that waits on an index which never answers; its fork's pid; and
    that index's listening socket and the fork's connection to it, held open (closed, it
    would end the fork's wait with an error of its own). ``shell``: a ``sh -c`` script
    that runs the command as ``exec "$@"``."""
    warm.torrip("cache", "dir")
    warm.wait_for_server()
    silent = socket.socket()  # an index that accepts connections and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/simple/"
    argv = ["install", "--index-url", url, "--timeout", "60", "--dry-run", "anything"]
    command_line = [sys.executable, "-m", "torrip", *argv, "--python", sys.executable]
    if shell is not None:
        command_line = ["sh", "-c", shell, "sh", *command_line]
    command = subprocess.Popen(
        command_line, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=warm.env
    )
    deadline = time.monotonic() + 20
    while not warm.served():
        assert time.monotonic() < deadline, warm.logs()
        time.sleep(0.05)
    fork = int(warm.logs().split(": torrip install", 1)[0].rsplit("\n", 1)[-1])
    held, _ = silent.accept()  # the fork's request is on its way, and waits
    return command, fork, silent, held


def test_ctrl_c_reaches_the_fork(warm: Warm) -> None:
    command, fork, silent, held = _hanging_install(warm)
    with silent, held:
        command.send_signal(signal.SIGINT)
        _, stderr = command.communicate(timeout=20)
    assert command.returncode == 130, stderr
    assert "interrupted" in stderr
    deadline = time.monotonic() + 10  # it says its status, then exits
    while _alive(fork):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_termination_ends_the_fork_as_it_ends_a_process(warm: Warm) -> None:
    """SIGTERM outside an environment's change: the fork ends by it, and the command with
    its status (143), as a process of its own would; nothing to say."""
    command, fork, silent, held = _hanging_install(warm)
    with silent, held:
        command.send_signal(signal.SIGTERM)
        _, stderr = command.communicate(timeout=20)
    assert command.returncode == 128 + signal.SIGTERM, stderr
    assert "killed?" not in stderr
    deadline = time.monotonic() + 10
    while f"{fork}: killed by signal {int(signal.SIGTERM)}" not in warm.logs():
        assert time.monotonic() < deadline, warm.logs()
        time.sleep(0.05)


def test_signals_the_command_ignores_the_fork_ignores(warm: Warm) -> None:
    """``nohup torrip install ...``: a hangup ends neither; Ctrl-C still does."""
    command, fork, silent, held = _hanging_install(warm, shell='trap "" HUP; exec "$@"')
    with silent, held:
        command.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert command.poll() is None and _alive(fork)
        command.send_signal(signal.SIGINT)
        _, stderr = command.communicate(timeout=20)
    assert command.returncode == 130, stderr


def test_a_fork_killed_outright_fails_the_command(warm: Warm) -> None:
    command, fork, silent, held = _hanging_install(warm)
    with silent, held:
        os.kill(fork, signal.SIGKILL)
        _, stderr = command.communicate(timeout=20)
    assert command.returncode == 1
    assert "the command ended without an exit status (killed?)" in stderr
    assert warm.torrip("cache", "dir").returncode == 0  # the server serves on
    deadline = time.monotonic() + 10
    while f"{fork}: killed by signal 9" not in warm.logs():
        assert time.monotonic() < deadline, warm.logs()
        time.sleep(0.05)


def test_a_command_killed_outright_takes_its_fork_along(warm: Warm) -> None:
    """As a process of its own would end with it: the caller of ``torrip install`` that
    kills it on a timeout must not find the install going on without it."""
    command, fork, silent, held = _hanging_install(warm)
    with silent, held:
        command.kill()
        command.communicate(timeout=20)
        deadline = time.monotonic() + 10
        while _alive(fork):
            assert time.monotonic() < deadline, "the fork outlived its command"
            time.sleep(0.02)
    assert "Traceback" not in warm.logs()


def test_a_changed_module_retires_the_server(warm: Warm, tmp_path: Path) -> None:
    """An upgrade of torrip (or of what it imports) while a server runs: the next command
    runs in its own process, with the new code, and leaves a new server."""
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PYTHONPATH": str(copy)}
    assert warm.torrip("cache", "dir", env=env).returncode == 0
    warm.wait_for_server()
    old = warm.server_pids()
    output = copy / "torrip" / "cli" / "cache.py"
    time.sleep(0.01)
    output.write_text(output.read_text() + "\n# upgraded\n")

    after = warm.torrip("cache", "dir", env=env)
    assert after.returncode == 0, after.stderr
    assert "a module changed since it was imported" in warm.logs()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in old) or warm.server_pids() == old:
        assert time.monotonic() < deadline, warm.logs()
        time.sleep(0.05)
    warm.wait_for_server()
    assert warm.torrip("cache", "dir", env=env).returncode == 0
    assert warm.served() == ["torrip cache dir"]  # in the new server


def test_a_server_that_does_not_answer_is_not_waited_for(warm: Warm, tmp_path: Path) -> None:
    """Something else on the socket (a server that died half-way, say): the command runs
    in its own process, once."""
    warm.torrip("cache", "dir")
    path = warm.wait_for_server()
    warm.stop()
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    impostor.bind(str(path))
    impostor.listen()
    with impostor:
        command = subprocess.Popen(
            [sys.executable, "-m", "torrip", "cache", "dir"],
            stdout=subprocess.PIPE,
            text=True,
            env={**warm.env, "TORRIP_CACHE_DIR": str(tmp_path / "here")},
        )
        connection, _ = impostor.accept()
        connection.close()  # not a word
        out, _ = command.communicate(timeout=30)
    assert command.returncode == 0
    assert out.strip() == str(tmp_path / "here")


def test_off_by_flag_or_variable_leaves_no_server(warm: Warm) -> None:
    assert warm.torrip("cache", "dir", "--no-warm-start").returncode == 0
    assert warm.torrip("cache", "dir", env={"TORRIP_WARM_START": "0"}).returncode == 0
    assert warm.torrip("index", "--help").returncode == 0  # not a served command
    time.sleep(0.5)
    assert warm.sockets() == []


def _servers_for(run: Path) -> list[int]:
    """Processes of servers started for sockets under ``run`` (from their command lines)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"torrip.warmstart.server" in command and str(run).encode() in command:
                found.append(int(entry.name))
    return found


def test_where_a_server_failed_none_is_started_for_an_hour(warm: Warm) -> None:
    warm.torrip("cache", "dir")
    path = warm.wait_for_server()
    warm.stop()
    marker = path.with_suffix(".failed")
    marker.write_text("RuntimeError('a thread started while importing')\n")
    assert warm.torrip("cache", "dir").returncode == 0
    time.sleep(1)
    assert warm.sockets() == [] and _servers_for(warm.run) == []
    old = time.time() - 2 * 3600
    os.utime(marker, (old, old))
    assert warm.torrip("cache", "dir").returncode == 0
    warm.wait_for_server()
    assert not marker.exists()  # a server that starts clears it


def test_a_server_whose_spares_keep_dying_leaves_and_says_why(warm: Warm) -> None:
    warm.torrip("cache", "dir")
    path = warm.wait_for_server()
    (server,) = warm.server_pids()
    for _ in range(3):
        deadline = time.monotonic() + 20
        while not (spares := [pid for pid in _servers_for(warm.run) if pid != server]):
            assert _alive(server) and time.monotonic() < deadline, warm.logs()
            time.sleep(0.02)
        os.kill(spares[0], signal.SIGKILL)
        while _alive(spares[0]):
            time.sleep(0.01)
    deadline = time.monotonic() + 20
    while _alive(server):
        assert time.monotonic() < deadline, warm.logs()
        time.sleep(0.02)
    assert "three spares in a row" in path.with_suffix(".failed").read_text()
    assert not path.exists()


def test_no_server_is_started_where_its_socket_path_is_too_long(tmp_path: Path) -> None:
    long = Warm(tmp_path / ("x" * 90))
    long.run.mkdir()
    assert long.torrip("cache", "dir").returncode == 0
    time.sleep(1)
    assert _servers_for(long.run) == []
    assert not any(long.run.rglob("warm-*"))  # no lock, log or failure: none started


def test_could_serve(tmp_path: Path) -> None:
    socket_at = str(tmp_path / "torrip" / "warm-00000000.sock")
    assert could_serve(socket_at)  # no folder yet: the server makes it
    (tmp_path / "torrip").mkdir(mode=0o755)  # loose: the server tightens it
    assert could_serve(socket_at)
    assert not could_serve(str(tmp_path / "torrip" / ("x" * 100)))
    Path(failure_path(socket_at)).write_text("failed\n")
    assert not could_serve(socket_at)
    if os.getuid() == 0:
        os.unlink(failure_path(socket_at))
        os.chown(tmp_path / "torrip", 65534, 65534)
        assert not could_serve(socket_at)  # another user's


def test_another_interpreter_gets_a_server_of_its_own(warm: Warm) -> None:
    warm.torrip("cache", "dir")
    warm.wait_for_server()
    warm.torrip("cache", "dir", env={"PYTHONPATH": str(SRC)})  # another import path
    warm.wait_for_server(count=2)
    assert len(warm.sockets()) == 2
    assert warm.served() == []


def test_the_server_leaves_on_sigterm_and_takes_its_socket(warm: Warm) -> None:
    warm.torrip("cache", "dir")
    socket_path = warm.wait_for_server()
    warm.stop()
    assert not socket_path.exists()
    assert warm.torrip("cache", "dir").returncode == 0  # in-process again
    warm.wait_for_server()  # and a new one, for the fixture to stop


# -- when it applies


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["install", "x"], {}, True),
        (["list"], {"TORRIP_WARM_START": "0"}, False),
        (["list"], {"TORRIP_WARM_START": "off"}, False),
        (["list"], {"TORRIP_WARM_START": "1"}, True),
        (["list", "--no-warm-start"], {}, False),
        (["list", "--no-warm-start", "--warm-start"], {"TORRIP_WARM_START": "0"}, True),
        (["list", "--isolated"], {}, False),
        (["agent", "run"], {}, False),
        (["index", "serve"], {}, False),
        ([], {}, False),
    ],
)
def test_which_commands_are_served(
    argv: list[str], environ: dict[str, str], expected: bool, tmp_path: Path
) -> None:
    environ = {**environ, "TORRIP_CONFIG_FILE": str(tmp_path / "none.toml")}
    assert enabled(argv, environ) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("warm-start = false\n", False),
        ("[torrip]\nwarm-start = false\n", False),
        ("warm-start = true\n", True),
        ("index-url = 'https://example.org/simple/'\n", True),
        ("warm-start = 'maybe'\n", False),  # the command itself says what is wrong
        ("warm-start = [\n", False),
    ],
)
def test_the_config_file_can_turn_it_off(text: str, expected: bool, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    assert enabled(["list"], {"TORRIP_CONFIG_FILE": str(config)}) is expected


def test_served_commands_are_commands() -> None:
    """A command renamed or removed must not stay in the list in name only."""
    from torrip.cli.commands import COMMANDS
    from torrip.warmstart.identity import SERVED_COMMANDS

    assert set(COMMANDS) >= SERVED_COMMANDS
    assert {"agent", "index"}.isdisjoint(SERVED_COMMANDS)


def test_only_a_private_run_folder_of_ours_is_trusted(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert private_run_dir(environ) is None  # not there yet
    folder = tmp_path / "torrip"
    folder.mkdir(mode=0o700)
    assert private_run_dir(environ) == str(folder)
    folder.chmod(0o755)  # others could have put a socket of theirs in it
    assert private_run_dir(environ) is None
    folder.chmod(0o700)
    if os.getuid() == 0:
        os.chown(folder, 65534, 65534)
        assert private_run_dir(environ) is None


def test_the_server_compiles_what_commands_would_and_starts_no_thread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The patterns a command compiles on first use are compiled once in the server (it
    must stay one thread: it forks); a failure there is only logged."""
    import threading

    from torrip.warmstart import server

    before = threading.active_count()
    server._compile_patterns()
    assert threading.active_count() == before
    assert "not compiled" not in capsys.readouterr().err


def test_a_spare_copies_its_memory_only_when_no_command_runs(tmp_path: Path) -> None:
    """The next spare is told to make its memory its own (15-18 ms of CPU) only once the
    commands taken before it have ended, not while one of them runs beside it."""
    from torrip.warmstart import server

    serving = server.Server(str(tmp_path / "warm.sock"), {})
    go_read, go_write = os.pipe()
    os.set_blocking(go_read, False)
    serving.go = go_write
    serving.running = {12345}  # a command runs
    serving._let_spare_copy()
    with pytest.raises(BlockingIOError):
        os.read(go_read, 1)  # not told yet
    serving.running.clear()  # it ended (reaped)
    serving._let_spare_copy()
    assert os.read(go_read, 1) == b"g"
    assert serving.go is None
    assert os.read(go_read, 1) == b""  # told once: the pipe is closed
    os.close(go_read)

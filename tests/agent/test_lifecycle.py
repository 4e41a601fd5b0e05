"""The agent as a daemon: start, status, add and remove, stop; races, kills and strangers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.agent import AgentHome, agent_processes, wait_for

Home = Callable[..., AgentHome]


def test_start_status_stop(agent_home: Home) -> None:
    home = agent_home()
    home.cache_file("demo-1.0-py3-none-any.whl", 200_000)
    home.cache_file("other-2.0-py3-none-any.whl", 50_000, seed=1)
    started = home.torrip("agent", "start", "--seed-connections", "33", "--upload-rate", "1M")
    assert "Agent started (pid" in started.stdout and "torrip agent stop" in started.stdout
    status = home.wait_seeding(2)
    assert status["pid"] == home.agent_pid()
    assert status["protocol"] == 1
    assert [addr.rpartition(":")[0] for addr in status["listen"]] == ["127.0.0.1"]
    assert status["dht_nodes"] == 0
    assert status["limits"]["connections"] == 33
    assert status["limits"]["upload_rate"] == 1_000_000
    assert (status["uploaded_total"], status["uploaded_run"], status["peers"]) == (0, 0, 0)
    assert Path(status["cache_dir"]) == home.cache_dir

    shown = json.loads(home.torrip("agent", "status", "--json").stdout)
    assert shown["running"] is True and shown["files_seeding"] == 2
    human = home.torrip("agent", "status").stdout
    assert f"pid {status['pid']}" in human and "2 seeding" in human

    assert home.torrip("agent", "start").stdout.startswith("The agent already runs")
    stopped = home.torrip("agent", "stop")
    assert f"Agent stopped (pid {status['pid']})" in stopped.stdout
    assert not home.paths.socket.exists() and not home.paths.pid_file.exists()
    after = home.torrip("agent", "status", "--json", check=False)
    assert after.returncode == 3 and json.loads(after.stdout)["running"] is False
    assert home.torrip("agent", "stop").stdout.strip() == "No agent is running."


def test_run_folder_and_socket_are_private(agent_home: Home) -> None:
    home = agent_home()
    home.start()
    assert (home.paths.run.stat().st_mode & 0o777) == 0o700
    assert (home.paths.socket.stat().st_mode & 0o777) == 0o600


def test_add_remove_list_survive_a_restart(agent_home: Home, tmp_path: Path) -> None:
    home = agent_home()
    home.start()
    wheel = tmp_path / "mine-1.0-py3-none-any.whl"
    wheel.write_bytes(os.urandom(70_000))
    added = home.torrip("agent", "add", str(wheel))
    assert "Seeding 1 file." in added.stdout
    home.wait_seeding(1)
    listed = json.loads(home.torrip("agent", "list", "--json").stdout)
    assert [(row["filename"], row["state"]) for row in listed] == [(wheel.name, "seeding")]

    removed = home.torrip("agent", "remove", wheel.name)
    assert f"Stopped seeding {wheel.name}" in removed.stdout
    assert home.status()["files_seeding"] == 0
    unknown = home.torrip("agent", "remove", "nothing-9.9.whl", check=False)
    assert unknown.returncode == 1 and "does not know nothing-9.9.whl" in unknown.stderr

    home.torrip("agent", "stop")
    home.start()
    listed = json.loads(home.torrip("agent", "list", "--json").stdout)
    assert [row["state"] for row in listed] == ["stopped: removed"]  # remembered
    home.torrip("agent", "add", str(wheel))
    home.wait_seeding(1)


def test_two_starts_at_once_give_one_agent(agent_home: Home) -> None:
    home = agent_home()
    results: list[subprocess.CompletedProcess[str]] = []

    def start() -> None:
        results.append(home.torrip("agent", "start", check=False))

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    pids = {line.split("pid ")[1].split(")")[0] for r in results for line in r.stdout.splitlines()}
    assert len(pids) == 1
    wait_for(lambda: len(agent_processes(home.paths.run)) == 1, 10, lambda: "extra agents")
    assert agent_processes(home.paths.run) == [int(pids.pop())]


def test_stale_socket_and_pid_files_after_a_kill(agent_home: Home) -> None:
    home = agent_home()
    home.cache_file("demo-1.0-py3-none-any.whl", 100_000)
    first = home.start()
    home.kill()
    assert home.paths.socket.exists() and home.paths.pid_file.exists()  # left behind
    status = home.torrip("agent", "status", "--json", check=False)
    assert status.returncode == 3
    assert json.loads(status.stdout) == {"running": False, "stale_files": True}
    second = home.start()
    assert second != first
    assert home.wait_seeding(1)["pid"] == second
    assert home.paths.pid_file.read_text().strip() == str(second)


def test_a_second_agent_for_the_same_cache_is_refused(agent_home: Home) -> None:
    home = agent_home()
    home.start()
    other_run = home.root / "run2"
    other_run.mkdir(mode=0o700)
    env = {**home.env, "XDG_RUNTIME_DIR": str(other_run)}
    done = subprocess.run(
        [sys.executable, "-m", "torrip", "agent", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "already runs for the cache" in done.stderr


_STRANGER = """
import json, os, socket, sys
path = sys.argv[1]
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(5)
try:
    sock.connect(path)
except OSError as error:
    print(json.dumps({"connect": type(error).__name__}))
    raise SystemExit(0)
reader = sock.makefile("rb")
try:
    sock.sendall(b'{"op": "status"}\\n')
except OSError:
    pass  # the agent may have answered and closed already
answer = reader.readline()
print(json.dumps({"answer": json.loads(answer) if answer else None}))
"""


def _as_nobody(socket_path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _STRANGER, str(socket_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_cannot_use_the_socket(agent_home: Home) -> None:
    home = agent_home()
    home.start()
    # The 0700 folder keeps other users from even reaching the socket ...
    assert _as_nobody(home.paths.socket) == {"connect": "PermissionError"}
    # ... and were it opened up, the agent checks who is calling.
    folders = [home.root, home.paths.run.parent, home.paths.run]
    for folder in folders:
        folder.chmod(0o711)
    home.paths.socket.chmod(0o666)
    answer = _as_nobody(home.paths.socket)["answer"]
    assert isinstance(answer, dict) and answer["ok"] is False
    assert "permission denied" in str(answer["error"])
    for folder in folders:
        folder.chmod(0o700)
    assert home.status()["pid"] == home.agent_pid()  # still serving its own user


def test_garbage_on_the_socket_gets_an_error_not_a_crash(agent_home: Home) -> None:
    home = agent_home()
    home.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(home.paths.socket))
        reader = sock.makefile("rb")
        sock.sendall(b"not json\n")
        assert json.loads(reader.readline())["ok"] is False
        sock.sendall(b'{"op": "fly"}\n{"op": "add", "files": ["nope"]}\n{"op": "ping"}\n')
        answers = [json.loads(reader.readline()) for _ in range(3)]
    assert "unknown op" in answers[0]["error"]
    assert "not sha256" in answers[1]["error"]
    assert answers[2]["ok"] is True

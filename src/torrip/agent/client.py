"""Talking to the agent, and starting and stopping it.

    with connect(agent_paths(settings)) as client:     # or None: no agent answers
        client.call("status")["files_seeding"]
    started = start_agent(settings)                    # returns once it answers
    started.pid, started.already_running
    stop_agent(settings)                               # the pid stopped, or None

``start_agent`` runs ``python -m torrip agent run`` in a new session (detached
from the terminal), with the settings passed as TORRIP_* variables, and waits
until the agent answers on its socket. Two starts at once both return the same
agent: the second daemon finds the first one's lock and exits.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torrip.agent.paths import AgentPaths, agent_paths, ensure_private_dir
from torrip.agent.protocol import MAX_MESSAGE, AgentError, ProtocolError, decode, encode
from torrip.closing import Closing
from torrip.config import Settings
from torrip.errors import TorripError
from torrip.fsutil import flock_is_held
from torrip.transport.session import split_host_port

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no agent
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "AgentClient",
    "AgentPeer",
    "Started",
    "agent_environment",
    "connect",
    "lock_is_free",
    "ping",
    "read_pid",
    "running_agent_peer",
    "start_agent",
    "stop_agent",
]

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
_LOG_LIMIT = 1024 * 1024
# The settings the agent uses, passed to the daemon as their TORRIP_* variables.
_AGENT_SETTINGS = (
    "cache_dir",
    "timeout",
    "p2p",
    "dht_bootstrap",
    "trackers",
    "listen",
    "lan_discovery",
    "upload_rate",
    "download_rate",
    "seed",
    "seed_connections",
    "seed_torrents",
    "seed_quota",
    "seed_ratio",
    "seed_days",
)


class AgentClient(Closing):
    """One connection to the agent; requests are answered in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one request; its result, or AgentError with the agent's message."""
        try:
            self.sock.sendall(encode({"op": op, **arguments}))
            answer = decode(self._read_line())
        except OSError as error:
            raise AgentError(
                f"lost the connection to the agent: {error.strerror or error}",
                hint="`torrip agent status` tells whether it still runs.",
            ) from None
        if not answer.get("ok"):
            raise AgentError(str(answer.get("error", "the agent refused")), hint=answer.get("hint"))
        result = answer.get("result", {})
        if not isinstance(result, dict):
            raise ProtocolError("the agent's result is not an object")
        return result

    def _read_line(self) -> bytes:
        while b"\n" not in self._buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionResetError("the agent closed the connection")
            self._buffer += data
            if len(self._buffer) > MAX_MESSAGE:
                raise ProtocolError(f"the agent's answer exceeds {MAX_MESSAGE} bytes")
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        return line

    def close(self) -> None:
        self.sock.close()


def connect(paths: AgentPaths, *, timeout: float = 10.0) -> AgentClient | None:
    """A client of the running agent, or None when none answers (stale files are ignored)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(paths.socket))
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        sock.close()
        return None
    except OSError as error:
        sock.close()
        raise AgentError(
            f"cannot reach the agent at {paths.socket}: {error.strerror or error}",
            hint="Its folder must belong to you; set XDG_RUNTIME_DIR to a folder you own.",
        ) from None
    return AgentClient(sock)


def ping(paths: AgentPaths) -> dict[str, Any] | None:
    """The agent's pid, version and protocol; None when no agent answers."""
    with contextlib.suppress(AgentError):
        client = connect(paths, timeout=5.0)
        if client is not None:
            with client:
                return client.call("ping")
    return None


@dataclass(frozen=True)
class Started:
    pid: int
    already_running: bool
    paths: AgentPaths


def agent_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default os.environ) with the agent's settings as TORRIP_* variables."""
    env = dict(os.environ if base is None else base)
    for name in _AGENT_SETTINGS:
        value = getattr(settings, name)
        if isinstance(value, tuple):
            text = ",".join(value)
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = str(value)
        env["TORRIP_" + name.upper()] = text
    return env


def start_agent(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT,
) -> Started:
    """Start the agent unless one runs; returns once it answers (AgentError if it cannot).

    ``environ`` (default os.environ) is the environment the agent runs in, before the
    settings are added to it as TORRIP_* variables.
    """
    paths = agent_paths(settings, environ)
    running = ping(paths)
    if running is not None:
        return Started(int(running["pid"]), True, paths)
    ensure_private_dir(paths.run)
    paths.state.mkdir(parents=True, exist_ok=True)
    log = _open_log(paths.log_file)
    with log:
        process = subprocess.Popen(
            [sys.executable, "-m", "torrip", "agent", "run"],
            env=agent_environment(settings, environ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
            start_new_session=True,  # no terminal: a closed shell does not stop it
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = ping(paths)
        if answer is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0)  # reap it if it was a second daemon that found the first
            return Started(int(answer["pid"]), int(answer["pid"]) != process.pid, paths)
        code = process.poll()
        # Exited because another agent, started at the same moment, holds the lock: that
        # one answers shortly.
        if code is not None and code != 0 and not flock_is_held(paths.lock_file):
            raise AgentError(
                f"the agent exited with status {code} at start: {_tail(paths.log_file)}",
                hint=f"Its log is {paths.log_file}.",
            )
        time.sleep(0.05)
    raise AgentError(
        f"the agent did not answer within {timeout:g} s",
        hint=f"Its log is {paths.log_file}.",
    )


def stop_agent(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float = STOP_TIMEOUT,
) -> int | None:
    """Ask the agent to stop and wait until it has; its pid, or None if none ran."""
    paths = agent_paths(settings, environ)
    client = connect(paths)
    if client is None:
        return None
    with client:
        pid = int(client.call("stop")["pid"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The agent releases its lock last, once its state is written.
        if lock_is_free(paths) or not _alive(pid):
            return pid
        time.sleep(0.05)
    raise AgentError(
        f"the agent (pid {pid}) did not stop within {timeout:g} s",
        hint=f"kill {pid}",
    )


def read_pid(paths: AgentPaths) -> int | None:
    """The pid in the pid file, if any (it may be stale: check with ``ping``)."""
    try:
        return int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def lock_is_free(paths: AgentPaths) -> bool:
    """Whether no agent holds this user's agent lock (so files left in the folder are stale)."""
    if fcntl is None:  # pragma: no cover
        return ping(paths) is None
    return not flock_is_held(paths.lock_file)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # our own child (tests): reap it
        if done:
            return False
    return True


def _open_log(path: Path) -> Any:
    with contextlib.suppress(OSError):
        if path.stat().st_size > _LOG_LIMIT:
            path.unlink()
    return path.open("ab")


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " / ".join(text[-lines:]) or "(empty log)"


@dataclass(frozen=True)
class AgentPeer:
    """The user's running agent as a peer: where it listens, and what it seeds."""

    endpoints: tuple[tuple[str, int], ...]
    seeding: frozenset[str]  # sha256 of the files it serves now


def running_agent_peer(settings: Settings) -> AgentPeer | None:
    """The user's seeding agent, if one runs and answers: installs connect their swarm
    downloads of the files it seeds to it, and start their DHT lookups from it."""
    try:
        client = connect(agent_paths(settings), timeout=2.0)
        if client is None:
            return None
        with client:
            status = client.call("status")
            files = client.call("list").get("files", [])
    except (AgentError, TorripError, OSError, ValueError):
        return None  # an agent that does not answer well is no source; the install goes on
    endpoints = []
    for text in status.get("listen", []):
        try:
            host, port = split_host_port(str(text))
        except ValueError:
            continue
        # An agent listening on every address is reached on loopback.
        endpoints.append(("127.0.0.1" if host in ("0.0.0.0", "::") else host, port))
    seeding = frozenset(
        str(row.get("sha256"))
        for row in files
        if isinstance(row, dict) and row.get("state") == "seeding"
    )
    return AgentPeer(tuple(endpoints), seeding) if endpoints else None

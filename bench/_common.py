"""Helpers shared by the benchmark scripts: tool paths, clean environments, timed runs."""

from __future__ import annotations

import atexit
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
TOOLS_DIR = BENCH_DIR / ".venv-tools"
DEFAULT_TORRIP = REPO_DIR / ".venv" / "bin" / "torrip"
DEFAULT_PIP = TOOLS_DIR / "bin" / "pip"
DEFAULT_UV = TOOLS_DIR / "bin" / "uv"
# pip >= 26.1 no longer runs on Python 3.9, and ``pip --python`` runs pip *on* the target.
# A venv of 3.9 holding the newest pip that still supports it serves older targets.
LEGACY_PIP = TOOLS_DIR / "py39" / "bin" / "pip"

SETUP_HINT = f"""\
Set up the tools (once):
  python3.11 -m venv {TOOLS_DIR}
  PIP_CONFIG_FILE=/dev/null {TOOLS_DIR}/bin/python -m pip install -U pip uv packaging
  /root/.pyenv/versions/3.9.18/bin/python -m venv {TOOLS_DIR}/py39
  PIP_CONFIG_FILE=/dev/null {TOOLS_DIR}/py39/bin/python -m pip install -U pip"""


# This machine's shell sets PYTHONDONTWRITEBYTECODE, which a user's does not: torrip (an
# editable install) would compile its own source at every start, 0.1 s a run.
_MACHINE_QUIRKS = frozenset({"VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"})
_compiled = False


_runtime_dir: str | None = None


def _private_runtime_dir() -> str:
    global _runtime_dir
    if _runtime_dir is None:
        _runtime_dir = tempfile.mkdtemp(prefix="torrip-bench-run-")  # mode 0700
        atexit.register(shutil.rmtree, _runtime_dir, True)
        atexit.register(stop_warm_start_servers, Path(_runtime_dir))  # runs first
    return _runtime_dir


def warm_start_torrip(torrip: Path, env: Mapping[str, str], timeout: float = 30) -> bool:
    """Leave torrip's warm-start server running (docs/warm-start.md) before torrip is
    timed, as it is for every command but a user's first in ten minutes. False if the
    setting or the platform leaves none."""
    run([torrip, "cache", "dir"], env, timeout)
    folder = Path(env["XDG_RUNTIME_DIR"]) / "torrip"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(folder.glob("warm-*.sock")):
            time.sleep(0.3)  # its imports are done when it listens; let the machine settle
            return True
        time.sleep(0.05)
    return False


def stop_warm_start_servers(runtime_dir: Path) -> None:
    for lock in (runtime_dir / "torrip").glob("warm-*.lock"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(lock.read_text().strip()), signal.SIGTERM)


def _compile_torrip_once() -> None:
    """Byte-compile torrip's source, as installing it from a wheel would."""
    global _compiled
    python = REPO_DIR / ".venv" / "bin" / "python"
    if not _compiled and python.exists():
        subprocess.run(
            [python, "-m", "compileall", "-q", REPO_DIR / "src" / "torrip"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        _compiled = True


def clean_env(tool: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with every setting of pip, uv and torrip removed, then the tool's own.

    The machine's pip configuration (config files, find-links, constraints) would otherwise
    change what pip resolves.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "TORRIP_")) and k not in _MACHINE_QUIRKS
    }
    if tool == "pip":
        env["PIP_CONFIG_FILE"] = os.devnull
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    elif tool == "uv":
        env["UV_NO_CONFIG"] = "1"
    elif tool == "torrip":
        env["TORRIP_CONFIG_FILE"] = "/nonexistent/torrip-config.toml"
        # A benchmark measures installs; it leaves no seeding agent behind (fleet opts in).
        env["TORRIP_SEED"] = "never"
        # Network rules: no public DHT routers, no multicast. A benchmark that wants peers
        # names its own loopback DHT or tracker (extra).
        env["TORRIP_DHT_BOOTSTRAP"] = ""
        env["TORRIP_LAN_DISCOVERY"] = "0"
        # A seeding agent the user runs would join every install as a peer: the runtime
        # folder where torrip finds it is the benchmark's own (fleet sets one per home).
        env["XDG_RUNTIME_DIR"] = _private_runtime_dir()
        _compile_torrip_once()
    env.update(extra or {})
    return env


@dataclass
class Result:
    seconds: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def start(cmd: Sequence[str | Path], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start ``cmd`` in its own process group (so a timeout also ends its children)."""
    return subprocess.Popen(
        [str(c) for c in cmd],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], started: float, timeout: float) -> Result:
    """Wait for ``proc`` up to ``timeout`` seconds after ``started``; kill it on expiry."""
    try:
        out, err = proc.communicate(timeout=max(0.1, started + timeout - time.perf_counter()))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return Result(
            time.perf_counter() - started, -9, out, err + f"\n[timed out after {timeout}s]"
        )
    return Result(time.perf_counter() - started, proc.returncode, out, err)


def run(cmd: Sequence[str | Path], env: Mapping[str, str], timeout: float) -> Result:
    started = time.perf_counter()
    return finish(start(cmd, env), started, timeout)


def make_venv(python: str | Path, dest: Path, timeout: float = 120) -> Path:
    """An empty venv (no pip) of ``python`` at ``dest``; returns its interpreter."""
    res = run([python, "-m", "venv", "--without-pip", dest], clean_env("none"), timeout)
    if not res.ok:
        sys.exit(f"cannot create a venv of {python}: {res.stderr.strip()}")
    return dest / "bin" / "python"


def python_version(python: str | Path) -> tuple[int, int]:
    res = run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"], clean_env("none"), timeout=60
    )
    if not res.ok:
        sys.exit(f"cannot run {python}: {res.stderr.strip()}")
    major, minor = res.stdout.split()
    return int(major), int(minor)


def tool_version(cmd: Sequence[str | Path], tool: str) -> str:
    res = run([*cmd, "--version"], clean_env(tool), timeout=60)
    return (res.stdout or res.stderr).strip().splitlines()[0] if res.ok else "unknown"


def require(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        sys.exit(f"missing: {', '.join(missing)}\n{SETUP_HINT}")


def git_state() -> str:
    res = run(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"], clean_env("none"), 30)
    head = res.stdout.strip() if res.ok else "unknown"
    dirty = run(["git", "-C", REPO_DIR, "status", "--porcelain", "src"], clean_env("none"), 30)
    return head + (" (+ uncommitted changes in src/)" if dirty.stdout.strip() else "")


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"

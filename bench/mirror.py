"""A local mirror for the index benchmarks: real wheels, a built index, nginx and torrip serving it.

    wheels = fetch_wheels(["flask", "requests"], MIRROR_DIR / "wheels")
    build_tree(wheels, MIRROR_DIR / "public")                   # relative URLs
    with Nginx(MIRROR_DIR / "public", MIRROR_DIR / "nginx") as nginx, TorripServe(...) as ts:
        nginx.url, ts.url                                        # http://127.0.0.1:PORT/simple/

Everything listens on 127.0.0.1 only. The servers run in their own process groups and are
stopped (TERM, then KILL) when the ``with`` block ends, also on an error.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import _common as c

MIRROR_DIR = c.BENCH_DIR / ".mirror"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
DOC = c.REPO_DIR / "docs" / "torrent-index.md"
DEFAULT_REQS = ["flask", "requests", "httpx", "rich", "black", "fastapi"]
# The interpreter the wheels are fetched for and the benchmark venvs are made of.
DEFAULT_TARGET_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch_wheels(
    reqs: list[str], dest: Path, pip: Path = c.DEFAULT_PIP, python_version: str = "3.11"
) -> list[Path]:
    """``pip download`` the wheels of ``reqs`` (and their dependencies) from PyPI into ``dest``.

    Wheels only, for CPython ``python_version`` on this machine's platform; clean pip settings.
    Files already in ``dest`` are kept (pip skips what it already has).
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd: list[str | Path] = [pip, "download", "--only-binary", ":all:", "--no-cache-dir"]
    cmd += ["--python-version", python_version, "--dest", dest, *reqs]
    res = c.run(cmd, c.clean_env("pip"), timeout=600)
    if not res.ok:
        raise SystemExit(f"pip download failed:\n{res.stderr[-3000:]}")
    return sorted(dest.glob("*.whl"))


def build_tree(
    wheels_dir: Path, out: Path, base_url: str | None = None, torrip: Path = c.DEFAULT_TORRIP
) -> c.Result:
    """``torrip index build wheels_dir out [--base-url URL]``; exits on failure."""
    cmd: list[str | Path] = [torrip, "index", "build", wheels_dir, out]
    if base_url:
        cmd += ["--base-url", base_url]
    res = c.run(cmd, c.clean_env("torrip"), timeout=600)
    if not res.ok:
        raise SystemExit(f"torrip index build failed:\n{res.stdout}{res.stderr}")
    return res


def documented_server_block(root: Path, port: int) -> str:
    """The nginx ``server`` block of docs/torrent-index.md, listening on 127.0.0.1:port."""
    match = re.search(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    if not match:
        raise SystemExit(f"{DOC} has no nginx block")
    block = match.group(1)
    if "listen 80;" not in block or "root /srv/pkgs/public;" not in block:
        raise SystemExit(f"the nginx block of {DOC} changed; update bench/mirror.py")
    return block.replace("listen 80;", f"listen 127.0.0.1:{port};").replace(
        "root /srv/pkgs/public;", f"root {root.resolve()};"
    )


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace") if log.exists() else ""
                raise SystemExit(f"{what} did not start on port {port}:\n{text}") from None
            time.sleep(0.05)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its reaped children, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class _Server:
    """A server process in its own process group, stopped on exit."""

    name = "server"

    def __init__(self, root: Path, state: Path, port: int | None = None) -> None:
        self.root = root
        self.state = state
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = state / f"{self.name}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        return f"{self.base_url}simple/"

    def command(self) -> list[str]:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """The server's processes (for CPU accounting)."""
        assert self.proc is not None
        pids = [self.proc.pid]
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            pids += [int(p) for p in children.split()]
        return pids

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def __enter__(self) -> _Server:
        self.state.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                env=c.clean_env("torrip"),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_listening(self.port, self.proc, self.name, self.log)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


class Nginx(_Server):
    """nginx with the documented server block; ``workers`` worker processes (1 = one core)."""

    name = "nginx"

    def __init__(self, root: Path, state: Path, port: int | None = None, workers: int = 1) -> None:
        super().__init__(root, state, port)
        self.workers = workers

    def command(self) -> list[str]:
        if NGINX is None:
            raise SystemExit("nginx is not installed (apt-get install nginx)")
        temp_paths = "".join(
            f"    {kind}_temp_path {self.state / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        config = self.state / "nginx.conf"
        config.write_text(
            f"daemon off;\nworker_processes {self.workers};\n"
            f"pid {self.state / 'nginx.pid'};\nerror_log {self.log};\n"
            "events { worker_connections 1024; }\n"
            "http {\n    access_log off;\n    sendfile on;\n"
            f"{temp_paths}{documented_server_block(self.root, self.port)}}}\n",
            encoding="utf-8",
        )
        return [NGINX, "-c", str(config), "-p", str(self.state), "-e", str(self.log)]


class TorripServe(_Server):
    """``torrip index serve ROOT --port PORT`` (the CLI, as a user runs it).

    With ``backlog``, instead the same server (``IndexServer.serve_forever``) with its listen
    backlog set to ``backlog`` (socketserver's default, which torrip keeps, is 5): a what-if
    for a fix, run from a throwaway ``python -c``; src/ is not changed. With ``cpu``, the
    server runs pinned to that CPU (``taskset -c``): a what-if for its threads' GIL contention.
    """

    name = "torrip-serve"

    def __init__(
        self,
        root: Path,
        state: Path,
        port: int | None = None,
        torrip: Path = c.DEFAULT_TORRIP,
        backlog: int | None = None,
        cpu: int | None = None,
    ) -> None:
        if backlog is not None:
            self.name = f"torrip-serve-backlog{backlog}"
        if cpu is not None:
            self.name += f"-cpu{cpu}"
        super().__init__(root, state, port)
        self.torrip = torrip
        self.backlog = backlog
        self.cpu = cpu

    def command(self) -> list[str]:
        pin = [] if self.cpu is None else ["taskset", "-c", str(self.cpu)]
        if self.backlog is None:
            serve = ["index", "serve", str(self.root), "--port", str(self.port)]
            return [*pin, str(self.torrip), *serve]
        code = (
            "import sys; from pathlib import Path; from torrip.indexserver import serve; "
            "serve._Server.request_queue_size = int(sys.argv[3]); "
            "serve.IndexServer(Path(sys.argv[1]), port=int(sys.argv[2])).serve_forever()"
        )
        python = self.torrip.parent / "python"
        args = [str(self.root), str(self.port), str(self.backlog)]
        return [*pin, str(python), "-c", code, *args]


def nginx_version() -> str:
    if NGINX is None:
        return "not installed"
    res = c.run([NGINX, "-v"], c.clean_env("none"), timeout=30)
    return (res.stderr or res.stdout).strip().removeprefix("nginx version: ")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat), to spot other work."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])

"""Fleet benchmark (issue 6): 8 user homes install the same set; their agents keep seeding.

    bench/.venv-tools/bin/python bench/install.py download        # once: the wheels
    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/fleet.py --json OUT'

One machine, ``--homes`` user homes (own HOME, XDG folders, cache, run folder, agent).
They install ``pandas scipy scikit-learn matplotlib`` one after another, each into a
fresh venv, from a local origin: nginx serving ``torrip index build`` of the wheels in
bench/.mirror-install/dists (so the index carries torrents), with the documented
configuration and an access log of the bytes it sent. Every home runs with
``seed = always``, so each install leaves its agent seeding. Peers are found through a
tracker run here (``--peers tracker``, the default: every session announces to it, as
the ``trackers`` setting says) or a loopback DHT (``--peers dht``: two bootstrap nodes
run here; every session joins it).

The origin's own count is the headline: the bytes nginx sent, in total and for wheels,
against what pip or uv would pull (the wheels, once per home). Target: at most 1.5x the
payload for all homes together.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import _common as c
import mirror
from agent_footprint import dht_nodes

REQS = ["pandas", "scipy", "scikit-learn", "matplotlib"]
DISTS = c.BENCH_DIR / ".mirror-install" / "dists"
WORK = c.BENCH_DIR / ".fleet"
TARGET_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python"
TORRIP = c.REPO_DIR / ".venv" / "bin" / "torrip"


def log(text: str) -> None:
    print(text, flush=True)


@dataclass
class Step:
    home: int
    seconds: float
    ok: bool
    files: int
    payload: int  # bytes of the wheels installed
    report_origin: int  # what torrip's report says came from the origin
    report_peers: int
    origin_total: int  # what nginx sent during this install
    origin_wheels: int
    origin_torrents: int
    origin_other: int  # pages and metadata


@contextlib.contextmanager
def origin(root: Path, port: int, state: Path) -> Iterator[Path]:
    """nginx with the documented server block and an access log of bytes sent; yields the log."""
    if mirror.NGINX is None:
        sys.exit("nginx is not installed")
    state.mkdir(parents=True, exist_ok=True)
    access = state / "access.log"
    access.write_text("")
    temp_paths = "".join(
        f"    {kind}_temp_path {state / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = state / "nginx.conf"
    config.write_text(
        f"daemon off;\nworker_processes 2;\npid {state / 'nginx.pid'};\n"
        f"error_log {state / 'error.log'};\nevents {{ worker_connections 1024; }}\n"
        "http {\n    log_format sent '$uri $status $body_bytes_sent';\n"
        f"    access_log {access} sent;\n    sendfile on;\n"
        f"{temp_paths}{mirror.documented_server_block(root, port)}}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [mirror.NGINX, "-c", str(config), "-p", str(state)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        mirror._wait_listening(port, process, "nginx", state / "error.log")
        yield access
    finally:
        process.terminate()
        process.wait(timeout=10)


class Tracker:
    """A minimal HTTP tracker (BEP 3 with compact peers) on 127.0.0.1."""

    def __init__(self) -> None:
        self.peers: dict[bytes, set[tuple[str, int]]] = {}
        self.announces = 0
        self.lock = threading.Lock()
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(
                    urllib.parse.urlsplit(self.path).query, encoding="latin-1"
                )
                info_hash = query.get("info_hash", [""])[0].encode("latin-1")
                peer = (self.client_address[0], int(query.get("port", ["0"])[0]))
                body = tracker.announce(info_hash, peer, query.get("event", [""])[0])
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            # socketserver's backlog of 5 drops bursts of announces (the SYN is retried
            # after a second): every torrent of an install announces at once.
            request_queue_size = socket.SOMAXCONN

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/announce"

    def announce(self, info_hash: bytes, peer: tuple[str, int], event: str) -> bytes:
        from torrip.transport import bencode

        with self.lock:
            self.announces += 1
            known = self.peers.setdefault(info_hash, set())
            others = [p for p in known if p != peer]
            if event == "stopped":
                known.discard(peer)
            else:
                known.add(peer)
        compact = b"".join(socket.inet_aton(ip) + port.to_bytes(2, "big") for ip, port in others)
        return bencode.encode({"interval": 60, "peers": compact})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def read_log(access: Path, offset: int) -> tuple[dict[str, int], int]:
    """Bytes nginx sent since ``offset`` by kind; and the new offset."""
    with access.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    sent = {"wheels": 0, "torrents": 0, "other": 0}
    for line in data.decode().splitlines():
        uri, _status, count = line.rsplit(" ", 2)
        kind = (
            "wheels"
            if uri.endswith(".whl")
            else "torrents"
            if uri.endswith(".torrent")
            else "other"
        )
        sent[kind] += int(count)
    return sent, offset + len(data)


def home_env(root: Path, dht: str, trackers: str) -> dict[str, str]:
    run = root / "run"
    run.mkdir(mode=0o700, parents=True)
    env = c.clean_env("torrip")
    env.pop("CI", None)
    env.update(
        HOME=str(root / "home"),
        XDG_RUNTIME_DIR=str(run),
        XDG_CACHE_HOME=str(root / "xdg-cache"),
        XDG_CONFIG_HOME=str(root / "xdg-config"),
        XDG_STATE_HOME=str(root / "xdg-state"),
        TORRIP_CACHE_DIR=str(root / "cache"),
        TORRIP_LISTEN="127.0.0.1:0",
        TORRIP_DHT_BOOTSTRAP=dht,
        TORRIP_TRACKERS=trackers,
        TORRIP_LAN_DISCOVERY="0",
        TORRIP_SEED="always",
    )
    return env


def install(
    home: int, root: Path, env: dict[str, str], index: str, timeout: float, logs: Path | None
) -> Any:
    venv = c.make_venv(TARGET_PYTHON, root / "venv")
    report = root / "report.json"
    cmd = [TORRIP, "install", "--index-url", index, "--python", venv, "--report", report, *REQS]
    if logs is not None:
        cmd.insert(2, "-v")
    result = c.run(cmd, env, timeout)
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"home-{home}.log").write_text(result.stdout + result.stderr)
    if not result.ok:
        log(f"home {home}: install failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result, None
    return result, json.loads(report.read_text())


def wait_for_agent(env: dict[str, str], timeout: float = 60) -> dict[str, Any]:
    """The home's agent status once it has made and added every torrent (or {} if none runs).

    Back to back, the next install would otherwise compete for the CPU with this agent
    hashing the files it was just handed; the scenario is installs one after another.
    """
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        done = c.run([TORRIP, "agent", "status", "--json"], env, 30)
        if done.returncode != 0:
            return {}
        status = json.loads(done.stdout)
        if status["files_pending"] == 0:
            return status
        time.sleep(0.2)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, default=8)
    parser.add_argument("--port", type=int, default=18611)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--peers", choices=("tracker", "dht", "both"), default="tracker")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds between one home's agent being ready and the next install (default 0)",
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--logs", type=Path, help="keep each install's -v output here")
    args = parser.parse_args()
    if not any(DISTS.glob("*.whl")):
        sys.exit(f"no wheels in {DISTS}: run `bench/install.py download` first")

    public = WORK / "public"
    shutil.rmtree(public, ignore_errors=True)
    base = f"http://127.0.0.1:{args.port}/"
    built = c.run(
        [TORRIP, "index", "build", "-q", "--base-url", base, DISTS, public],
        c.clean_env("torrip"),
        900,
    )
    if not built.ok:
        sys.exit(f"torrip index build failed: {built.stderr}")
    nodes: list[Any] = []
    tracker: Tracker | None = None
    dht = ""
    if args.peers in ("dht", "both"):
        nodes, dht = dht_nodes()
    if args.peers in ("tracker", "both"):
        tracker = Tracker()
    homes_dir = Path(tempfile.mkdtemp(prefix="tfleet-", dir="/tmp"))
    envs: list[dict[str, str]] = []
    steps: list[Step] = []
    try:
        with origin(public, args.port, WORK / "nginx") as access:
            offset = 0
            index = f"{base}simple/"
            for number in range(1, args.homes + 1):
                root = homes_dir / f"h{number}"
                env = home_env(root, dht, tracker.url if tracker else "")
                envs.append(env)
                started = time.perf_counter()
                result, report = install(number, root, env, index, args.timeout, args.logs)
                seconds = time.perf_counter() - started
                time.sleep(0.5)  # let nginx log the last responses
                sent, offset = read_log(access, offset)
                items = report["install"] if report else []
                step = Step(
                    home=number,
                    seconds=round(seconds, 2),
                    ok=result.ok,
                    files=len(items),
                    payload=sum(item["torrip"]["size"] for item in items),
                    report_origin=sum(item["torrip"]["bytes"]["origin"] for item in items),
                    report_peers=sum(item["torrip"]["bytes"]["peers"] for item in items),
                    origin_total=sum(sent.values()),
                    origin_wheels=sent["wheels"],
                    origin_torrents=sent["torrents"],
                    origin_other=sent["other"],
                )
                steps.append(step)
                settled = wait_for_agent(env)
                time.sleep(args.settle)  # the time between two users' installs
                log(
                    f"home {number}: {'ok' if step.ok else 'FAILED'} in {step.seconds:.1f}s, "
                    f"{step.files} files, {step.payload / 1e6:.1f} MB; origin sent "
                    f"{step.origin_total / 1e6:.2f} MB (wheels {step.origin_wheels / 1e6:.2f}); "
                    f"report: origin {step.report_origin / 1e6:.2f} MB, "
                    f"peers {step.report_peers / 1e6:.2f} MB; its agent seeds "
                    f"{settled.get('files_seeding', 0)} files"
                )
    finally:
        for env in envs:
            c.run([TORRIP, "agent", "stop"], env, 60)
        for node in nodes:
            node.pause()
        if tracker is not None:
            tracker.stop()
        shutil.rmtree(homes_dir, ignore_errors=True)

    payload = steps[0].payload if steps else 0
    total = sum(step.origin_total for step in steps)
    wheels = sum(step.origin_wheels for step in steps)
    summary = {
        "benchmark": "fleet",
        "machine": c.machine(),
        "git": c.git_state(),
        "homes": args.homes,
        "requirements": REQS,
        "peers_through": args.peers,
        "payload_bytes": payload,
        "pip_uv_bytes": payload * len(steps),
        "origin_bytes": total,
        "origin_wheel_bytes": wheels,
        "origin_over_payload": round(total / payload, 3) if payload else None,
        "steps": [asdict(step) for step in steps],
    }
    log(
        f"origin sent {total / 1e6:.1f} MB in total ({wheels / 1e6:.1f} MB of wheels) for "
        f"{len(steps)} homes; pip or uv would pull {payload * len(steps) / 1e6:.1f} MB; "
        f"{summary['origin_over_payload']}x the payload ({payload / 1e6:.1f} MB)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all(step.ok for step in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())

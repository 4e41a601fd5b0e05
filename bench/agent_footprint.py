"""Agent footprint (issue 6): the seeding agent with 1,000 cached files.

    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/agent_footprint.py --json OUT'

Makes a private home with a cache of ``--files`` small files (random bytes, their recipe
torrents kept beside them, as after real installs), then measures the real CLI:

- start time: ``torrip agent start`` until it returns (the agent answers), and until
  every file is seeding;
- resident memory (VmRSS, and the peak VmHWM) of the agent once everything is seeding;
- idle CPU: the agent's user + system time over ``--idle`` seconds with no peers, as a
  share of one core.

Everything listens on 127.0.0.1. With ``--dht`` (the default) the agent joins a loopback
DHT of one node run here, so it announces all its files, as it would on the internet.
Targets: under 150 MB, under 2% of a core, under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c

# The benchmark runs on torrip's own venv: it needs torrip and libtorrent in-process.
sys.path.insert(0, str(c.REPO_DIR / "src"))

from torrip.agent.client import connect
from torrip.agent.paths import agent_paths
from torrip.cache import DistributionCache, sha256_of
from torrip.config import load_settings
from torrip.transport.recipe import make_torrent

TORRIP = [sys.executable, "-m", "torrip"]


def log(text: str) -> None:
    print(text, flush=True)


def make_cache(cache_dir: Path, count: int, min_size: int, max_size: int) -> int:
    """``count`` files with torrents in a fresh cache; returns their total size."""
    cache = DistributionCache(cache_dir)
    rng = random.Random(6)
    total = 0
    for number in range(count):
        size = rng.randint(min_size, max_size)
        temp = cache.temp_dir() / "bench"
        temp.write_bytes(rng.randbytes(size))
        sha256 = sha256_of(temp)
        path = cache.add_file(temp, sha256, f"pkg{number:04d}-1.0-py3-none-any.whl")
        cache.add_torrent(sha256, make_torrent(path).data)
        total += size
    return total


def dht_nodes() -> tuple[list[Any], str]:
    """Two linked libtorrent DHT nodes on loopback, and the address of the first.

    libtorrent keeps its bootstrap nodes out of its routing table, so a DHT of one
    node would leave the agent with none; the second one fills it.
    """
    import libtorrent as lt

    sessions = []
    for _ in range(2):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sessions.append(
            lt.session(
                {
                    "listen_interfaces": f"127.0.0.1:{port}",
                    "enable_dht": True,
                    "dht_bootstrap_nodes": "",
                    "enable_lsd": False,
                    "enable_upnp": False,
                    "enable_natpmp": False,
                    "dht_restrict_routing_ips": False,
                    "dht_restrict_search_ips": False,
                    "dht_ignore_dark_internet": False,
                    "dht_prefer_verified_node_ids": False,
                    "allow_multiple_connections_per_ip": True,
                    "dht_block_ratelimit": 10_000,  # everyone here is 127.0.0.1
                    "alert_mask": 0,
                }
            )
        )
    first, second = sessions
    first.add_dht_node(("127.0.0.1", second.listen_port()))
    second.add_dht_node(("127.0.0.1", first.listen_port()))
    return sessions, f"127.0.0.1:{first.listen_port()}"


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def time_start(env: dict[str, str], paths: Any, files: int) -> float:
    """Seconds from `torrip agent start` until all ``files`` are seeding."""
    started = time.perf_counter()
    subprocess.run([*TORRIP, "agent", "start"], env=env, check=True, capture_output=True)
    client = connect(paths)
    assert client is not None
    with client:
        while True:
            status = client.call("status")
            if status["files_seeding"] == files and status["files_pending"] == 0:
                return time.perf_counter() - started
            if time.perf_counter() - started > 120:
                sys.exit(f"not all files seeding after 120 s: {status}")
            time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--min-size", type=int, default=20_000)
    parser.add_argument("--max-size", type=int, default=400_000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU sampling")
    parser.add_argument("--no-dht", dest="dht", action="store_false")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tfoot-", dir="/tmp"))
    nodes: list[Any] = []
    try:
        run = root / "run"
        run.mkdir(mode=0o700)
        env = c.clean_env("torrip")
        env.pop("CI", None)
        env.update(
            HOME=str(root / "home"),
            XDG_RUNTIME_DIR=str(run),
            TORRIP_CACHE_DIR=str(root / "cache"),
            TORRIP_LISTEN="127.0.0.1:0",
            TORRIP_DHT_BOOTSTRAP="",
            TORRIP_LAN_DISCOVERY="0",
            TORRIP_SEED_TORRENTS="0",
        )
        if args.dht:
            nodes, address = dht_nodes()
            env["TORRIP_DHT_BOOTSTRAP"] = address
        made = time.perf_counter()
        total = make_cache(root / "cache", args.files, args.min_size, args.max_size)
        log(f"cache: {args.files} files, {total / 1e6:.1f} MB ({time.perf_counter() - made:.1f}s)")
        settings = load_settings(environ=env)
        paths = agent_paths(settings, env)

        subprocess.run(["sync"], check=False)
        started = time.perf_counter()
        subprocess.run([*TORRIP, "agent", "start"], env=env, check=True, capture_output=True)
        answered = time.perf_counter() - started
        client = connect(paths)
        assert client is not None
        with client:
            while True:
                status = client.call("status")
                if status["files_seeding"] == args.files and status["files_pending"] == 0:
                    break
                if time.perf_counter() - started > 120:
                    sys.exit(f"not all files seeding after 120 s: {status}")
                time.sleep(0.02)
            all_seeding = time.perf_counter() - started
            pid = int(status["pid"])
            log(
                f"start: answers after {answered:.2f}s, all {args.files} seeding after "
                f"{all_seeding:.2f}s"
            )
            time.sleep(3)  # let the first announces and state write settle
            memory_busy = proc_status(pid)
            cpu_before = cpu_seconds(pid)
            wall_before = time.perf_counter()
            time.sleep(args.idle)
            idle_cpu = (cpu_seconds(pid) - cpu_before) / (time.perf_counter() - wall_before)
            memory = proc_status(pid)
            status = client.call("status")
        log(
            f"memory: {memory['VmRSS'] / 1024:.1f} MB resident, "
            f"peak {memory['VmHWM'] / 1024:.1f} MB"
        )
        log(
            f"idle CPU over {args.idle:.0f}s: {idle_cpu * 100:.2f}% of one core "
            f"({threads(pid)} threads, {status['dht_nodes']} DHT nodes)"
        )
        subprocess.run([*TORRIP, "agent", "stop"], env=env, check=True, capture_output=True)
        restart = time_start(env, paths, args.files)
        log(f"restart (state kept): all {args.files} seeding after {restart:.2f}s")
        subprocess.run([*TORRIP, "agent", "stop"], env=env, check=True, capture_output=True)
        results = {
            "benchmark": "agent footprint",
            "machine": c.machine(),
            "git": c.git_state(),
            "files": args.files,
            "cache_bytes": total,
            "dht": args.dht,
            "start_answers_seconds": round(answered, 3),
            "start_all_seeding_seconds": round(all_seeding, 3),
            "restart_all_seeding_seconds": round(restart, 3),
            "rss_mb": round(memory["VmRSS"] / 1024, 1),
            "rss_peak_mb": round(memory["VmHWM"] / 1024, 1),
            "rss_after_start_mb": round(memory_busy["VmRSS"] / 1024, 1),
            "idle_seconds": args.idle,
            "idle_cpu_percent_of_core": round(idle_cpu * 100, 3),
            "dht_nodes": status["dht_nodes"],
        }
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0
    finally:
        env_stop = {**os.environ, "XDG_RUNTIME_DIR": str(root / "run")}
        subprocess.run(
            [*TORRIP, "agent", "stop", "--cache-dir", str(root / "cache")],
            env=env_stop,
            capture_output=True,
            check=False,
        )
        for node in nodes:
            node.pause()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())

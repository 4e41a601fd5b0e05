"""Throughput of ``torrip index serve`` against nginx on the same built tree of real wheels.

    bench/.venv-tools/bin/python bench/index_serve.py [--duration 15] [--clients 50] \
        [--rounds 2] [--torrip-backlog 128] [--torrip-cpu 1] [--json OUT]

The tree is bench/.mirror/public (built from bench/.mirror/wheels; run bench/index_install.py
first, which fetches the wheels). The servers serve it at once, nginx with the server block of
docs/torrent-index.md (``--nginx-workers`` worker processes, default 1), torrip with
``torrip index serve`` (and what-ifs: with ``--torrip-backlog N`` the same server with a
listen backlog of N instead of socketserver's 5; with ``--torrip-cpu N`` the server pinned to
CPU N with ``taskset``). For each scenario and server in turn,
``--clients`` HTTP/1.1 clients (spread over ``--processes`` client processes, each an asyncio
loop) request paths drawn at random (fixed seeds) until ``--duration`` seconds pass or
``--max-requests`` requests are made, whichever comes first:

- ``wheels``: the wheel files, each equally likely (5 KB to 2.2 MB, three of 1.2-2.2 MB),
  keep-alive connections;
- ``small``: project pages (``Accept: application/vnd.pypi.simple.v1+json``), ``.metadata``
  and ``.torrent`` files, each equally likely (0.3-144 KB, mean 6 KB), keep-alive;
- ``new-conn``: the same small files, a new connection for every request.

Each answer is checked: status 200, the body's length, and the sha256 of the first body of
each path in each process; anything else is an error. Rates count the answers received before
the end; an answer still under way then may finish within 10 s ("late": in the latencies, not
in the rates), after which it is given up (an error). Latency runs from sending the request
(or from the connect, for ``new-conn``) to the last body byte. Each measurement is preceded
by a warm-up (as many requests as paths, one client). The clients share the machine's cores
with the servers, so the clients' CPU time is reported next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import multiprocessing
import multiprocessing.pool
import random
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import _common as c
import mirror as m

JSON_PAGE = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class Target:
    path: str
    accept: str
    size: int
    sha256: str


def scenario_targets(tree: Path, scenario: str) -> list[Target]:
    files = tree / "files"

    def target(path: str, file: Path, accept: str = "*/*") -> Target:
        data = file.read_bytes()
        return Target(path, accept, len(data), hashlib.sha256(data).hexdigest())

    if scenario == "wheels":
        return [target(f"/files/{w.name}", w) for w in sorted(files.glob("*.whl"))]
    targets = []
    for page in sorted((tree / "simple").glob("*/index.json")):
        targets.append(target(f"/simple/{page.parent.name}/", page, JSON_PAGE))
    for extra in sorted(files.glob("*.metadata")) + sorted(files.glob("*.torrent")):
        targets.append(target(f"/files/{extra.name}", extra))
    return targets


# A request still unanswered this long after the end of a measurement is given up (an error).
GRACE_SECONDS = 10.0


@dataclass
class WorkerResult:
    requests: int = 0  # answered correctly by the end of the measurement
    bytes: int = 0  # their bodies
    late: int = 0  # answered correctly after the end (in the grace period): not in the rates
    latencies: list[float] = field(default_factory=list)  # of all answered correctly
    connect_times: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str = ""
    last_done: float = 0.0  # when the last request counted in the rates was answered
    cpu_seconds: float = 0.0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if not self.first_error:
            self.first_error = f"{kind}: {detail}"


class _Connection:
    """One client connection: requests one at a time, reconnecting when needed."""

    def __init__(self, port: int, new_connections: bool, result: WorkerResult) -> None:
        self.port = port
        self.new_connections = new_connections
        self.result = result
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, target: Target) -> tuple[int, bytes, float]:
        """Status, body and latency (including the connect when each request has its own)."""
        started = time.perf_counter()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.port, limit=1 << 20
            )
            self.result.connect_times.append(time.perf_counter() - started)
            if not self.new_connections:
                started = time.perf_counter()
        assert self.reader is not None
        keep_alive = "close" if self.new_connections else "keep-alive"
        self.writer.write(
            f"GET {target.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Accept: {target.accept}\r\nUser-Agent: torrip-bench\r\n"
            f"Connection: {keep_alive}\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise ValueError(f"no Content-Length ({headers})")
        body = await self.reader.readexactly(int(headers["content-length"]))
        elapsed = time.perf_counter() - started
        if self.new_connections or headers.get("connection", "").lower() == "close":
            self.close()
        return status, body, elapsed


async def _client(
    connection: _Connection,
    targets: list[Target],
    rng: random.Random,
    deadline: float,
    budget: list[int],
    verified: set[str],
) -> None:
    result = connection.result
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        target = targets[rng.randrange(len(targets))]
        try:
            status, body, elapsed = await asyncio.wait_for(
                connection.get(target), timeout=deadline + GRACE_SECONDS - time.perf_counter()
            )
        except TimeoutError:
            result.error("no answer by the end + grace", target.path)
            connection.close()
            return
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            result.error(type(e).__name__, f"{target.path}: {e}")
            connection.close()
            continue
        done = time.perf_counter()
        if status != 200:
            result.error(f"HTTP {status}", target.path)
        elif len(body) != target.size:
            result.error("wrong length", f"{target.path}: {len(body)} != {target.size}")
        elif target.path not in verified and hashlib.sha256(body).hexdigest() != target.sha256:
            result.error("wrong sha256", target.path)
        else:
            verified.add(target.path)
            result.latencies.append(elapsed)
            if done <= deadline:
                result.requests += 1
                result.bytes += len(body)
                result.last_done = max(result.last_done, done)
            else:
                result.late += 1
    connection.close()


def worker(
    port: int,
    targets: list[Target],
    new_connections: bool,
    connections: int,
    start_at: float,
    duration: float,
    max_requests: int,
    seed: int,
) -> tuple[WorkerResult, float]:
    """One client process: ``connections`` clients on one asyncio loop; (result, seconds)."""
    result = WorkerResult()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)

    async def run() -> float:
        started = time.perf_counter()
        deadline = started + duration
        budget = [max_requests]
        verified: set[str] = set()
        clients = [
            _client(
                _Connection(port, new_connections, result),
                targets,
                random.Random(seed * 1000 + i),
                deadline,
                budget,
                verified,
            )
            for i in range(connections)
        ]
        await asyncio.gather(*clients)
        # The measured span: the whole duration, or less when max_requests ended it early.
        return (
            min(duration, (result.last_done or deadline) - started) if budget[0] <= 0 else duration
        )

    seconds = asyncio.run(run())
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu_seconds = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    return result, seconds


@dataclass
class Measurement:
    server: str
    scenario: str
    requests: int
    seconds: float
    rps: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float
    connects: int
    connect_p99_ms: float
    connect_max_ms: float
    late: int
    max_ms: float
    errors: int
    error_kinds: dict[str, int]
    first_error: str
    server_cpu_s: float
    client_cpu_s: float
    other_cpu_s: float  # busy CPU of the whole machine minus server and clients


def _percentile(values: list[float], pct: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def measure(
    server: m._Server,
    scenario: str,
    targets: list[Target],
    new_connections: bool,
    args: argparse.Namespace,
    pool: multiprocessing.pool.Pool,
    seed: int,
) -> Measurement:
    per_process = [args.clients // args.processes] * args.processes
    for i in range(args.clients % args.processes):
        per_process[i] += 1
    budgets = [args.max_requests // args.processes] * args.processes
    start_at = time.time() + 0.5
    cpu_before = server.cpu_seconds()
    busy_before = m.machine_busy_seconds()
    jobs = [
        (server.port, targets, new_connections, n, start_at, args.duration, budgets[i], seed + i)
        for i, n in enumerate(per_process)
    ]
    answers = pool.starmap_async(worker, jobs).get(timeout=args.duration + GRACE_SECONDS + 60)
    server_cpu = server.cpu_seconds() - cpu_before
    busy = m.machine_busy_seconds() - busy_before
    results = [r for r, _ in answers]
    seconds = max(s for _, s in answers)
    latencies = sorted(x for r in results for x in r.latencies)
    connects = sorted(x for r in results for x in r.connect_times)
    requests = sum(r.requests for r in results)
    kinds: dict[str, int] = {}
    for r in results:
        for kind, n in r.errors.items():
            kinds[kind] = kinds.get(kind, 0) + n
    return Measurement(
        server=server.name,
        scenario=scenario,
        requests=requests,
        seconds=round(seconds, 2),
        rps=round(requests / seconds, 1),
        mb_per_s=round(sum(r.bytes for r in results) / seconds / 1e6, 1),
        p50_ms=round(_percentile(latencies, 50) * 1000, 2),
        p99_ms=round(_percentile(latencies, 99) * 1000, 2),
        connects=len(connects),
        connect_p99_ms=round(_percentile(connects, 99) * 1000, 2),
        connect_max_ms=round((connects[-1] if connects else 0.0) * 1000, 2),
        late=sum(r.late for r in results),
        max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 2),
        errors=sum(kinds.values()),
        error_kinds=kinds,
        first_error=next((r.first_error for r in results if r.first_error), ""),
        server_cpu_s=round(server_cpu, 2),
        client_cpu_s=round(sum(r.cpu_seconds for r in results), 2),
        other_cpu_s=round(busy - server_cpu - sum(r.cpu_seconds for r in results), 2),
    )


# scenario -> (paths, a new connection per request)
SCENARIOS = {"wheels": ("wheels", False), "small": ("small", False), "new-conn": ("small", True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=m.MIRROR_DIR / "public")
    parser.add_argument("--wheels", type=Path, default=m.MIRROR_DIR / "wheels")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--clients", type=int, default=50, help="connections in all")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="per measurement")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument(
        "--torrip-backlog",
        type=int,
        help="also measure torrip's server with this listen backlog (a what-if; default 5)",
    )
    parser.add_argument(
        "--torrip-cpu",
        type=int,
        help="also measure torrip's server pinned to this CPU (taskset; a what-if)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not any(args.wheels.glob("*.whl")):
        sys.exit(f"no wheels in {args.wheels}: run bench/index_install.py first")
    m.build_tree(args.wheels, args.tree)
    scenarios = {}
    for name in args.scenarios.split(","):
        paths, new_connections = SCENARIOS[name]
        scenarios[name] = (scenario_targets(args.tree, paths), new_connections)
        sizes = [t.size for t in scenarios[name][0]]
        print(
            f"{name}: {len(sizes)} paths, {min(sizes)}-{max(sizes)} bytes, "
            f"mean {statistics.mean(sizes) / 1e3:.0f} KB",
            file=sys.stderr,
        )

    state = m.MIRROR_DIR / "state"
    load_before = m.load_average()
    results: list[Measurement] = []
    ctx = multiprocessing.get_context("fork")
    with contextlib.ExitStack() as stack:
        servers: list[m._Server] = [
            stack.enter_context(m.Nginx(args.tree, state / "nginx", workers=args.nginx_workers)),
            stack.enter_context(m.TorripServe(args.tree, state / "torrip")),
        ]
        if args.torrip_backlog is not None:
            what_if = m.TorripServe(args.tree, state / "torrip-b", backlog=args.torrip_backlog)
            servers.append(stack.enter_context(what_if))
        if args.torrip_cpu is not None:
            pinned = m.TorripServe(args.tree, state / "torrip-cpu", cpu=args.torrip_cpu)
            servers.append(stack.enter_context(pinned))
        pool = stack.enter_context(ctx.Pool(args.processes))
        for round_no in range(args.rounds):
            for scenario, (targets, new_connections) in scenarios.items():
                shift = round_no % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    # Warm up (page cache, server start-up): as many requests as paths, 1 client.
                    warm = argparse.Namespace(**{**vars(args), "clients": 1, "processes": 1})
                    warm.duration, warm.max_requests = 10.0, len(targets)
                    measure(server, scenario, targets, new_connections, warm, pool, seed=99)
                    result = measure(
                        server, scenario, targets, new_connections, args, pool, seed=round_no * 10
                    )
                    results.append(result)
                    print(
                        f"{server.name:24} {scenario:8} {result.rps:8.1f} req/s "
                        f"{result.mb_per_s:7.1f} MB/s p50 {result.p50_ms} ms "
                        f"p99 {result.p99_ms} ms connect max {result.connect_max_ms} ms "
                        f"errors {result.errors} {result.first_error}",
                        file=sys.stderr,
                    )
    load_after = m.load_average()

    print(f"load average before {load_before}, after {load_after}")
    print()
    print(
        "| scenario | server                  | requests |  req/s |  MB/s | p50 ms | p99 ms "
        "| max ms | connect max ms | late | errors | server CPU s | client CPU s | other CPU s |"
    )
    print(
        "|----------|-------------------------|---------:|-------:|------:|-------:|-------:"
        "|-------:|---------------:|-----:|-------:|-------------:|-------------:|------------:|"
    )
    for r in results:
        print(
            f"| {r.scenario:8} | {r.server:23} | {r.requests:8} | {r.rps:6.0f} "
            f"| {r.mb_per_s:5.0f} | {r.p50_ms:6.1f} | {r.p99_ms:6.1f} "
            f"| {r.max_ms:6.0f} | {r.connect_max_ms:14.0f} | {r.late:4} | {r.errors:6} "
            f"| {r.server_cpu_s:12.1f} "
            f"| {r.client_cpu_s:12.1f} | {r.other_cpu_s:11.1f} |"
        )
    print()
    print(f"Medians over {args.rounds} round(s):")
    print()
    print("| scenario | server                  |  req/s |  MB/s | p50 ms | p99 ms | errors |")
    print("|----------|-------------------------|-------:|------:|-------:|-------:|-------:|")
    ratios = []
    for scenario in scenarios:
        by_server: dict[str, list[Measurement]] = {}
        for r in results:
            if r.scenario == scenario:
                by_server.setdefault(r.server, []).append(r)
        for name, runs in by_server.items():
            print(
                f"| {scenario:8} | {name:23} | {statistics.median(r.rps for r in runs):6.0f} "
                f"| {statistics.median(r.mb_per_s for r in runs):5.0f} "
                f"| {statistics.median(r.p50_ms for r in runs):6.1f} "
                f"| {statistics.median(r.p99_ms for r in runs):6.1f} "
                f"| {sum(r.errors for r in runs):6} |"
            )
        nginx_rps = statistics.median(r.rps for r in by_server["nginx"])
        nginx_mbs = statistics.median(r.mb_per_s for r in by_server["nginx"])
        for name, runs in by_server.items():
            if name != "nginx" and nginx_rps and nginx_mbs:
                rps = statistics.median(r.rps for r in runs) / nginx_rps
                mbs = statistics.median(r.mb_per_s for r in runs) / nginx_mbs
                ratios.append(f"{scenario}: {name}/nginx requests/s = {rps:.2f}, MB/s = {mbs:.2f}")
    print()
    print("\n".join(ratios))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": c.machine(),
                    "load_average": {"before": load_before, "after": load_after},
                    "torrip": c.git_state(),
                    "nginx": m.nginx_version(),
                    "settings": {k: str(v) for k, v in vars(args).items()},
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    errors = sum(r.errors for r in results)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

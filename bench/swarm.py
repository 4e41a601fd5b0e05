"""Swarm benchmark: torrip with peers against uv and pip, from one capped origin, on loopback.

Run inside a private network namespace (nothing can leave the machine):

    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/swarm.py'

Set-up: the wheels of bench/.mirror-install/dists (``install.py download``) are
indexed with torrents by torrip's index builder and served by torrip's index
server behind a counting relay (tests/fixtures/swarm.py ``OriginProxy``) that
caps the origin at ``--origin-rate`` bytes/s for all transfers together. Three
libtorrent seeders on 127.0.0.2-4, each capped at ``--seeder-rate``, seed every
wheel and announce to a local tracker. Every install goes into a fresh venv with
a cold cache.

Runs (each ``--repeat`` times, tools interleaved):
  capped     torrip (peers via the tracker), uv, pip: wall time and origin bytes
  zero-peer  origin uncapped, a tracker that knows no peer: torrip with torrents vs
             ``--no-p2p``
Accuracy: every torrip run's report (origin bytes) against the origin's own count.

With ``--json`` and ``--plot``, writes the results and an SVG chart (as
bench/results/swarm.json and docs/swarm-bench.svg).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common as c

sys.path.insert(0, str(c.REPO_DIR / "tests"))

from fixtures.swarm import OriginProxy, Seeder, Tracker
from torrip.indexserver import IndexServer, build_index

SET = ["pandas", "scipy", "scikit-learn", "matplotlib"]
MIRROR = c.BENCH_DIR / ".mirror-install" / "dists"
TARGET_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python"
RESULTS = c.BENCH_DIR / "results" / "swarm.json"
PLOT = c.REPO_DIR / "docs" / "swarm-bench.svg"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def install(
    tool: str, index: str, work: Path, number: int, flags: list[str], timeout: float
) -> dict[str, object]:
    venv = work / f"venv-{tool}-{number}"
    python = c.make_venv(TARGET_PYTHON, venv)
    cache = work / f"cache-{tool}-{number}"
    report = work / f"report-{tool}-{number}.json"
    if tool.startswith("torrip"):
        cmd: list[str | Path] = [c.DEFAULT_TORRIP, "install", "-q", "--index-url", index]
        cmd += ["--python", python, "--report", report, *flags, *SET]
        env = c.clean_env("torrip", {"TORRIP_CACHE_DIR": str(cache)})
    elif tool == "uv":
        cmd = [c.DEFAULT_UV, "pip", "install", "-q", "--index-url", index, "--python", python]
        cmd += SET
        env = c.clean_env("uv", {"UV_CACHE_DIR": str(cache)})
    else:
        cmd = [c.DEFAULT_PIP, "--python", python, "install", "-q", "--no-compile"]
        cmd += ["--no-cache-dir", "--index-url", index, *SET]
        env = c.clean_env("pip")
    result = c.run(cmd, env, timeout)
    if not result.ok:
        sys.exit(f"{tool} failed: {result.stderr[-3000:]}")
    row: dict[str, object] = {"tool": tool, "seconds": round(result.seconds, 2)}
    if report.exists():
        data = json.loads(report.read_text())
        row["report_bytes"] = data["torrip"]["bytes"]
        row["report_seconds"] = data["torrip"]["seconds"]
    shutil.rmtree(venv, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return row


def measure(
    origin: OriginProxy, tool: str, index: str, work: Path, n: int, flags: list[str], t: float
) -> dict[str, object]:
    origin.reset()
    os.sync()  # the previous run's writes must not slow this one down
    row = install(tool, index, work, n, flags, t)
    row["origin_dist_bytes"] = origin.bytes_sent(".whl")
    row["origin_torrent_bytes"] = origin.bytes_sent(".torrent")
    row["origin_all_bytes"] = origin.bytes_sent()
    log(f"  {tool:14} {row['seconds']:6.2f}s  origin {row['origin_dist_bytes'] / 1e6:7.1f} MB")
    return row


def payload_bytes(index: str, work: Path, timeout: float) -> tuple[int, list[str]]:
    """What the set weighs: the files a plan downloads (from a torrip dry-run report)."""
    report = work / "plan.json"
    python = c.make_venv(TARGET_PYTHON, work / "venv-plan")
    cmd: list[str | Path] = [c.DEFAULT_TORRIP, "install", "--dry-run", "-q", "--index-url"]
    cmd += [index, "--python", python, "--report", report, "--no-p2p", *SET]
    result = c.run(cmd, c.clean_env("torrip", {"TORRIP_CACHE_DIR": str(work / "c")}), timeout)
    if not result.ok:
        sys.exit(result.stderr)
    items = json.loads(report.read_text())["install"]
    sizes = []
    for item in items:
        name = item["download_info"]["url"].rsplit("/", 1)[-1]
        sizes.append((MIRROR / name).stat().st_size)
    return sum(sizes), [item["download_info"]["url"].rsplit("/", 1)[-1] for item in items]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origin-rate", type=int, default=20_000_000)
    parser.add_argument("--seeder-rate", type=int, default=20_000_000)
    parser.add_argument("--seeders", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--work-dir", type=Path, help="where venvs and caches go (/dev/shm: without the disk)"
    )
    # Written only where asked: the defaults of old overwrote the committed results and plot.
    parser.add_argument("--json", type=Path, help=f"write the results here (as {RESULTS.name})")
    parser.add_argument("--plot", type=Path, help=f"write an SVG chart here (as {PLOT.name})")
    args = parser.parse_args()
    c.require(c.DEFAULT_TORRIP, c.DEFAULT_UV, c.DEFAULT_PIP, MIRROR)
    work = Path(tempfile.mkdtemp(prefix="torrip-swarm-bench-", dir=args.work_dir))
    root = work / "public"
    root.mkdir()
    server = IndexServer(root).start()
    origin = OriginProxy(server.base_url)
    log(f"indexing {MIRROR} with torrents ...")
    built = build_index(MIRROR, root, base_url=origin.base_url)
    if built.rejected:
        sys.exit(str(built.rejected))
    index = f"{origin.base_url}simple/"
    tracker = Tracker()
    seeders = []
    for number in range(args.seeders):
        seeder = Seeder(
            MIRROR, dht=False, upload_rate=args.seeder_rate, address=f"127.0.0.{number + 2}"
        )
        for torrent in sorted((root / "files").glob("*.torrent")):
            seeder.seed(torrent.read_bytes(), [tracker.url])
        seeders.append(seeder)
    payload, files = payload_bytes(index, work, args.timeout)
    log(f"payload: {len(files)} files, {payload / 1e6:.1f} MB")
    if not c.warm_start_torrip(c.DEFAULT_TORRIP, c.clean_env("torrip")):
        log("torrip's warm-start server did not start: torrip runs in-process")
    p2p = ["--listen", "127.0.0.1:0", "--dht-bootstrap", "", "--trackers", tracker.url]
    rows: list[dict[str, object]] = []
    log(f"capped origin ({args.origin_rate / 1e6:g} MB/s), {args.seeders} seeders:")
    origin.throttle(args.origin_rate)
    for n in range(args.repeat):
        for tool in ("torrip", "uv", "pip"):
            row = measure(origin, tool, index, work, n, p2p, args.timeout)
            rows.append({"run": "capped", **row})
    log("uncapped origin, no peers:")
    origin.throttle(0)
    # A tracker that knows nobody: torrents are fetched and announced, no peer answers.
    empty = Tracker()
    no_peers = ["--listen", "127.0.0.1:0", "--dht-bootstrap", "", "--trackers", empty.url]
    for n in range(args.repeat):
        for tool, flags in (("torrip", no_peers), ("torrip-no-p2p", ["--no-p2p"])):
            row = measure(origin, tool, index, work, 100 + n, flags, args.timeout)
            rows.append({"run": "zero-peer", **row})
    tracker.stop()
    empty.stop()
    for seeder in seeders:
        seeder.close()
    origin.stop()
    server.stop()
    summary = summarize(rows, payload)
    if args.json is not None:
        write_results(args, rows, payload, summary)
    if args.plot is not None:
        write_plot(summary, args)
    print(json.dumps(summary, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def write_results(
    args: argparse.Namespace,
    rows: list[dict[str, object]],
    payload: int,
    summary: dict[str, object],
) -> None:
    args.json.parent.mkdir(exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": c.machine(),
                "git": c.git_state(),
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "set": SET,
                "payload_bytes": payload,
                "origin_rate": args.origin_rate,
                "seeder_rate": args.seeder_rate,
                "seeders": args.seeders,
                "work_dir": str(args.work_dir or tempfile.gettempdir()),
                "rows": rows,
                "summary": summary,
            },
            indent=2,
        )
    )


def summarize(rows: list[dict[str, object]], payload: int) -> dict[str, object]:
    def median(run: str, tool: str, key: str) -> float:
        values = [float(r[key]) for r in rows if r["run"] == run and r["tool"] == tool]  # type: ignore[arg-type]
        return statistics.median(values)

    torrip_runs = [r for r in rows if str(r["tool"]).startswith("torrip")]
    accuracy = []
    for r in torrip_runs:
        reported = r["report_bytes"]["origin"]  # type: ignore[index]
        counted = int(r["origin_dist_bytes"]) + int(r["origin_torrent_bytes"])  # type: ignore[call-overload]
        accuracy.append(abs(reported - counted) / max(1, counted))
    capped = {t: median("capped", t, "seconds") for t in ("torrip", "uv", "pip")}
    origin = {t: median("capped", t, "origin_dist_bytes") for t in ("torrip", "uv", "pip")}
    zero = {t: median("zero-peer", t, "seconds") for t in ("torrip", "torrip-no-p2p")}
    return {
        "capped_seconds": capped,
        "capped_origin_dist_bytes": origin,
        "torrip_speedup_vs_uv": round(capped["uv"] / capped["torrip"], 2),
        "torrip_speedup_vs_pip": round(capped["pip"] / capped["torrip"], 2),
        "torrip_origin_share_of_payload": round(origin["torrip"] / payload, 4),
        "zero_peer_seconds": zero,
        "zero_peer_ratio": round(zero["torrip"] / zero["torrip-no-p2p"], 3),
        "report_origin_max_relative_error": round(max(accuracy), 5),
    }


def write_plot(summary: dict[str, object], args: argparse.Namespace) -> None:
    """A small SVG bar chart (no plotting library needed): wall time and origin MB."""
    capped: dict[str, float] = summary["capped_seconds"]  # type: ignore[assignment]
    origin: dict[str, float] = summary["capped_origin_dist_bytes"]  # type: ignore[assignment]
    zero: dict[str, float] = summary["zero_peer_seconds"]  # type: ignore[assignment]
    bars = [(f"{t} (capped origin)", capped[t], origin[t] / 1e6) for t in ("torrip", "uv", "pip")]
    bars += [(f"{t} (no peers, uncapped)", zero[t], None) for t in zero]
    top = max(v for _, v, _ in bars)
    width, row, left = 760, 34, 250
    height = 70 + row * len(bars)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="13">',
        f'<text x="10" y="22" font-size="15">Installing {" ".join(SET)}: wall time (s); '
        "MB served by the origin</text>",
        f'<text x="10" y="42" fill="#555">origin capped at {args.origin_rate / 1e6:g} MB/s, '
        f"{args.seeders} seeders at {args.seeder_rate / 1e6:g} MB/s each; loopback, 2 cores, "
        f"venvs and caches in {args.work_dir or tempfile.gettempdir()}"
        "</text>",
    ]
    for i, (label, seconds, megabytes) in enumerate(bars):
        y = 60 + i * row
        length = (width - left - 170) * seconds / top
        color = "#2a7" if label.startswith("torrip") else "#888"
        parts.append(f'<text x="10" y="{y + 17}">{label}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 4}" width="{length:.0f}" height="18" fill="{color}"/>'
        )
        note = f"{seconds:.1f} s" + (
            f" · origin {megabytes:.0f} MB" if megabytes is not None else ""
        )
        parts.append(f'<text x="{left + length + 6:.0f}" y="{y + 17}">{note}</text>')
    parts.append("</svg>")
    args.plot.write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    sys.exit(main())

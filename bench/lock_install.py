"""Lockfile install benchmark (issue 7): torrip vs uv vs pip installing one pylock.toml.

The lock of ``jupyterlab`` is written once by ``torrip lock`` against the local nginx mirror
of bench/install.py (same tree, same server block), then installed into fresh venvs by:

- torrip: ``torrip install -q --no-p2p -r pylock.toml --python V``
- uv:     ``uv pip install -q --index-url URL --python V -r pylock.toml``
- pip:    ``pip --python V install -q --no-compile --index-url URL -r pylock.toml``

COLD: each repetition runs the three tools once, interleaved (the order rotates), each into a
fresh venv with an empty cache of its own (TORRIP_CACHE_DIR, UV_CACHE_DIR, PIP_CACHE_DIR).
Nothing is deleted until the end, and the file system is synced before each command.
WARM: fresh venvs again, each tool with the cache of its first cold run. No tool compiles
bytecode. Every run's venv must hold exactly the lock's packages (name==version), or the run
counts as failed. torrip runs with ``--no-p2p``: there are no peers here, and this measures
the lock install itself over HTTP, as uv and pip do it. As in bench/install.py, the timed
torrip command writes no ``--report`` (uv and pip write none); one more torrip install,
cold and warm, with ``--report``, gives where its time goes.

Run it inside a private network namespace, so nothing can leave loopback::

    unshare -n sh -c 'ip link set lo up; bench/.venv-tools/bin/python bench/lock_install.py \\
        --runs 3 --json bench/results/lock-install.json'

The mirror must have been downloaded once (``bench/install.py download``, outside the
namespace). Every subprocess has a timeout; ``--max-minutes`` stops the run with what it has.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import _common as c
import tomllib

import install as mirror  # the mirror, nginx and venv helpers of the install benchmark

TOOLS = ("torrip", "uv", "pip")
REQUIREMENTS = ["jupyterlab"]


class Deadline(Exception):
    """--max-minutes ran out."""


@dataclass
class Run:
    tool: str
    mode: str  # "cold" or "warm"
    seconds: float
    ok: bool
    packages: int
    load: float
    phases: dict[str, float] = field(default_factory=dict)
    error: str = ""
    timed: bool = True  # False: a run for torrip's phases (with --report), in no time figure


def log(text: str) -> None:
    print(text, flush=True)


def write_lock(paths: mirror.Paths, index: str, work: Path, timeout: float) -> tuple[Path, float]:
    """``torrip lock`` of the requirements for a fresh venv of the target Python."""
    venv = work / "venv-lock"
    python = c.make_venv(paths.target_python, venv)
    lockfile = work / "pylock.toml"
    cmd = [paths.torrip, "lock", "-q", "--index-url", index, "--python", python]
    cmd += ["-o", lockfile, *REQUIREMENTS]
    res = c.run(cmd, c.clean_env("torrip", {"TORRIP_CACHE_DIR": str(work / "lock-cache")}), timeout)
    if not res.ok:
        sys.exit(f"torrip lock failed: {res.stderr.strip()}")
    shutil.rmtree(venv, ignore_errors=True)
    return lockfile, res.seconds


def locked_pins(lockfile: Path) -> dict[str, str]:
    """name -> version of every package of the lock (torrip locks for one environment)."""
    document = tomllib.loads(lockfile.read_text(encoding="utf-8"))
    return {package["name"]: package["version"] for package in document["packages"]}


def install_command(
    tool: str,
    paths: mirror.Paths,
    index: str,
    lockfile: Path,
    venv: Path,
    cache: Path,
    report: Path | None = None,
) -> tuple[list[str | Path], dict[str, str]]:
    python = venv / "bin" / "python"
    if tool == "torrip":
        cmd: list[str | Path] = [paths.torrip, "install", "-q", "--no-p2p", "-r", lockfile]
        cmd += ["--python", python, *(["--report", report] if report else [])]
        return cmd, {"TORRIP_CACHE_DIR": str(cache)}
    if tool == "uv":
        cmd = [paths.uv, "pip", "install", "-q", "--index-url", index, "--python", python]
        return [*cmd, "-r", lockfile], {"UV_CACHE_DIR": str(cache)}
    cmd = [paths.pip, "--python", python, "install", "-q", "--no-compile", "--index-url", index]
    return [*cmd, "-r", lockfile], {"PIP_CACHE_DIR": str(cache)}


def speed(args: argparse.Namespace, paths: mirror.Paths, index: str, work: Path) -> int:
    deadline = time.monotonic() + args.max_minutes * 60
    lockfile, lock_seconds = write_lock(paths, index, work, args.timeout)
    pins = locked_pins(lockfile)
    log(f"torrip lock: {len(pins)} packages in {lock_seconds:.2f} s -> {lockfile}")
    warm = {} if args.warm_start else {"TORRIP_WARM_START": "0"}
    if args.warm_start and not c.warm_start_torrip(paths.torrip, c.clean_env("torrip")):
        log("torrip's warm-start server did not start: torrip runs in-process")
    runs: list[Run] = []
    # Deleted once, at the end: deleting venvs of 11,000 files between runs made the next
    # installs on this disk (mounted with discard) up to three times slower.
    garbage: list[Path] = []

    def timed(tool: str, mode: str, cache: Path, i: int, *, phases: bool = False) -> None:
        """One run; ``phases``: torrip's, with --report, counted in no time figure."""
        if time.monotonic() > deadline:
            raise Deadline
        venv = work / f"venv-{tool}-{mode}-{i}"
        report = work / f"report-{tool}-{mode}-{i}.json" if phases else None
        c.make_venv(paths.target_python, venv)
        garbage.append(venv)
        cmd, extra = install_command(tool, paths, index, lockfile, venv, cache, report)
        os.sync()
        load = os.getloadavg()[0]
        res = c.run(cmd, c.clean_env(tool, {**extra, **warm}), args.timeout)
        installed = mirror.installed_dists(venv)
        run = Run(tool, mode, res.seconds, res.ok and installed == pins, len(installed), load)
        run.timed = not phases
        if not res.ok:
            run.error = f"rc={res.returncode}: {(res.stderr.strip().splitlines() or ['?'])[-1]}"
        elif installed != pins:
            run.error = f"installed {len(installed)} packages, not the lock's {len(pins)}"
        if res.ok and report is not None:
            data = json.loads(report.read_text(encoding="utf-8"))
            run.phases = dict(data["torrip"].get("seconds", {}))
        runs.append(run)
        note = f"  FAILED {run.error}" if run.error else ""
        count = "phases" if phases else f"{i + 1}/{args.runs}"
        log(
            f"  {mode} {count:<6} {tool:<6} {res.seconds:6.2f} s "
            f"{run.packages:3d} pkgs load {load:4.2f}{note}"
        )
        if report is not None:
            report.unlink(missing_ok=True)

    kept: dict[str, Path] = {}  # each tool's cache of its first cold run
    try:
        for i in range(args.runs):
            k = i % len(TOOLS)
            for tool in TOOLS[k:] + TOOLS[:k]:
                cache = work / f"cache-{tool}-cold-{i}"
                timed(tool, "cold", cache, i)
                if tool in kept:
                    garbage.append(cache)
                else:
                    kept[tool] = cache
        garbage.append(work / "cache-torrip-cold-phases")
        timed("torrip", "cold", garbage[-1], args.runs, phases=True)
        for i in range(args.runs):
            k = i % len(TOOLS)
            for tool in TOOLS[k:] + TOOLS[:k]:
                timed(tool, "warm", kept[tool], i)
        timed("torrip", "warm", kept["torrip"], args.runs, phases=True)
    except Deadline:
        log(f"stopped: --max-minutes {args.max_minutes} reached")
    finally:
        mirror._settle([*garbage, *kept.values()])

    summary = summarize(runs)
    print_summary(summary)
    if args.json:
        head = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": c.machine(),
            "requirements": REQUIREMENTS,
            "packages": len(pins),
            "lock_seconds": lock_seconds,
            "runs": args.runs,
            "versions": args.versions,
            "torrip_tree": c.git_state(),
            "work_dir": str(args.work_dir or tempfile.gettempdir()),
        }
        body = {"runs": [r.__dict__ for r in runs], "summary": summary}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**head, **body}, indent=2) + "\n", encoding="utf-8")
    return 1 if any(not r.ok for r in runs) else 0


def summarize(runs: list[Run]) -> dict[str, object]:
    summary: dict[str, object] = {}
    medians: dict[str, float] = {}
    for tool in TOOLS:
        for mode in ("cold", "warm"):
            mine = [r for r in runs if (r.tool, r.mode, r.timed) == (tool, mode, True)]
            ok = [r.seconds for r in mine if r.ok]
            row: dict[str, object] = {"ok": len(ok), "runs": len(mine)}
            if ok:
                row.update(median=statistics.median(ok), min=min(ok), max=max(ok))
                medians[f"{tool} {mode}"] = statistics.median(ok)
            if tool == "torrip":
                phases = {}
                for key in ("inspect", "resolve", "fetch", "install"):
                    values = [
                        r.phases[key]
                        for r in runs
                        if (r.tool, r.mode, r.ok) == (tool, mode, True) and key in r.phases
                    ]
                    if values:
                        phases[key] = statistics.median(values)
                row["phases"] = phases
            summary[f"{tool} {mode}"] = row
    ratios = {}
    for mode in ("cold", "warm"):
        for other in ("uv", "pip"):
            mine, theirs = medians.get(f"torrip {mode}"), medians.get(f"{other} {mode}")
            if mine is not None and theirs:
                ratios[f"torrip/{other} {mode}"] = mine / theirs
    summary["ratios"] = ratios
    return summary


def print_summary(summary: dict[str, object]) -> None:
    log(f"\n{'tool':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'ok':>5}")
    for key, row in summary.items():
        if key == "ratios" or not isinstance(row, dict):
            continue
        ok = f"{row['ok']}/{row['runs']}"
        if "median" in row:
            log(f"{key:<12} {row['median']:9.2f} {row['min']:7.2f} {row['max']:7.2f} {ok:>5}")
        else:
            log(f"{key:<12} {'-':>9} {'-':>7} {'-':>7} {ok:>5}")
    ratios = summary["ratios"]
    assert isinstance(ratios, dict)
    log("  ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    for key in ("torrip cold", "torrip warm"):
        row = summary.get(key)
        if isinstance(row, dict) and row.get("phases"):
            phases = row["phases"]
            assert isinstance(phases, dict)
            log(
                f"{key} phases (s; a run with --report): "
                + " ".join(f"{k} {v:.2f}" for k, v in phases.items())
            )


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so the finally blocks stop nginx and clean up


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="repetitions per mode (default 3)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write raw results to OUT")
    ap.add_argument("--mirror", type=Path, default=mirror.MIRROR_DIR)
    ap.add_argument("--port", type=int, default=mirror.DEFAULT_PORT, help="nginx on 127.0.0.1:PORT")
    ap.add_argument("--target-python", default=mirror.DEFAULT_TARGET_PYTHON)
    ap.add_argument("--work-dir", type=Path, help="venvs and caches (default: system temp)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command")
    ap.add_argument("--max-minutes", type=float, default=45, help="stop after this")
    ap.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_false",
        help="every torrip command in its own process (docs/warm-start.md)",
    )
    ap.add_argument("--torrip", type=Path, default=c.DEFAULT_TORRIP)
    ap.add_argument("--pip", type=Path, default=c.DEFAULT_PIP)
    ap.add_argument("--uv", type=Path, default=c.DEFAULT_UV)
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    c.require(args.torrip, args.pip, args.uv)
    paths = mirror.Paths(args.torrip, args.pip, args.uv, args.target_python)
    args.versions = {
        "torrip": c.tool_version([args.torrip], "torrip"),
        "pip": c.tool_version([args.pip], "pip").split(" from ")[0],
        "uv": c.tool_version([args.uv], "uv"),
        "nginx": c.run([mirror.NGINX, "-v"], c.clean_env("none"), 30).stderr.strip(),
    }
    log(f"{c.machine()}; load {os.getloadavg()}; " + "; ".join(args.versions.values()))
    log(f"torrip tree {c.git_state()}; target {args.target_python}")
    public = mirror.build_mirror(args.mirror, args.torrip, args.port, args.timeout)
    mirror.warm_page_cache(public)
    work = Path(tempfile.mkdtemp(prefix="torrip-bench-lock-", dir=args.work_dir))
    try:
        with mirror.nginx(public, args.port, work / "nginx") as index:
            return speed(args, paths, index, work)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

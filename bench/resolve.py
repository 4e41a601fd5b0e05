"""Cold-cache resolution time: torrip vs pip vs uv against the default index (PyPI).

Each repetition runs every tool once (the order rotates from one repetition to the next),
each with an empty cache, resolving the same requirements for the same fresh, empty venv.

    bench/.venv-tools/bin/python bench/resolve.py [--reqs "jupyterlab"] [--runs 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import _common as c

DEFAULT_TARGET_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python"
# The uv command the torrip/uv ratio uses; see docs/benchmarks.md for why.
UV_FOR_RATIO = "uv install"


@dataclass
class Tool:
    name: str
    # (work dir, run number) -> command and extra environment
    command: Callable[[Path, int], tuple[list[str | Path], dict[str, str]]]
    env_kind: str
    # (result, work dir, run number) -> number of packages it would install
    count: Callable[[c.Result, Path, int], int]
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    counts: set[int] = field(default_factory=set)


def _report_count(report: Path) -> int:
    return len(json.loads(report.read_text(encoding="utf-8"))["install"])


def build_tools(
    reqs: list[str], target: Path, torrip: Path, pip: Path, uv: Path, work: Path
) -> list[Tool]:
    reqs_in = work / "requirements.in"
    reqs_in.write_text("\n".join(reqs) + "\n", encoding="utf-8")

    def torrip_cmd(d: Path, i: int) -> tuple[list[str | Path], dict[str, str]]:
        cache = Path(tempfile.mkdtemp(prefix=f"torrip-cache-{i}-", dir=d))
        report = d / f"torrip-{i}.json"
        cmd: list[str | Path] = [torrip, "install", "--dry-run", "-q", "--report", report]
        return [*cmd, "--python", target, *reqs], {"TORRIP_CACHE_DIR": str(cache)}

    def pip_cmd(d: Path, i: int) -> tuple[list[str | Path], dict[str, str]]:
        report = d / f"pip-{i}.json"
        cmd: list[str | Path] = [pip, "--python", target, "install", "--dry-run", "--quiet"]
        return [*cmd, "--ignore-installed", "--report", report, "--no-cache-dir", *reqs], {}

    def uv_install_cmd(d: Path, i: int) -> tuple[list[str | Path], dict[str, str]]:
        cmd: list[str | Path] = [uv, "pip", "install", "--dry-run", "--no-cache"]
        return [*cmd, "--python", target, *reqs], {}

    def uv_compile_cmd(d: Path, i: int) -> tuple[list[str | Path], dict[str, str]]:
        cmd: list[str | Path] = [uv, "pip", "compile", "--no-cache", "--quiet"]
        return [*cmd, "--no-header", "--no-annotate", "--python", target, reqs_in], {}

    return [
        Tool("torrip", torrip_cmd, "torrip", lambda r, d, i: _report_count(d / f"torrip-{i}.json")),
        Tool("pip", pip_cmd, "pip", lambda r, d, i: _report_count(d / f"pip-{i}.json")),
        Tool(
            "uv install",
            uv_install_cmd,
            "uv",
            lambda r, d, i: len(re.findall(r"^ \+ ", r.stderr, re.MULTILINE)),
        ),
        Tool(
            "uv compile",
            uv_compile_cmd,
            "uv",
            lambda r, d, i: len(re.findall(r"^[A-Za-z0-9].*==", r.stdout, re.MULTILINE)),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reqs", default="jupyterlab", help="requirements, space-separated")
    ap.add_argument("--runs", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write raw results to OUT")
    ap.add_argument("--target-python", default=DEFAULT_TARGET_PYTHON, help="base of the venv")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per command")
    ap.add_argument("--torrip", type=Path, default=c.DEFAULT_TORRIP)
    ap.add_argument("--pip", type=Path, default=None, help="default: the tools venv's pip")
    ap.add_argument("--uv", type=Path, default=c.DEFAULT_UV)
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    reqs = args.reqs.split()

    work = Path(tempfile.mkdtemp(prefix="torrip-bench-resolve-"))
    try:
        target = c.make_venv(args.target_python, work / "target")
        version = c.python_version(target)
        pip = args.pip or (c.DEFAULT_PIP if version >= (3, 10) else c.LEGACY_PIP)
        c.require(args.torrip, pip, args.uv)
        tools = build_tools(reqs, target, args.torrip, pip, args.uv, work)
        versions = {
            "torrip": c.tool_version([args.torrip], "torrip"),
            "pip": c.tool_version([pip], "pip").split(" from ")[0],
            "uv": c.tool_version([args.uv], "uv"),
        }
        print(f"{c.machine()}; target Python {version[0]}.{version[1]}; reqs: {' '.join(reqs)}")
        print("; ".join(versions.values()) + f"; torrip tree {c.git_state()}")

        for i in range(args.runs):
            k = i % len(tools)
            for tool in tools[k:] + tools[:k]:
                run_dir = work / f"run-{i}"
                run_dir.mkdir(exist_ok=True)
                cmd, extra = tool.command(run_dir, i)
                res = c.run(cmd, c.clean_env(tool.env_kind, extra), args.timeout)
                if res.ok:
                    tool.times.append(res.seconds)
                    tool.counts.add(tool.count(res, run_dir, i))
                    note = ""
                else:
                    tail = (res.stderr.strip().splitlines() or ["?"])[-1]
                    tool.failures.append(f"run {i + 1}: rc={res.returncode}: {tail}")
                    note = f"  FAILED rc={res.returncode}: {tail}"
                print(f"  run {i + 1}/{args.runs} {tool.name:<11} {res.seconds:6.2f} s{note}")
                sys.stdout.flush()
            shutil.rmtree(work / f"run-{i}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    medians = {t.name: statistics.median(t.times) for t in tools if t.times}
    print()
    print(f"{'tool':<11} {'median s':>9} {'min s':>7} {'max s':>7} {'ok':>5} {'packages':>9}")
    for t in tools:
        if t.times:
            pkgs = ",".join(str(n) for n in sorted(t.counts))
            print(
                f"{t.name:<11} {medians[t.name]:9.2f} {min(t.times):7.2f} {max(t.times):7.2f} "
                f"{len(t.times):>2}/{args.runs:<2} {pkgs:>9}"
            )
        else:
            print(f"{t.name:<11} {'-':>9} {'-':>7} {'-':>7} {0:>2}/{args.runs:<2}")
    ratios: dict[str, float] = {}
    if "torrip" in medians:
        for other in ("pip", UV_FOR_RATIO, "uv compile"):
            if other in medians:
                ratios[f"torrip/{other}"] = medians["torrip"] / medians[other]
    print()
    for name, value in ratios.items():
        print(f"{name:<18} {value:5.2f}")
    failures = [f"{t.name} {f}" for t in tools for f in t.failures]
    for f in failures:
        print("FAILED:", f)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": c.machine(),
            "target_python": f"{version[0]}.{version[1]}",
            "reqs": reqs,
            "runs": args.runs,
            "versions": versions,
            "torrip_tree": c.git_state(),
            "tools": {
                t.name: {"times": t.times, "failures": t.failures, "packages": sorted(t.counts)}
                for t in tools
            },
            "medians": medians,
            "ratios": ratios,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

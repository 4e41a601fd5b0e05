"""Two torrip source trees, A and B, installing the same sets, interleaved: before vs after.

On a shared machine and a disk mounted with ``discard``, runs minutes apart differ more than
two versions of torrip do; this puts them side by side. Each repetition installs a set COLD
with A and B (fresh venv, empty cache; the order alternates), then WARM (fresh venv, each
version's cache from its first cold run). ``sync`` before every command; nothing is deleted
until a set is done. The mirror and nginx are bench/install.py's.

    git worktree add /tmp/torrip-a HEAD~1    # or copy a tree: only its src/ is used
    bench/.venv-tools/bin/python bench/install_ab.py --a /tmp/torrip-a/src --b src \\
        [--sets jupyterlab,sci] [--runs 4] [--work-dir /dev/shm] [--json OUT]

Both run with torrip's venv (``.venv/bin/torrip``) and ``PYTHONPATH`` set to their ``src``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as c

import install as bench


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--a", type=Path, required=True, help="src/ of version A (before)")
    ap.add_argument("--b", type=Path, required=True, help="src/ of version B (after)")
    ap.add_argument("--sets", default="jupyterlab,sci", help="comma-separated: web,jupyterlab,sci")
    ap.add_argument("--runs", type=int, default=4, help="repetitions (default 4)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write raw results to OUT")
    ap.add_argument("--mirror", type=Path, default=bench.MIRROR_DIR)
    ap.add_argument("--port", type=int, default=bench.DEFAULT_PORT)
    ap.add_argument("--target-python", default=bench.DEFAULT_TARGET_PYTHON)
    ap.add_argument("--work-dir", type=Path, help="venvs and caches (default: system temp)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command")
    ap.add_argument("--torrip", type=Path, default=c.DEFAULT_TORRIP)
    args = ap.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    if any(s not in bench.SETS for s in sets) or args.runs < 1:
        ap.error(f"sets are among {', '.join(bench.SETS)}; --runs at least 1")
    versions = {"A": args.a.resolve(), "B": args.b.resolve()}
    c.require(args.torrip, *(path / "torrip" for path in versions.values()))
    signal.signal(signal.SIGTERM, bench._terminate)  # so nginx is stopped
    public = bench.build_mirror(args.mirror, args.torrip, args.port, args.timeout)
    bench.warm_page_cache(public)
    work = Path(tempfile.mkdtemp(prefix="torrip-bench-ab-", dir=args.work_dir))
    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        with bench.nginx(public, args.port, work / "nginx") as index:
            for name in sets:
                for mode in ("cold", "warm"):
                    for i in range(args.runs):
                        order = list(versions) if i % 2 == 0 else list(reversed(versions))
                        for version in order:
                            cache_run = i if mode == "cold" else 0
                            cache = work / f"cache-{name}-{version}-{cache_run}"
                            venv = work / f"venv-{name}-{version}-{mode}-{i}"
                            c.make_venv(args.target_python, venv)
                            report = work / "report.json"
                            cmd: list[str | Path] = [args.torrip, "install", "-q"]
                            cmd += ["--index-url", index, "--python", venv / "bin" / "python"]
                            cmd += ["--report", report, *bench.SETS[name]]
                            env = c.clean_env(
                                "torrip",
                                {
                                    "TORRIP_CACHE_DIR": str(cache),
                                    "PYTHONPATH": str(versions[version]),
                                },
                            )
                            os.sync()
                            res = c.run(cmd, env, args.timeout)
                            if not res.ok:
                                failures.append(f"{name} {version} {mode}: {res.stderr[-500:]}")
                                continue
                            phases = json.loads(report.read_text())["torrip"]["seconds"]
                            runs.append(
                                {
                                    "set": name,
                                    "version": version,
                                    "mode": mode,
                                    "seconds": res.seconds,
                                    "phases": phases,
                                }
                            )
                            shown = " ".join(f"{k} {v:.2f}" for k, v in phases.items())
                            bench.log(
                                f"  {name:<10} {mode} {i + 1}/{args.runs} {version} "
                                f"{res.seconds:6.2f} s  ({shown})"
                            )
                _settle(work, name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bench.log(f"\n{'set':<11} {'mode':<5} {'version':<8} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name in sets:
        for mode in ("cold", "warm"):
            for version in versions:
                values = [
                    float(r["seconds"])
                    for r in runs
                    if (r["set"], r["mode"], r["version"]) == (name, mode, version)
                ]
                if values:
                    bench.log(
                        f"{name:<11} {mode:<5} {version:<8} {statistics.median(values):9.2f} "
                        f"{min(values):7.2f} {max(values):7.2f}"
                    )
    for line in failures:
        bench.log(f"FAILED: {line}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "machine": c.machine(),
            "versions": {k: str(v) for k, v in versions.items()},
            "runs": runs,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


def _settle(work: Path, name: str) -> None:
    """Delete a finished set's venvs and caches, then flush, outside any timed region."""
    for path in work.glob(f"*-{name}-*"):
        shutil.rmtree(path, ignore_errors=True)
    os.sync()


if __name__ == "__main__":
    sys.exit(main())

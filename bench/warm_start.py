"""Warm start (docs/warm-start.md): how long commands take in a fork of the server, and in
a process of their own.

    bench/.venv-tools/bin/python bench/warm_start.py --runs 20 \\
        --json bench/results/warm-start.json

Commands that touch no network, run against this repository's own venv (`--python`),
interleaved, each with warm start on and off (`--no-warm-start`); `python -c pass` as the
floor. Medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import _common as c

COMMANDS = {
    "cache dir": ["cache", "dir"],
    "list": ["list", "--python", str(c.REPO_DIR / ".venv")],
    "show": ["show", "--python", str(c.REPO_DIR / ".venv"), "packaging"],
    "check": ["check", "--python", str(c.REPO_DIR / ".venv")],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    c.require(c.DEFAULT_TORRIP)
    env = c.clean_env("torrip")
    if not c.warm_start_torrip(c.DEFAULT_TORRIP, env):
        sys.exit("the warm-start server did not start (not Linux, or turned off)")
    python = c.DEFAULT_TORRIP.parent / "python"
    times: dict[str, list[float]] = {"python -c pass": []}
    for name in COMMANDS:
        times[f"{name} (warm start)"] = []
        times[f"{name} (own process)"] = []
    for _ in range(args.runs):
        times["python -c pass"].append(c.run([python, "-c", "pass"], env, 30).seconds)
        for name, argv in COMMANDS.items():
            for label, extra in (("warm start", []), ("own process", ["--no-warm-start"])):
                result = c.run([c.DEFAULT_TORRIP, *argv, *extra], env, 60)
                if not result.ok:
                    sys.exit(f"torrip {' '.join(argv)} failed: {result.stderr[-2000:]}")
                times[f"{name} ({label})"].append(result.seconds)
    medians = {label: round(statistics.median(v) * 1000, 1) for label, v in times.items()}
    width = max(map(len, medians))
    for label, ms in medians.items():
        print(f"{label:<{width}}  {ms:7.1f} ms")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": c.machine(),
                    "git": c.git_state(),
                    "date": time.strftime("%Y-%m-%d %H:%M"),
                    "runs": args.runs,
                    "median_ms": medians,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does torrip resolve the same versions as pip? Compares ``install[]`` of both dry-run reports.

For each target interpreter (a fresh empty venv) and each requirement set, torrip and pip run
at the same moment (so both see the same index), and the name -> version maps of their reports
are compared. Exits 1 on any mismatch or failure.

    bench/.venv-tools/bin/python bench/compare_pip.py [--keep DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common as c
from packaging.utils import canonicalize_name

DEFAULT_SETS = [
    "flask requests httpx rich black fastapi",
    "jupyterlab",
    "pandas scipy scikit-learn matplotlib",
]
DEFAULT_PYTHONS = [
    "/root/.pyenv/versions/3.11.7/bin/python",
    "/root/.pyenv/versions/3.9.18/bin/python",
    "/root/.pyenv/versions/3.13.0/bin/python",
]


def installs(report: Path) -> dict[str, str]:
    data = json.loads(report.read_text(encoding="utf-8"))
    return {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in data["install"]
    }


def diff(torrip: dict[str, str], pip: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(torrip.keys() | pip.keys()):
        t, p = torrip.get(name, "-"), pip.get(name, "-")
        if t != p:
            lines.append(f"{name}: torrip {t}, pip {p}")
    return lines


def compare(
    reqs: list[str], target: Path, torrip: Path, pip: Path, work: Path, timeout: float
) -> dict[str, object]:
    t_report, p_report = work / "torrip.json", work / "pip.json"
    cache = Path(tempfile.mkdtemp(prefix="torrip-cache-", dir=work))
    t_cmd: list[str | Path] = [torrip, "install", "--dry-run", "-q", "--report", t_report]
    p_cmd: list[str | Path] = [pip, "--python", target, "install", "--dry-run", "--quiet"]
    started = time.perf_counter()
    t_proc = c.start(
        [*t_cmd, "--python", target, *reqs],
        c.clean_env("torrip", {"TORRIP_CACHE_DIR": str(cache)}),
    )
    p_proc = c.start(
        [*p_cmd, "--ignore-installed", "--report", p_report, "--no-cache-dir", *reqs],
        c.clean_env("pip"),
    )
    t_res = c.finish(t_proc, started, timeout)
    p_res = c.finish(p_proc, started, timeout)
    errors = [
        f"{name} failed (rc={res.returncode}): {res.stderr.strip()[-500:]}"
        for name, res in (("torrip", t_res), ("pip", p_res))
        if not res.ok
    ]
    if errors:
        return {"ok": False, "errors": errors}
    t_map, p_map = installs(t_report), installs(p_report)
    mismatches = diff(t_map, p_map)
    return {
        "ok": not mismatches,
        "torrip_count": len(t_map),
        "pip_count": len(p_map),
        "mismatches": mismatches,
        "torrip": t_map,
        "pip": p_map,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", action="append", dest="sets", help="a requirement set (repeatable)")
    ap.add_argument("--python", action="append", dest="pythons", help="a target base interpreter")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per command")
    ap.add_argument("--torrip", type=Path, default=c.DEFAULT_TORRIP)
    ap.add_argument("--keep", type=Path, metavar="DIR", help="keep the reports in DIR")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write the results to OUT")
    args = ap.parse_args(argv)
    sets = args.sets or DEFAULT_SETS
    pythons = args.pythons or DEFAULT_PYTHONS
    c.require(args.torrip, c.DEFAULT_PIP, c.LEGACY_PIP)

    results: list[dict[str, object]] = []
    work = Path(tempfile.mkdtemp(prefix="torrip-bench-compare-"))
    try:
        print(f"{c.machine()}; {c.tool_version([args.torrip], 'torrip')}; tree {c.git_state()}")
        for base in pythons:
            version = c.python_version(base)
            vtag = f"{version[0]}.{version[1]}"
            target = c.make_venv(base, work / f"venv-{vtag}")
            pip = c.DEFAULT_PIP if version >= (3, 10) else c.LEGACY_PIP
            pip_version = c.tool_version([pip], "pip").split(" from ")[0]
            print(f"\nPython {vtag} ({pip_version})")
            for index, reqs in enumerate(sets):
                run_dir = work / f"{vtag}-{index}"
                run_dir.mkdir()
                res = compare(reqs.split(), target, args.torrip, pip, run_dir, args.timeout)
                res.update(python=vtag, pip_version=pip_version, reqs=reqs)
                results.append(res)
                if args.keep:
                    dest = args.keep / f"py{vtag}-set{index}"
                    dest.mkdir(parents=True, exist_ok=True)
                    for name in ("torrip.json", "pip.json"):
                        if (run_dir / name).exists():
                            shutil.copy2(run_dir / name, dest / name)
                if "errors" in res:
                    print(f"  ERROR  {reqs}")
                    for line in res["errors"]:  # type: ignore[attr-defined]
                        print(f"         {line}")
                    continue
                status = "match   " if res["ok"] else "MISMATCH"
                print(f"  {status} {reqs}: torrip {res['torrip_count']}, pip {res['pip_count']}")
                for line in res["mismatches"]:  # type: ignore[attr-defined]
                    print(f"           {line}")
                sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    bad = [r for r in results if not r["ok"]]
    print(f"\n{len(results) - len(bad)}/{len(results)} identical")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": c.machine(),
            "results": results,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

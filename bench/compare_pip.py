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
from dataclasses import asdict, dataclass, field
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


@dataclass
class Comparison:
    python: str
    pip_version: str
    reqs: str
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    torrip: dict[str, str] = field(default_factory=dict)
    pip: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.mismatches


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
    out: Comparison, target: Path, torrip: Path, pip: Path, work: Path, timeout: float
) -> Comparison:
    reqs = out.reqs.split()
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
    out.errors = [
        f"{name} failed (rc={res.returncode}): {res.stderr.strip()[-500:]}"
        for name, res in (("torrip", t_res), ("pip", p_res))
        if not res.ok
    ]
    if not out.errors:
        out.torrip, out.pip = installs(t_report), installs(p_report)
        out.mismatches = diff(out.torrip, out.pip)
    return out


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

    results: list[Comparison] = []
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
                res = compare(
                    Comparison(vtag, pip_version, reqs),
                    target,
                    args.torrip,
                    pip,
                    run_dir,
                    args.timeout,
                )
                results.append(res)
                if args.keep:
                    dest = args.keep / f"py{vtag}-set{index}"
                    dest.mkdir(parents=True, exist_ok=True)
                    for name in ("torrip.json", "pip.json"):
                        if (run_dir / name).exists():
                            shutil.copy2(run_dir / name, dest / name)
                if res.errors:
                    print(f"  ERROR    {reqs}")
                    for line in res.errors:
                        print(f"           {line}")
                    continue
                status = "match   " if res.ok else "MISMATCH"
                print(f"  {status} {reqs}: torrip {len(res.torrip)}, pip {len(res.pip)} packages")
                for line in res.mismatches:
                    print(f"           {line}")
                sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    bad = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(bad)}/{len(results)} identical")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": c.machine(),
            "torrip": c.tool_version([args.torrip], "torrip"),
            "torrip_tree": c.git_state(),
            "results": [{**asdict(r), "ok": r.ok} for r in results],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

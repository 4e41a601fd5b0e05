"""pip, uv and torrip install from a torrip-built index of real wheels, served by nginx and torrip.

    bench/.venv-tools/bin/python bench/index_install.py [--urls relative|absolute] [--json OUT]

1. ``pip download`` the wheels of the requirements (default: flask requests httpx rich black
   fastapi, for CPython 3.11 on this machine) from PyPI into bench/.mirror/wheels/ (once).
2. ``torrip index build`` them: with ``--urls relative`` (default) into one tree with relative
   file URLs, served by both servers; with ``--urls absolute`` into one tree per server, each
   built with ``--base-url`` of the server that serves it (torrents then carry a web seed).
3. Serve with nginx (the server block of docs/torrent-index.md) and ``torrip index serve``.
4. Against each server, install the requirements into fresh empty venvs with
   ``pip --python V install --no-cache-dir``, ``uv pip install --no-cache --python V`` and
   ``torrip install --python V --report R`` (fresh TORRIP_CACHE_DIR).

Checks: every install succeeds; torrip's report gives each item's ``torrip.torrent`` and its
btih/btmh equal the ``_torrent`` of the index's JSON page; all venvs hold the same
distributions (name==version), and those are the wheels of the tree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import _common as c
import mirror as m

INSTALLERS = ("pip", "uv", "torrip")
FREEZE = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted({(d.metadata['Name'], d.version) for d in m.distributions()})))"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_dists(wheels: list[Path]) -> dict[str, str]:
    """name -> version from the wheel file names."""
    out = {}
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        out[canonical(name)] = version
    return out


def installed(python: Path) -> dict[str, str]:
    res = c.run([python, "-c", FREEZE], c.clean_env("none"), timeout=60)
    if not res.ok:
        raise SystemExit(f"cannot list the distributions of {python}: {res.stderr}")
    return {canonical(name): version for name, version in json.loads(res.stdout)}


def page_torrents(tree: Path) -> dict[str, dict[str, str]]:
    """filename -> ``_torrent`` from the JSON project pages of a built tree."""
    out = {}
    for page in (tree / "simple").glob("*/index.json"):
        for entry in json.loads(page.read_text(encoding="utf-8"))["files"]:
            if "_torrent" in entry:
                out[entry["filename"]] = entry["_torrent"]
    return out


@dataclass
class Run:
    server: str
    installer: str
    seconds: float
    ok: bool
    dists: dict[str, str]
    problems: list[str] = field(default_factory=list)
    torrip_bytes: dict[str, int] | None = None
    torrents_seen: int | None = None


def check_torrip_report(report: Path, torrents: dict[str, dict[str, str]], run: Run) -> None:
    data = json.loads(report.read_text(encoding="utf-8"))
    run.torrip_bytes = data.get("torrip", {}).get("bytes")
    seen = 0
    for item in data["install"]:
        extra = item.get("torrip", {})
        filename = extra.get("filename", "?")
        torrent = extra.get("torrent")
        expected = torrents.get(filename)
        if not isinstance(torrent, dict) or not torrent.get("btih") or not torrent.get("btmh"):
            run.problems.append(f"report: {filename} has no torrip.torrent btih/btmh")
        elif expected is None:
            run.problems.append(f"report: {filename} is not in the index's pages")
        elif (torrent["btih"], torrent["btmh"]) != (expected["btih"], expected["btmh"]):
            run.problems.append(f"report: {filename} torrent {torrent} != index {expected}")
        else:
            seen += 1
    run.torrents_seen = seen


def install(
    server: m._Server,
    installer: str,
    reqs: list[str],
    target_python: str,
    work: Path,
    tools: dict[str, Path],
    torrents: dict[str, dict[str, str]],
    timeout: float,
) -> Run:
    venv = work / f"venv-{server.name}-{installer}"
    python = c.make_venv(target_python, venv)
    extra: dict[str, str] = {}
    report = work / f"report-{server.name}-{installer}.json"
    if installer == "pip":
        cmd: list[str | Path] = [tools["pip"], "--python", python, "install", "--no-cache-dir"]
        cmd += ["--index-url", server.url, *reqs]
    elif installer == "uv":
        cmd = [tools["uv"], "pip", "install", "--no-cache", "--python", python]
        cmd += ["--index-url", server.url, *reqs]
    else:
        cache = work / f"torrip-cache-{server.name}"
        extra["TORRIP_CACHE_DIR"] = str(cache)
        cmd = [tools["torrip"], "install", "--index-url", server.url, "--python", python]
        cmd += ["--report", report, *reqs]
    res = c.run(cmd, c.clean_env(installer, extra), timeout)
    run = Run(server.name, installer, round(res.seconds, 2), res.ok, installed(python))
    if not res.ok:
        run.problems.append(f"exit {res.returncode}: {(res.stderr or res.stdout)[-2000:]}")
    elif installer == "torrip":
        check_torrip_report(report, torrents, run)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reqs", default=" ".join(m.DEFAULT_REQS))
    parser.add_argument("--wheels", type=Path, default=m.MIRROR_DIR / "wheels")
    parser.add_argument("--refetch", action="store_true", help="pip download even if present")
    parser.add_argument("--urls", choices=("relative", "absolute"), default="relative")
    parser.add_argument("--python", default=m.DEFAULT_TARGET_PYTHON, help="target interpreter")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300, help="per install, seconds")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    reqs = args.reqs.split()
    tools = {"pip": c.DEFAULT_PIP, "uv": c.DEFAULT_UV, "torrip": c.DEFAULT_TORRIP}
    c.require(*tools.values())

    wheels = sorted(args.wheels.glob("*.whl"))
    if args.refetch or not wheels:
        major, minor = c.python_version(args.python)
        wheels = m.fetch_wheels(reqs, args.wheels, python_version=f"{major}.{minor}")
    expected = wheel_dists(wheels)
    print(f"{len(wheels)} wheels in {args.wheels}", file=sys.stderr)

    state = m.MIRROR_DIR / "state"
    ports = {"nginx": m.free_port(), "torrip-serve": m.free_port()}
    trees = {}
    for name, port in ports.items():
        if args.urls == "relative":
            tree = m.MIRROR_DIR / "public"
            base_url = None
        else:
            tree = m.MIRROR_DIR / f"public-{name}"
            base_url = f"http://127.0.0.1:{port}/"
        if tree not in trees.values():
            built = m.build_tree(args.wheels, tree, base_url)
            print(built.stdout.strip() or built.stderr.strip(), file=sys.stderr)
        trees[name] = tree

    load_before = m.load_average()
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="index-install-"))
    try:
        with (
            m.Nginx(trees["nginx"], state / "nginx", ports["nginx"], args.nginx_workers) as nginx,
            m.TorripServe(trees["torrip-serve"], state / "torrip", ports["torrip-serve"]) as ts,
        ):
            for server in (nginx, ts):
                torrents = page_torrents(server.root)
                for installer in INSTALLERS:
                    run = install(
                        server, installer, reqs, args.python, work, tools, torrents, args.timeout
                    )
                    if run.ok and run.dists != expected:
                        run.problems.append(
                            "installed != wheels of the tree: "
                            f"{sorted(set(run.dists.items()) ^ set(expected.items()))}"
                        )
                    runs.append(run)
                    status = "ok" if run.ok and not run.problems else "FAILED"
                    print(
                        f"{server.name:12} {installer:6} {run.seconds:6.2f}s {status} "
                        f"{len(run.dists)} dists",
                        file=sys.stderr,
                    )
                    for problem in run.problems:
                        print(f"    {problem}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = m.load_average()

    reference = runs[0].dists if runs else {}
    same = all(r.dists == reference for r in runs)
    ok = all(r.ok and not r.problems for r in runs) and same
    print()
    print(f"urls: {args.urls}; load average before {load_before}, after {load_after}")
    print()
    print("| server       | installer | seconds | result | distributions | torrents in report |")
    print("|--------------|-----------|--------:|--------|--------------:|-------------------:|")
    for r in runs:
        result = "ok" if r.ok and not r.problems else "FAILED"
        seen = "" if r.torrents_seen is None else f"{r.torrents_seen}/{len(r.dists)}"
        print(
            f"| {r.server:12} | {r.installer:9} | {r.seconds:7.2f} | {result:6} "
            f"| {len(r.dists):13} | {seen:>18} |"
        )
    print()
    print(
        f"all {len(runs)} venvs hold the same distributions: {same}"
        f" ({len(reference)}, = the {len(expected)} wheels of the tree: {reference == expected})"
    )
    for r in runs:
        if r.torrip_bytes is not None:
            print(f"torrip via {r.server}: bytes by source {r.torrip_bytes}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": c.machine(),
                    "load_average": {"before": load_before, "after": load_after},
                    "torrip": c.git_state(),
                    "pip": c.tool_version([tools["pip"]], "pip"),
                    "uv": c.tool_version([tools["uv"]], "uv"),
                    "nginx": m.nginx_version(),
                    "nginx_workers": args.nginx_workers,
                    "urls": args.urls,
                    "reqs": reqs,
                    "target": args.python,
                    "wheels": {w.name: w.stat().st_size for w in wheels},
                    "same_distributions": same,
                    "runs": [asdict(r) for r in runs],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

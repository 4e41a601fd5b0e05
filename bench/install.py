"""Install benchmark (issue 3): torrip vs uv vs pip installing from a local nginx mirror.

The mirror is a static index built by ``torrip index build`` from the wheels pip downloads
for three requirement sets, served by nginx on 127.0.0.1 with the configuration in
docs/torrent-index.md. Nothing but the ``download`` step touches the network.

    bench/.venv-tools/bin/python bench/install.py download      # once: wheels from PyPI
    bench/.venv-tools/bin/python bench/install.py check [--json OUT]
    bench/.venv-tools/bin/python bench/install.py speed [--runs 3] [--json OUT]
    bench/.venv-tools/bin/python bench/install.py serve [--serve-minutes 30]  # just the mirror

``check`` installs each set into two fresh venvs, with torrip and with pip, and compares what
they installed (distributions, files, file contents and modes, RECORD, REQUESTED), then runs
``pip check`` and imports the top-level packages in torrip's venv.

``speed`` installs each set with torrip, ``uv pip install`` and ``pip install --no-compile``,
interleaved (the order rotates), COLD: fresh venvs and empty caches every time; then WARM for
torrip and uv: fresh venvs, each tool's cache from its first cold run reused. Venvs and caches
are deleted after each set, not between runs, and the file system is synced before every
timed command, so no run pays for the previous one's writeback or deletion.

Every tool does the same job: the timed torrip command writes no ``--report``, as uv and pip
write none (jupyterlab's is 0.8 MB of JSON: 3% of a cold web install, 5-8% of a warm one).
Where torrip's time goes comes from one more torrip install per set, cold and warm, with
``--report``; its time counts in no figure but the phases.

Every subprocess has a timeout; ``--max-minutes`` stops the run (with what it has) at a
deadline; nginx is stopped on exit (and dies with this process if it is killed).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import _common as c

SETS: dict[str, list[str]] = {
    "web": ["flask", "requests", "httpx", "rich", "black", "fastapi"],
    "jupyterlab": ["jupyterlab"],
    "sci": ["pandas", "scipy", "scikit-learn", "matplotlib"],
}
IMPORTS = {
    "web": ["flask", "requests", "httpx", "rich", "black", "fastapi"],
    "jupyterlab": ["jupyterlab"],
    "sci": ["pandas", "scipy", "sklearn", "matplotlib"],
}
# Console scripts run in both venvs (the output must be the same).
SCRIPTS = {
    "web": [["flask", "--version"], ["black", "--version"], ["normalizer", "--version"]],
    "jupyterlab": [["jupyter-lab", "--version"], ["jupyter", "--paths"]],
    "sci": [["f2py", "-v"], ["fonttools", "--help"]],
}
DEFAULT_TARGET_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python"
MIRROR_DIR = c.BENCH_DIR / ".mirror-install"
DEFAULT_PORT = 18573
NGINX = Path("/usr/sbin/nginx")
DOC = c.REPO_DIR / "docs" / "torrent-index.md"
# Files an installer writes for itself; their presence and contents differ by installer.
INSTALLER_FILES = {"INSTALLER", "RECORD", "REQUESTED", "direct_url.json"}
TOOLS = ("torrip", "uv", "pip")


class Deadline(Exception):
    """--max-minutes ran out."""


def log(text: str) -> None:
    print(text, flush=True)


# -- the mirror ----------------------------------------------------------------------------


def download(args: argparse.Namespace) -> int:
    dists = args.mirror / "dists"
    dists.mkdir(parents=True, exist_ok=True)
    for name, reqs in SETS.items():
        cmd = [c.DEFAULT_PIP, "download", "--only-binary", ":all:", "--dest", dists, *reqs]
        res = c.run(cmd, c.clean_env("pip"), args.timeout)
        if not res.ok:
            sys.exit(f"pip download for {name} failed: {res.stderr.strip()[-2000:]}")
        log(f"{name}: {res.stdout.strip().splitlines()[-1]}")
    files = sorted(p.name for p in dists.iterdir() if p.is_file())
    log(f"{len(files)} files in {dists}")
    return 0


def build_mirror(mirror: Path, torrip: Path, port: int, timeout: float) -> Path:
    dists, public = mirror / "dists", mirror / "public"
    if not dists.is_dir() or not any(dists.iterdir()):
        sys.exit(f"no wheels in {dists}: run `{Path(__file__).name} download` first")
    base = f"http://127.0.0.1:{port}/"
    cmd = [torrip, "index", "build", "-q", "--base-url", base, dists, public]
    res = c.run(cmd, c.clean_env("torrip"), timeout)
    if not res.ok:
        sys.exit(f"torrip index build failed: {res.stderr.strip()}")
    return public


def _documented_server_block(root: Path, port: int) -> str:
    match = re.search(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    if not match:
        sys.exit(f"{DOC} has no nginx block")
    block = match.group(1)
    for old in ("listen 80;", "root /srv/pkgs/public;"):
        if old not in block:
            sys.exit(f"the nginx block of {DOC} has no `{old}`")
    block = block.replace("listen 80;", f"listen 127.0.0.1:{port};")
    return block.replace("root /srv/pkgs/public;", f"root {root};")


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the benchmark dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def nginx(root: Path, port: int, state: Path) -> Iterator[str]:
    """nginx serving ``root`` on 127.0.0.1:``port`` with the documented server block."""
    c.require(NGINX)
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(f"127.0.0.1:{port} is in use; pick another --port")
    state.mkdir(parents=True, exist_ok=True)
    temp_paths = "".join(
        f"    {kind}_temp_path {state / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = state / "nginx.conf"
    config.write_text(
        "daemon off;\nmaster_process off;\n"
        f"pid {state / 'nginx.pid'};\nerror_log {state / 'error.log'};\n"
        "events {}\nhttp {\n    access_log off;\n    sendfile on;\n"
        f"{temp_paths}{_documented_server_block(root, port)}}}\n",
        encoding="utf-8",
    )
    error_log = state / "error.log"
    process = subprocess.Popen(
        [NGINX, "-c", config, "-p", state, "-e", error_log],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = error_log.read_text() if error_log.exists() else ""
                    sys.exit(f"nginx did not start: {text}")
                time.sleep(0.05)
        log(f"nginx (pid {process.pid}) serves {root} at http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}/simple/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def warm_page_cache(root: Path) -> None:
    """Read every served file once, so no tool pays for the first read from disk."""
    for path in sorted((root / "files").iterdir()):
        with path.open("rb") as f:
            while f.read(1 << 20):
                pass


# -- installing ----------------------------------------------------------------------------


@dataclass
class Paths:
    torrip: Path
    pip: Path
    uv: Path
    target_python: str


def install_command(
    tool: str,
    paths: Paths,
    index: str,
    venv: Path,
    reqs: list[str],
    cache: Path,
    report: Path | None = None,
) -> tuple[list[str | Path], dict[str, str]]:
    """The command that installs ``reqs`` into ``venv``, and its extra environment;
    ``report``: where torrip writes its ``--report`` (none without)."""
    python = venv / "bin" / "python"
    if tool == "torrip":
        cmd: list[str | Path] = [paths.torrip, "install", "-q", "--index-url", index]
        cmd += ["--python", python, *(["--report", report] if report else []), *reqs]
        return cmd, {"TORRIP_CACHE_DIR": str(cache)}
    if tool == "uv":
        cmd = [paths.uv, "pip", "install", "-q", "--index-url", index, "--python", python, *reqs]
        return cmd, {"UV_CACHE_DIR": str(cache)}
    cmd = [paths.pip, "--python", python, "install", "-q", "--no-compile", "--index-url", index]
    return [*cmd, "--no-cache-dir", *reqs], {}


def site_packages(venv: Path) -> Path:
    (lib,) = (venv / "lib").glob("python3.*")
    return lib / "site-packages"


def dist_infos(venv: Path) -> list[Path]:
    return sorted(site_packages(venv).glob("*.dist-info"))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_dists(venv: Path) -> dict[str, str]:
    """name -> version of every distribution in the venv, from its METADATA."""
    found: dict[str, str] = {}
    for info in dist_infos(venv):
        fields: dict[str, str] = {}
        for line in (info / "METADATA").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        found[_canonical(fields["Name"])] = fields["Version"]
    return found


# -- check ---------------------------------------------------------------------------------


def _ignored(rel: str) -> bool:
    parts = rel.split("/")
    if "__pycache__" in parts or rel.endswith(".pyc"):
        return True
    return len(parts) >= 2 and parts[-2].endswith(".dist-info") and parts[-1] in INSTALLER_FILES


def venv_files(venv: Path) -> dict[str, Path]:
    """Installed files relative to the venv (pyvenv.cfg and the interpreter links left out)."""
    files: dict[str, Path] = {}
    for root, dirs, names in os.walk(venv):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(root) / name
            rel = path.relative_to(venv).as_posix()
            if rel == "pyvenv.cfg" or re.fullmatch(
                r"bin/(python[0-9.]*|activate.*|Activate.ps1)", rel
            ):
                continue
            if not _ignored(rel):
                files[rel] = path
    return files


def _content(path: Path, venv: Path) -> bytes:
    if path.is_symlink():
        return b"symlink:" + os.readlink(path).encode()
    return path.read_bytes().replace(str(venv).encode(), b"<VENV>")


def _launcher_target(content: bytes) -> tuple[str, str, str] | None:
    """(shebang, module, callable) of a console-script launcher; None for other files."""
    text = content.decode("utf-8", "replace")
    shebang = text.split("\n", 1)[0]
    imported = re.search(r"^from (\S+) import (\S+)$", text, re.MULTILINE)
    called = re.search(r"sys\.exit\(([\w.]+)\(\)\)", text)
    if not shebang.startswith("#!<VENV>/bin/python") or not imported or not called:
        return None
    if called.group(1).split(".")[0] != imported.group(2):
        return None
    return shebang, imported.group(1), called.group(1)


def record_problems(venv: Path) -> list[str]:
    """Every RECORD entry must exist with its hash and size; every installed file be listed."""
    sp = site_packages(venv)
    listed: set[str] = set()
    problems: list[str] = []
    for info in dist_infos(venv):
        record = info / "RECORD"
        if not record.is_file():
            problems.append(f"{info.name}: no RECORD")
            continue
        for line in record.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rel, digest, size = line.rsplit(",", 2)
            path = Path(os.path.normpath(sp / rel.strip('"')))
            with contextlib.suppress(ValueError):
                listed.add(path.relative_to(venv).as_posix())
            if not path.is_file():
                problems.append(f"{info.name}: RECORD lists {rel}, which is missing")
            elif digest:
                algo, _, want = digest.partition("=")
                data = path.read_bytes()
                got = urlsafe_b64encode(hashlib.new(algo, data).digest()).rstrip(b"=").decode()
                if got != want or (size and int(size) != len(data)):
                    problems.append(f"{info.name}: {rel} does not match its RECORD entry")
    for rel in venv_files(venv):
        if rel not in listed:
            problems.append(f"{rel} is in no RECORD")
    return problems


def requested(venv: Path) -> set[str]:
    return {
        _canonical(i.name.split("-")[0]) for i in dist_infos(venv) if (i / "REQUESTED").exists()
    }


def installer_names(venv: Path) -> set[str]:
    return {
        (i / "INSTALLER").read_text(encoding="utf-8").strip() if (i / "INSTALLER").exists() else ""
        for i in dist_infos(venv)
    }


@dataclass
class SetCheck:
    name: str
    reqs: list[str]
    differences: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _first_lines(text: str, n: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[:n])


def check_set(name: str, paths: Paths, index: str, work: Path, timeout: float) -> SetCheck:
    reqs = SETS[name]
    result = SetCheck(name, reqs)
    venvs = {tool: work / f"{name}-{tool}" for tool in ("torrip", "pip")}
    for tool, venv in venvs.items():
        c.make_venv(paths.target_python, venv)
        cmd, extra = install_command(
            tool, paths, index, venv, reqs, work / f"cache-{name}-{tool}", work / f"{name}.json"
        )
        res = c.run(cmd, c.clean_env(tool, extra), timeout)
        log(f"  {name}: {tool} install {res.seconds:.1f} s rc={res.returncode}")
        if not res.ok:
            result.failures.append(f"{tool} install rc={res.returncode}: {res.stderr.strip()}")
    if result.failures:
        return result
    t, p = venvs["torrip"], venvs["pip"]

    # Distributions.
    dt_, dp = installed_dists(t), installed_dists(p)
    result.counts = {"torrip": len(dt_), "pip": len(dp)}
    for dist in sorted(set(dt_) | set(dp)):
        if dt_.get(dist) != dp.get(dist):
            result.differences.append(
                f"distribution {dist}: torrip {dt_.get(dist, '-')}, pip {dp.get(dist, '-')}"
            )

    # Files, their contents (the venv's path replaced) and modes.
    ft, fp = venv_files(t), venv_files(p)
    result.counts.update({"files torrip": len(ft), "files pip": len(fp)})
    for rel in sorted(set(ft) - set(fp)):
        result.differences.append(f"file only in torrip's venv: {rel}")
    for rel in sorted(set(fp) - set(ft)):
        result.differences.append(f"file only in pip's venv: {rel}")
    launchers = 0
    for rel in sorted(set(ft) & set(fp)):
        ct, cp = _content(ft[rel], t), _content(fp[rel], p)
        if ct != cp:
            lt, lp = _launcher_target(ct), _launcher_target(cp)
            if lt is not None and lt == lp:
                launchers += 1  # both launch the same entry point, written differently
            else:
                result.differences.append(f"contents differ: {rel}")
    if launchers:
        result.notes.append(
            f"{launchers} console-script launchers in bin/ differ in text only (same shebang, "
            "same entry point; torrip's come from `installer`, pip's from its own template)"
        )
        mt, mp = ft[rel].lstat().st_mode & 0o7777, fp[rel].lstat().st_mode & 0o7777
        if mt != mp:
            result.differences.append(f"mode differs: {rel}: torrip {mt:o}, pip {mp:o}")

    # The installers' own files.
    for tool, venv in venvs.items():
        for problem in record_problems(venv):
            result.differences.append(f"{tool} RECORD: {problem}")
    if requested(t) != requested(p):
        result.differences.append(
            f"REQUESTED: torrip {sorted(requested(t))}, pip {sorted(requested(p))}"
        )
    result.notes.append(f"INSTALLER: torrip {installer_names(t)}, pip {installer_names(p)}")
    for tool, venv in venvs.items():
        urls = [i.name for i in dist_infos(venv) if (i / "direct_url.json").exists()]
        if urls:
            result.differences.append(f"{tool} wrote direct_url.json in {urls}")

    # pip check, imports and console scripts in torrip's venv (scripts in both).
    res = c.run([paths.pip, "--python", t / "bin" / "python", "check"], c.clean_env("pip"), timeout)
    result.notes.append(f"pip check (torrip venv): rc={res.returncode}: {res.stdout.strip()}")
    if not res.ok:
        result.failures.append(f"pip check: {res.stdout.strip()} {res.stderr.strip()}")
    code = f"import {', '.join(IMPORTS[name])}"
    res = c.run([t / "bin" / "python", "-c", code], c.clean_env("none"), timeout)
    result.notes.append(f"`{code}` (torrip venv): rc={res.returncode}")
    if not res.ok:
        result.failures.append(f"`{code}`: {res.stderr.strip()[-1000:]}")
    for script in SCRIPTS[name]:
        outs = {}
        for tool, venv in venvs.items():
            cmd = [venv / "bin" / script[0], *script[1:]]
            r = c.run(cmd, c.clean_env("none"), timeout)
            outs[tool] = (r.returncode, (r.stdout + r.stderr).replace(str(venv), "<VENV>"))
        rc = outs["torrip"][0]
        same = outs["torrip"] == outs["pip"]
        result.notes.append(
            f"`{' '.join(script)}`: torrip rc={rc}, same output as pip's venv: {same}"
        )
        if not same:
            result.differences.append(
                f"`{' '.join(script)}`: torrip rc={rc} {_first_lines(outs['torrip'][1])!r}; "
                f"pip rc={outs['pip'][0]} {_first_lines(outs['pip'][1])!r}"
            )
    return result


def check(args: argparse.Namespace, paths: Paths, index: str, work: Path) -> int:
    results = []
    for name in args.sets:
        set_work = work / name
        set_work.mkdir()
        try:
            results.append(check_set(name, paths, index, set_work, args.timeout))
        finally:
            shutil.rmtree(set_work, ignore_errors=True)
    bad = 0
    for r in results:
        log(f"\n{r.name} ({' '.join(r.reqs)}): {r.counts}")
        for note in r.notes:
            log(f"  {note}")
        for line in r.failures:
            log(f"  FAILED: {line}")
        for line in r.differences:
            log(f"  DIFF: {line}")
        if not r.failures and not r.differences:
            log("  identical")
        bad += bool(r.failures or r.differences)
    if args.json:
        write_json(args, {"check": [r.__dict__ for r in results]})
    return 1 if bad else 0


# -- speed ---------------------------------------------------------------------------------


@dataclass
class Run:
    set: str
    tool: str
    mode: str  # "cold" or "warm"
    seconds: float
    ok: bool
    packages: int
    load: float
    pressure: dict[str, float]  # PSI "some" avg10 of cpu and io at the start, percent
    phases: dict[str, float] = field(default_factory=dict)
    error: str = ""
    repetition: int = 0  # the runs of one repetition ran one after another
    timed: bool = True  # False: a run for torrip's phases (with --report), in no time figure


def _settle(paths: list[Path]) -> None:
    """Delete ``paths``, then flush the file system, outside any timed region.

    Deleting a venv of 11,000 files, and the writeback of the last install, would otherwise
    land in the next tool's time (the file system here is mounted with ``discard``).
    """
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    paths.clear()
    os.sync()


def speed(args: argparse.Namespace, paths: Paths, index: str, work: Path) -> int:
    deadline = time.monotonic() + args.max_minutes * 60
    runs: list[Run] = []
    garbage: list[Path] = []  # deleted between sets, not between runs
    warm = {} if args.warm_start else {"TORRIP_WARM_START": "0"}
    if args.warm_start and not c.warm_start_torrip(paths.torrip, c.clean_env("torrip")):
        log("torrip's warm-start server did not start: torrip runs in-process")

    def timed(
        name: str, tool: str, mode: str, cache: Path, i: int, *, phases: bool = False
    ) -> None:
        """One run; ``phases``: torrip's, with --report, counted in no time figure."""
        if time.monotonic() > deadline:
            raise Deadline
        venv = work / f"venv-{name}-{tool}-{mode}-{i}"
        report = work / f"report-{name}-{tool}-{mode}-{i}.json" if phases else None
        c.make_venv(paths.target_python, venv)
        garbage.append(venv)
        cmd, extra = install_command(tool, paths, index, venv, SETS[name], cache, report)
        os.sync()
        _wait_for_quiet(args.max_cpu_pressure, args.quiet_wait)
        load, pressure = os.getloadavg()[0], _pressure()
        res = c.run(cmd, c.clean_env(tool, {**extra, **warm}), args.timeout)
        run = Run(name, tool, mode, res.seconds, res.ok, len(dist_infos(venv)), load, pressure)
        run.repetition, run.timed = i, not phases
        if res.ok and report is not None:
            data = json.loads(report.read_text(encoding="utf-8"))
            run.phases = dict(data["torrip"].get("seconds", {}))
        if not res.ok:
            run.error = f"rc={res.returncode}: {(res.stderr.strip().splitlines() or ['?'])[-1]}"
        runs.append(run)
        note = f"  FAILED {run.error}" if run.error else ""
        count = "phases" if phases else f"{i + 1}/{args.runs}"
        log(
            f"  {name:<10} {mode} {count:<6} {tool:<6} {res.seconds:6.2f} s "
            f"{run.packages:3d} pkgs load {load:4.2f} psi cpu {pressure.get('cpu', -1):4.1f} "
            f"io {pressure.get('io', -1):4.1f}{note}"
        )
        if report is not None:
            report.unlink(missing_ok=True)

    try:
        for name in args.sets:
            kept: dict[str, Path] = {}  # each tool's cache of its first cold run
            for i in range(args.runs):
                k = i % len(TOOLS)
                for tool in TOOLS[k:] + TOOLS[:k]:
                    cache = work / f"cache-{name}-{tool}-cold-{i}"
                    timed(name, tool, "cold", cache, i)
                    if tool in kept or tool == "pip":
                        garbage.append(cache)
                    else:
                        kept[tool] = cache
            cache = work / f"cache-{name}-torrip-cold-phases"
            garbage.append(cache)
            timed(name, "torrip", "cold", cache, args.runs, phases=True)
            for i in range(args.runs):
                k = i % 2
                for tool in ("torrip", "uv")[k:] + ("torrip", "uv")[:k]:
                    if tool in kept:
                        timed(name, tool, "warm", kept[tool], i)
            if "torrip" in kept:
                timed(name, "torrip", "warm", kept["torrip"], args.runs, phases=True)
            garbage.extend(kept.values())
            _settle(garbage)
    except Deadline:
        log(f"stopped: --max-minutes {args.max_minutes} reached")
    finally:
        _settle(garbage)

    summary = summarize(runs, args.sets)
    print_summary(summary)
    if args.json:
        write_json(args, {"runs": [r.__dict__ for r in runs], "summary": summary})
    return 1 if any(not r.ok for r in runs) else 0


def _pressure() -> dict[str, float]:
    """Linux pressure stall information: % of the last 10 s some task waited for cpu / io."""
    found = {}
    for kind in ("cpu", "io"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            line = Path(f"/proc/pressure/{kind}").read_text().splitlines()[0]
            found[kind] = float(line.split()[1].partition("=")[2])
    return found


def _wait_for_quiet(max_pressure: float | None, wait: float) -> None:
    """Wait (at most ``wait`` seconds) until the cpu pressure is at most ``max_pressure`` %."""
    if max_pressure is None:
        return
    until = time.monotonic() + wait
    while _pressure().get("cpu", 0.0) > max_pressure and time.monotonic() < until:
        time.sleep(2)


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _median_of(entry: dict[str, object], key: str) -> float | None:
    row = entry.get(key)
    value = row.get("median") if isinstance(row, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _paired_ratios(runs: list[Run], name: str, a: str, b: str) -> list[float]:
    """Each repetition's ratio of ``a``'s time to ``b``'s ("torrip cold", "uv cold"): the
    two ran minutes apart at most, so a machine that slows or speeds up for every tool
    (other work on its host) moves both; the ratio of the medians takes each from its
    own runs."""
    found = []
    for i in sorted({r.repetition for r in runs}):
        times = [
            [
                r.seconds
                for r in runs
                if (r.set, f"{r.tool} {r.mode}", r.repetition, r.ok) == (name, key, i, True)
            ]
            for key in (a, b)
        ]
        if times[0] and times[1]:
            found.append(times[0][0] / times[1][0])
    return found


def summarize(runs: list[Run], sets: list[str]) -> dict[str, dict[str, object]]:
    summary: dict[str, dict[str, object]] = {}
    for name in sets:
        entry: dict[str, object] = {}
        for tool in TOOLS:
            for mode in ("cold", "warm"):
                mine = [
                    r for r in runs if (r.set, r.tool, r.mode, r.timed) == (name, tool, mode, True)
                ]
                ok = [r for r in mine if r.ok]
                if not mine:
                    continue
                row: dict[str, object] = {"ok": len(ok), "runs": len(mine)}
                row["packages"] = sorted({r.packages for r in ok})
                if ok:
                    row.update(_stats([r.seconds for r in ok]))
                reported = [
                    r
                    for r in runs
                    if (r.set, r.tool, r.mode, r.ok) == (name, tool, mode, True) and r.phases
                ]
                if reported:
                    phases: dict[str, float] = {}
                    for key in ("inspect", "resolve", "fetch", "unpack", "install"):
                        values = [r.phases[key] for r in reported if key in r.phases]
                        if values:
                            phases[key] = statistics.median(values)
                    rest = [r.seconds - sum(r.phases.values()) for r in reported]
                    phases["other"] = statistics.median(rest)
                    row["phases"] = phases
                entry[f"{tool} {mode}"] = row
        ratios = {}
        for label, a, b in (
            ("torrip/pip cold", "torrip cold", "pip cold"),
            ("torrip/uv cold", "torrip cold", "uv cold"),
            ("torrip/uv warm", "torrip warm", "uv warm"),
        ):
            ma, mb = _median_of(entry, a), _median_of(entry, b)
            if ma is not None and mb:
                ratios[label] = ma / mb
            paired = _paired_ratios(runs, name, a, b)
            if paired:
                ratios[f"{label} paired"] = statistics.median(paired)
        entry["ratios"] = ratios
        summary[name] = entry
    return summary


def print_summary(summary: dict[str, dict[str, object]]) -> None:
    log(f"\n{'set':<11} {'tool':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'ok':>5} pkgs")
    for name, entry in summary.items():
        for key, row in entry.items():
            if key == "ratios" or not isinstance(row, dict):
                continue
            pkgs = ",".join(map(str, row["packages"]))
            ok = f"{row['ok']}/{row['runs']}"
            if "median" in row:
                times = f"{row['median']:9.2f} {row['min']:7.2f} {row['max']:7.2f}"
            else:
                times = f"{'-':>9} {'-':>7} {'-':>7}"
            log(f"{name:<11} {key:<12} {times} {ok:>5} {pkgs}")
    log("")
    for name, entry in summary.items():
        ratios = entry["ratios"]
        assert isinstance(ratios, dict)
        plain = {k: v for k, v in ratios.items() if not k.endswith(" paired")}
        log(
            f"{name:<11} "
            + "  ".join(
                f"{k} {v:.2f}"
                + (f" (paired {ratios[k + ' paired']:.2f})" if k + " paired" in ratios else "")
                for k, v in plain.items()
            )
        )
    log("\ntorrip phases (s; a run with --report): inspect resolve fetch unpack install other")
    for name, entry in summary.items():
        for key in ("torrip cold", "torrip warm"):
            row = entry.get(key)
            if isinstance(row, dict) and "phases" in row:
                ph = row["phases"]
                log(
                    f"{name:<11} {key:<12} "
                    + " ".join(
                        f"{ph.get(k, float('nan')):7.2f}"
                        for k in ("inspect", "resolve", "fetch", "unpack", "install", "other")
                    )
                )


# -- main ----------------------------------------------------------------------------------


def write_json(args: argparse.Namespace, data: dict[str, object]) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    head = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": c.machine(),
        "loadavg_end": os.getloadavg(),
        "command": args.command,
        "sets": {name: SETS[name] for name in args.sets},
        "runs": getattr(args, "runs", None),
        "versions": args.versions,
        "torrip_tree": c.git_state(),
        "work_dir": str(args.work_dir or tempfile.gettempdir()),
    }
    args.json.write_text(json.dumps({**head, **data}, indent=2) + "\n", encoding="utf-8")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so the finally blocks stop nginx and clean up


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("command", choices=["download", "check", "speed", "serve"])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: web,jupyterlab,sci")
    ap.add_argument("--runs", type=int, default=3, help="speed: repetitions (default 3)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write raw results to OUT")
    ap.add_argument("--mirror", type=Path, default=MIRROR_DIR, help="dists/ and public/ live here")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help="nginx on 127.0.0.1:PORT")
    ap.add_argument("--target-python", default=DEFAULT_TARGET_PYTHON, help="base of the venvs")
    ap.add_argument(
        "--work-dir", type=Path, help="where venvs and caches go (default: the system temp dir)"
    )
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command")
    ap.add_argument("--max-minutes", type=float, default=90, help="speed: stop after this")
    ap.add_argument(
        "--max-cpu-pressure",
        type=float,
        metavar="PCT",
        help="speed: before each command wait until /proc/pressure/cpu some avg10 <= PCT "
        "(shared machines), at most --quiet-wait seconds",
    )
    ap.add_argument("--quiet-wait", type=float, default=120, help="seconds (default 120)")
    ap.add_argument("--serve-minutes", type=float, default=30, help="serve: stop after this")
    ap.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_false",
        help="speed: every torrip command in its own process (docs/warm-start.md)",
    )
    ap.add_argument("--torrip", type=Path, default=c.DEFAULT_TORRIP)
    ap.add_argument("--pip", type=Path, default=c.DEFAULT_PIP)
    ap.add_argument("--uv", type=Path, default=c.DEFAULT_UV)
    args = ap.parse_args(argv)
    args.sets = [s for s in args.sets.split(",") if s]
    unknown = [s for s in args.sets if s not in SETS]
    if unknown:
        ap.error(f"unknown sets {unknown}; known: {', '.join(SETS)}")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    c.require(args.torrip, args.pip, args.uv)
    if args.command == "download":
        return download(args)

    paths = Paths(args.torrip, args.pip, args.uv, args.target_python)
    args.versions = {
        "torrip": c.tool_version([args.torrip], "torrip"),
        "pip": c.tool_version([args.pip], "pip").split(" from ")[0],
        "uv": c.tool_version([args.uv], "uv"),
        "nginx": c.run([NGINX, "-v"], c.clean_env("none"), 30).stderr.strip(),
    }
    log(f"{c.machine()}; load {os.getloadavg()}; " + "; ".join(args.versions.values()))
    log(f"torrip tree {c.git_state()}; target {args.target_python}")
    public = build_mirror(args.mirror, args.torrip, args.port, args.timeout)
    warm_page_cache(public)
    work = Path(tempfile.mkdtemp(prefix="torrip-bench-install-", dir=args.work_dir))
    try:
        with nginx(public, args.port, work / "nginx") as index:
            if args.command == "serve":
                log(f"serving {index} for {args.serve_minutes} minutes (Ctrl-C stops)")
                with contextlib.suppress(KeyboardInterrupt):
                    time.sleep(args.serve_minutes * 60)
                return 0
            if args.command == "check":
                return check(args, paths, index, work)
            return speed(args, paths, index, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

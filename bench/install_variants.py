"""Where torrip's install phase goes: the same warm install with parts of it switched off.

Runs ``torrip install`` (warm cache, fresh venv, the mirror of bench/install.py) in torrip's
own interpreter with the transaction patched, and times ``install_transaction``:

- ``default``: as shipped (each wheel's files hard-linked from the unpacked cache, with
  threads when the files are large on average)
- ``serial``: one thread (``install_transaction(parallel=False)``)
- ``threads``: threads whatever the file sizes
- ``copy``: ``--link-mode copy`` (each file copied from the unpacked cache; reflinked where
  the file system can)

The cache is warm: the wheels were downloaded and unpacked by an untimed first run, so
``install_transaction`` only places the files. (Earlier ``nohash`` variants measured the
cost of hashing every member twice, when the install still inflated every wheel.)

    bench/.venv-tools/bin/python bench/install_variants.py [--sets jupyterlab,sci] [--runs 3] \
        [--work-dir /dev/shm] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

import _common as c

import install as bench

VARIANTS = ("default", "serial", "threads", "copy")

# Runs in torrip's interpreter: argv[1] is the variant, the rest torrip's arguments.
HARNESS = r"""
import sys, time
import torrip.install.execute as execute
import torrip.install.transaction as transaction

variant = sys.argv[1]
if "serial" in variant:
    transaction.install_transaction.__kwdefaults__["parallel"] = False
if "threads" in variant:
    transaction._MIN_AVERAGE_FILE_SIZE_FOR_THREADS = 0
timed = {}
original = execute.install_transaction

def install_transaction(*args, **kwargs):
    started = time.perf_counter()
    try:
        return original(*args, **kwargs)
    finally:
        timed["seconds"] = time.perf_counter() - started

execute.install_transaction = install_transaction
from torrip.cli.main import main

sys.argv = ["torrip", *sys.argv[2:]]
try:
    code = main()
except SystemExit as exit:
    code = exit.code
print("%.4f" % timed.get("seconds", -1))
sys.exit(code or 0)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sets", default="jupyterlab,sci", help="comma-separated: web,jupyterlab,sci")
    ap.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write raw results to OUT")
    ap.add_argument("--mirror", type=Path, default=bench.MIRROR_DIR)
    ap.add_argument("--port", type=int, default=bench.DEFAULT_PORT)
    ap.add_argument("--target-python", default=bench.DEFAULT_TARGET_PYTHON)
    ap.add_argument("--work-dir", type=Path, help="venvs and caches (default: system temp)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command")
    ap.add_argument("--torrip-python", type=Path, default=c.REPO_DIR / ".venv" / "bin" / "python")
    ap.add_argument("--torrip", type=Path, default=c.DEFAULT_TORRIP)
    args = ap.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    if any(s not in bench.SETS for s in sets) or args.runs < 1:
        ap.error(f"sets are among {', '.join(bench.SETS)}; --runs at least 1")
    c.require(args.torrip_python, args.torrip)
    signal.signal(signal.SIGTERM, bench._terminate)  # so nginx is stopped
    public = bench.build_mirror(args.mirror, args.torrip, args.port, args.timeout)
    bench.warm_page_cache(public)
    work = Path(tempfile.mkdtemp(prefix="torrip-bench-variants-", dir=args.work_dir))
    times: dict[str, dict[str, list[float]]] = {s: {v: [] for v in VARIANTS} for s in sets}
    failures: list[str] = []
    try:
        with bench.nginx(public, args.port, work / "nginx") as index:
            for name in sets:
                cache = work / f"cache-{name}"
                for i in range(-1, args.runs):  # run -1 fills the cache, untimed
                    for variant in VARIANTS if i >= 0 else ("default",):
                        venv = work / "venv"
                        c.make_venv(args.target_python, venv)
                        cmd: list[str | Path] = [args.torrip_python, "-c", HARNESS, variant]
                        cmd += ["install", "-q", "--no-p2p", "--no-seed", "--index-url", index]
                        if variant == "copy":
                            cmd += ["--link-mode", "copy"]
                        cmd += ["--python", venv / "bin" / "python", *bench.SETS[name]]
                        env = c.clean_env("torrip", {"TORRIP_CACHE_DIR": str(cache)})
                        res = c.run(cmd, env, args.timeout)
                        shutil.rmtree(venv, ignore_errors=True)
                        if not res.ok:
                            failures.append(f"{name} {variant}: {res.stderr.strip()[-500:]}")
                            continue
                        if i >= 0:
                            seconds = float(res.stdout.split()[-1])
                            times[name][variant].append(seconds)
                            bench.log(
                                f"  {name:<10} {i + 1}/{args.runs} {variant:<14} {seconds:6.2f} s"
                            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bench.log(f"\n{'set':<11} {'variant':<14} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name in sets:
        for variant, values in times[name].items():
            if values:
                bench.log(
                    f"{name:<11} {variant:<14} {statistics.median(values):9.2f} "
                    f"{min(values):7.2f} {max(values):7.2f}"
                )
    for line in failures:
        bench.log(f"FAILED: {line}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {"machine": c.machine(), "torrip_tree": c.git_state(), "times": times}
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

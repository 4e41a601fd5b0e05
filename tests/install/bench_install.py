"""Parallel against sequential install_transaction, on ~20 wheels rebuilt from real packages.

    .venv/bin/python tests/install/bench_install.py [--rounds 5] [--compile]

The wheels are rebuilt (make_wheel) from the files of distributions installed in
torrip's own venv, so contents and sizes are those of real projects. Each round
installs all of them into a fresh venv, alternating the two modes.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from packaging.utils import canonicalize_name
from packaging.version import Version

from fixtures.wheels import make_wheel
from torrip.environment import inspect_environment
from torrip.install import transaction
from torrip.install.transaction import WheelToInstall, install_transaction

PROJECTS = [
    "anyio", "certifi", "h11", "h2", "hpack", "httpcore", "httpx", "hyperframe", "idna",
    "iniconfig", "installer", "markdown-it-py", "mdurl", "mypy", "packaging", "pathspec",
    "pip", "platformdirs", "pluggy", "pygments", "pytest", "resolvelib", "rich",
    "typing-extensions",
]  # fmt: skip
# Few files, large compiled ones: where zlib and sha256 (which release the GIL) dominate.
BINARY_PROJECTS = ["libtorrent", "ruff", "uv", "py-spy", "librt", "ast-serialize", "mypy"]


def rebuild_wheels(directory: Path, projects: list[str] = PROJECTS) -> list[WheelToInstall]:
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = site / "site-packages"
    wheels = []
    for dist_info in sorted(site.glob("*.dist-info")):
        name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
        if canonicalize_name(name) not in projects:
            continue
        data_dir = f"{canonicalize_name(name).replace('-', '_')}-{Version(version)}.data"
        files = {}
        with (dist_info / "RECORD").open(newline="") as record:
            for row in csv.reader(record):
                path = (site / row[0]).resolve()
                if ".dist-info/" in row[0] or "__pycache__" in row[0] or not path.is_file():
                    continue
                if row[0].startswith("../../../bin/"):  # a compiled executable, e.g. ruff
                    if path.read_bytes()[:2] == b"#!":
                        continue  # a console script: make_wheel has no entry points here
                    files[f"{data_dir}/scripts/{path.name}"] = path.read_bytes()
                elif not row[0].startswith(".."):
                    files[row[0]] = path.read_bytes()
        wheel = make_wheel(directory, name, version, files=files)
        wheels.append(WheelToInstall(wheel, canonicalize_name(name), Version(version), True))
    return wheels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--binary", action="store_true", help="the few-large-files set")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None, help="where the venvs go (a tmpfs?)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="torrip-bench-", dir=args.dir))
    wheels = rebuild_wheels(work / "wheels", BINARY_PROJECTS if args.binary else PROJECTS)
    if args.workers:
        transaction._MAX_WORKERS = args.workers
    transaction._MIN_AVERAGE_FILE_SIZE_FOR_THREADS = 0  # "parallel": threads whatever the sizes
    total = sum(wheel.path.stat().st_size for wheel in wheels)
    print(f"{len(wheels)} wheels, {total / 1e6:.1f} MB compressed")

    times: dict[str, list[float]] = {"parallel": [], "sequential": []}
    verify: dict[str, list[float]] = {"parallel": [], "sequential": []}
    original_verify = transaction._verify_all
    for number in range(args.rounds):
        for mode in ("parallel", "sequential") if number % 2 == 0 else ("sequential", "parallel"):
            venv = work / f"venv-{mode}-{number}"
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
            environment = inspect_environment(venv / "bin" / "python")
            spent: list[float] = []

            def timed_verify(*a, **k):  # type: ignore[no-untyped-def]
                start = time.perf_counter()
                try:
                    return original_verify(*a, **k)
                finally:
                    spent.append(time.perf_counter() - start)  # noqa: B023

            transaction._verify_all = timed_verify  # type: ignore[assignment]
            result = install_transaction(
                environment, wheels, remove=[], compile=args.compile, parallel=mode == "parallel"
            )
            times[mode].append(result.seconds)
            verify[mode].append(spent[0])
    for mode in times:
        median, fastest = statistics.median(times[mode]), min(times[mode])
        checking = statistics.median(verify[mode])
        print(f"{mode:10}  median {median:.3f} s (min {fastest:.3f}), verify {checking:.3f} s")


if __name__ == "__main__":
    main()

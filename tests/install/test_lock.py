"""The environment lock: processes installing into one environment take turns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from install.support import package_wheel, site_packages
from torrip.environment import TargetEnvironment
from torrip.errors import EnvironmentLockedError
from torrip.install.lock import environment_lock, lock_path

_HOLD = r"""
import json, sys, time
from pathlib import Path
from torrip.environment import inspect_environment
from torrip.install.lock import environment_lock

environment = inspect_environment(Path(sys.argv[1]))
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
with environment_lock(environment):
    start = time.monotonic()
    time.sleep(0.3)
    end = time.monotonic()
print(json.dumps([start, end]))
"""

_INSTALL = r"""
import sys, time
from pathlib import Path
from packaging.utils import canonicalize_name
from packaging.version import Version
from torrip.environment import inspect_environment
from torrip.install.transaction import WheelToInstall, install_transaction

environment = inspect_environment(Path(sys.argv[1]))  # before the other one installs: stale
wheel = Path(sys.argv[4])
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
version = Version(wheel.name.split("-")[1])
install_transaction(
    environment, [WheelToInstall(wheel, canonicalize_name("delta"), version, True)], remove=[]
)
"""


def _run_together(script: str, arguments: list[list[str]], directory: Path) -> list[str]:
    """Start one process per argument list, release them at once, return their outputs."""
    go = directory / "go"
    processes, ready = [], []
    for number, extra in enumerate(arguments):
        flag = directory / f"ready-{number}"
        ready.append(flag)
        command = [sys.executable, "-c", script, extra[0], str(flag), str(go), *extra[1:]]
        processes.append(
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    deadline = time.monotonic() + 20
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        outputs.append(stdout)
    return outputs


def test_two_processes_take_turns(environment: TargetEnvironment, tmp_path: Path) -> None:
    outputs = _run_together(_HOLD, [[str(environment.python)]] * 2, tmp_path)
    (start_a, end_a), (start_b, end_b) = (json.loads(output) for output in outputs)
    assert end_a <= start_b or end_b <= start_a, "the two held the lock at the same time"
    assert not lock_path(environment).exists()


def test_two_concurrent_installs_of_one_project_leave_one_version(
    environment: TargetEnvironment, tmp_path: Path
) -> None:
    one = package_wheel(tmp_path / "one", "delta", "1.0")
    two = package_wheel(tmp_path / "two", "delta", "2.0")
    python = str(environment.python)
    _run_together(_INSTALL, [[python, str(one)], [python, str(two)]], tmp_path)

    site = site_packages(environment)
    dist_infos = sorted(path.name for path in site.glob("delta-*.dist-info"))
    assert len(dist_infos) == 1, dist_infos
    winner = dist_infos[0].removesuffix(".dist-info").split("-")[1]
    loser = "1_0" if winner == "2.0" else "2_0"
    assert (site / f"delta/sub/only_in_delta_{winner.replace('.', '_')}.py").exists()
    assert not (site / f"delta/sub/only_in_delta_{loser}.py").exists()
    assert [path.name for path in site.iterdir() if path.name.startswith(".torrip")] == []
    version = subprocess.run(
        [python, "-c", "import delta; print(delta.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version == winner


def test_timeout_names_the_holder(environment: TargetEnvironment) -> None:
    with environment_lock(environment):
        started = time.monotonic()
        with (
            pytest.raises(EnvironmentLockedError, match=f"torrip process {os.getpid()}"),
            environment_lock(environment, timeout=0.2),
        ):
            pass  # pragma: no cover
        assert 0.2 <= time.monotonic() - started < 2
    with environment_lock(environment, timeout=0):
        pass  # released: free again
    assert not lock_path(environment).exists()

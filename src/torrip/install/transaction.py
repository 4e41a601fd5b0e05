"""Install a set of wheels and remove old versions as one transaction: all of it, or nothing.

Steps: verify every wheel (``safety``) before touching anything; take the
environment lock; re-read what is installed; move the old versions into a stash
(``uninstall``); install the wheels (in parallel unless two write the same
file); byte-compile with the target interpreter if asked; then commit (delete
the stash). If any step fails, or the user interrupts, the files written are
deleted and the stash is moved back, so the environment ends byte for byte as
it began.

Usage::

    result = install_transaction(
        environment,
        [WheelToInstall(path, canonicalize_name("idna"), Version("3.7"), requested=True)],
        remove=plan.remove,
    )
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from torrip.environment import InstalledDistribution, TargetEnvironment
from torrip.errors import InstallError, TorripError, UnsafeWheelError
from torrip.install.lock import environment_lock
from torrip.install.safety import VerifiedWheel, verify_wheel
from torrip.install.uninstall import Stash, uninstall
from torrip.install.wheel import (
    InstalledWheel,
    TransactionCancelled,
    WriteJournal,
    compile_bytecode,
    install_wheel,
    launcher_kind,
)

__all__ = ["TransactionResult", "WheelToInstall", "install_transaction"]

# Installing is mostly zlib, hashing and file writes, which release the GIL; more threads than
# this only contend for the disk.
_MAX_WORKERS = 8


@dataclass(frozen=True)
class WheelToInstall:
    """A downloaded, hash-checked wheel and how it is to be recorded."""

    path: Path
    name: NormalizedName
    version: Version
    requested: bool
    """Asked for by the user (writes REQUESTED), not only pulled in as a dependency."""
    direct_url: dict[str, Any] | None = None
    """PEP 610 data, written as direct_url.json, for wheels not from an index."""


@dataclass(frozen=True)
class TransactionResult:
    installed: tuple[tuple[str, str], ...]
    """(name, version) of each wheel installed, in the order given."""
    removed: tuple[tuple[str, str], ...]
    """(name, version) of each distribution removed first (old versions, reinstalls)."""
    seconds: float


def install_transaction(
    environment: TargetEnvironment,
    wheels: Sequence[WheelToInstall],
    remove: Sequence[InstalledDistribution],
    *,
    compile: bool = False,
    parallel: bool = True,
) -> TransactionResult:
    """Remove ``remove`` and install ``wheels`` into ``environment``, all or nothing.

    An installed distribution with the name of a wheel is removed too, even if not in
    ``remove``; one outside the environment (a system site-packages) is left alone and
    shadowed, as pip does. Raises UnsafeWheelError (nothing touched), UninstallError or
    InstallError (everything put back).
    """
    started = time.perf_counter()
    _refuse_duplicates(wheels)
    verified = _verify_all(environment, wheels, parallel=parallel)
    with environment_lock(environment):
        current = environment.refresh_installed()
        outgoing = _installed_to_remove(current, wheels, remove)
        stash = Stash.create(current)
        journal = WriteJournal(displace=stash.put)
        try:
            uninstall(current, [dist.name for dist in outgoing], stash=stash.directory)
            installed = _install_all(current, wheels, verified, journal, parallel=parallel)
            if compile:
                compile_bytecode(current.python, installed, journal)
        except BaseException as error:
            problems = journal.undo()
            problems += stash.restore()
            if problems:
                raise InstallError(
                    f"{error}\nand the rollback could not put back everything:"
                    + "".join(f"\n    {problem}" for problem in problems[:10]),
                    hint=f"Files that were moved aside are kept in {stash.directory}.",
                ) from error
            if isinstance(error, TorripError) or not isinstance(error, Exception):
                raise
            raise InstallError(f"install failed: {error}") from error
        stash.discard()
    return TransactionResult(
        installed=tuple((wheel.name, str(wheel.version)) for wheel in wheels),
        removed=tuple((dist.name, str(dist.version)) for dist in outgoing),
        seconds=time.perf_counter() - started,
    )


def _refuse_duplicates(wheels: Sequence[WheelToInstall]) -> None:
    counts = Counter(wheel.name for wheel in wheels)
    twice = sorted(name for name, count in counts.items() if count > 1)
    if twice:
        raise InstallError(
            f"more than one wheel of {', '.join(twice)} in one install",
            hint="Install one version of each project.",
        )


def _scheme_for(environment: TargetEnvironment, name: str) -> dict[str, Path]:
    """The environment's scheme, with headers in their own directory per project, as pip."""
    scheme = {key: Path(value) for key, value in environment.scheme.items()}
    scheme["headers"] = scheme["headers"] / name
    return scheme


def _verify_all(
    environment: TargetEnvironment, wheels: Sequence[WheelToInstall], *, parallel: bool
) -> list[VerifiedWheel]:
    def verify(wheel: WheelToInstall) -> VerifiedWheel:
        verified = verify_wheel(wheel.path, _scheme_for(environment, wheel.name))
        if canonicalize_name(verified.name) != wheel.name:
            raise UnsafeWheelError(wheel.path, None, f"it is {verified.name}, not {wheel.name}")
        try:
            version = Version(verified.version)
        except InvalidVersion:
            version = None
        if version != wheel.version:
            raise UnsafeWheelError(
                wheel.path, None, f"it is version {verified.version}, not {wheel.version}"
            )
        return verified

    if not parallel or len(wheels) < 2:
        return [verify(wheel) for wheel in wheels]
    with ThreadPoolExecutor(max_workers=min(len(wheels), _MAX_WORKERS)) as pool:
        return list(pool.map(verify, wheels))  # raises the first failure in input order


def _installed_to_remove(
    environment: TargetEnvironment,
    wheels: Sequence[WheelToInstall],
    remove: Sequence[InstalledDistribution],
) -> list[InstalledDistribution]:
    """What is installed now under the names of ``remove`` and ``wheels``, inside the env."""
    site_packages = {os.path.realpath(environment.scheme[key]) for key in ("purelib", "platlib")}
    names = dict.fromkeys([*(dist.name for dist in remove), *(wheel.name for wheel in wheels)])
    outgoing = []
    for name in names:
        dist = environment.installed.get(name)
        if dist is not None and os.path.realpath(dist.location) in site_packages:
            outgoing.append(dist)
    return outgoing


def _install_all(
    environment: TargetEnvironment,
    wheels: Sequence[WheelToInstall],
    verified: Sequence[VerifiedWheel],
    journal: WriteJournal,
    *,
    parallel: bool,
) -> list[InstalledWheel]:
    script_kind = launcher_kind(environment.markers)

    def install_one(index: int) -> InstalledWheel:
        wheel = wheels[index]
        try:
            return install_wheel(
                verified[index],
                _scheme_for(environment, wheel.name),
                interpreter=environment.python,
                script_kind=script_kind,
                journal=journal,
                requested=wheel.requested,
                direct_url=wheel.direct_url,
            )
        except (TorripError, TransactionCancelled):
            raise
        except Exception as error:
            raise InstallError(
                f"installing {wheel.path.name} failed: {error}", wheel=wheel.path
            ) from error

    indices = range(len(wheels))
    if not parallel or len(wheels) < 2 or _write_same_file(verified):
        return [install_one(index) for index in indices]
    with ThreadPoolExecutor(max_workers=min(len(wheels), _MAX_WORKERS)) as pool:
        futures = [pool.submit(install_one, index) for index in indices]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed:
            journal.cancelled.set()  # the others stop at their next file
            for future in futures:
                future.cancel()
            wait(futures)
            first = next(
                (f for f in failed if not isinstance(f.exception(), TransactionCancelled)),
                failed[0],
            )
            first.result()
        return [future.result() for future in futures]


def _write_same_file(verified: Sequence[VerifiedWheel]) -> bool:
    """Whether two wheels write one path: then order matters (the last wins, as in pip)."""
    seen: set[Path] = set()
    for wheel in verified:
        if not seen.isdisjoint(wheel.destinations):
            return True
        seen.update(wheel.destinations)
    return False

"""Install a set of wheels and remove old versions as one transaction: all of it, or nothing.

Steps: have every wheel unpacked and checked (``unpacked``, ``safety``; the caller
usually did it while downloading) and placed into the scheme, before touching anything;
take the environment lock; re-read what is installed; move the old versions into a stash
(``uninstall``); link the wheels' files into place (``wheel``; in parallel if that pays
and no two write the same file); byte-compile with the target interpreter if asked;
then commit (delete the stash). If any step fails, or the user interrupts, the files written are
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

import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, NamedTuple

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from torrip.cache import UnpackedCache, sha256_of
from torrip.environment import InstalledDistribution, TargetEnvironment
from torrip.errors import InstallError, TorripError, UnsafeWheelError
from torrip.install.lock import environment_lock
from torrip.install.placing import FileToPlace, LinkMode, Placement
from torrip.install.safety import VerifiedWheel
from torrip.install.signals import interrupts_deferred, terminations_interrupt
from torrip.install.uninstall import Stash, uninstall
from torrip.install.unpacked import UnpackedWheel, unpack_wheel
from torrip.install.wheel import (
    InstalledWheel,
    TransactionCancelled,
    WriteJournal,
    compile_bytecode,
    install_wheel,
    launcher_kind,
)

__all__ = ["TransactionResult", "WheelToInstall", "install_transaction"]

# One thread per core, at most 8: the work is part Python (GIL-bound), part copying and file
# system calls (which release it). More threads than cores measured no faster.
_MAX_WORKERS = max(1, min(os.cpu_count() or 1, 8))
# Threads pay only when large files make copying (GIL released) most of the work; with many
# small files, or files hard-linked, the Python per file dominates and threads contend for
# the GIL. Measured when
# installs still inflated every file (bench/install_variants.py, warm, tmpfs, 2 cores; one
# thread / two): jupyterlab (11,557 files, 12 KiB on average) 1.72 / 2.22 s; sci (7,215
# files, 46 KiB on average) 2.11 / 1.88 s. Hard links (the default) made it moot: one thread
# / two, tmpfs, jupyterlab 0.23 / 0.26 s, sci 0.24 / 0.21 s; on disk within noise.
_MIN_AVERAGE_FILE_SIZE_FOR_THREADS = 32 * 1024


class WheelToInstall(NamedTuple):
    """A downloaded, hash-checked wheel and how it is to be recorded."""

    path: Path
    name: NormalizedName
    version: Version
    requested: bool
    """Asked for by the user (writes REQUESTED), not only pulled in as a dependency."""
    direct_url: dict[str, Any] | None = None
    """PEP 610 data, written as direct_url.json, for wheels not from an index."""
    unpacked: UnpackedWheel | None = None
    """The wheel unpacked in the cache (``unpacked.unpack_wheel``); when None, the
    transaction unpacks it into a temporary folder first."""


class TransactionResult(NamedTuple):
    installed: tuple[tuple[str, str], ...]
    """(name, version) of each wheel installed, in the order given."""
    removed: tuple[tuple[str, str], ...]
    """(name, version) of each distribution removed first (old versions, reinstalls)."""
    seconds: float
    files_linked: int = 0
    """Files hard-linked from the unpacked cache."""
    files_copied: int = 0
    """Files copied from it (``link_mode="copy"``, or where links cannot be made)."""


def install_transaction(
    environment: TargetEnvironment,
    wheels: Sequence[WheelToInstall],
    remove: Sequence[InstalledDistribution],
    *,
    compile: bool = False,
    parallel: bool = True,
    link_mode: LinkMode = "hardlink",
) -> TransactionResult:
    """Remove ``remove`` and install ``wheels`` into ``environment``, all or nothing.

    An installed distribution with the name of a wheel is removed too, even if not in
    ``remove``; one outside the environment (a system site-packages) is left alone and
    shadowed, as pip does. Raises UnsafeWheelError (nothing touched), UninstallError or
    InstallError (everything put back).

    ``compile`` writes bytecode with the target interpreter. ``parallel`` compiles with one
    target process per core (measured: 24 wheels, 2,900 files, 2 cores: 2.6 s against
    4.1 s) and installs with one thread per core when the files are large enough for
    threads to pay (``_MIN_AVERAGE_FILE_SIZE_FOR_THREADS``); wheels that write the same
    file are installed in order. Wheels are verified one after another.

    Files are hard-linked from the wheels' unpacked trees (``link_mode="copy"`` copies
    them). A wheel whose contents do not match its RECORD hashes was refused when it was
    unpacked, so UnsafeWheelError always comes before anything is touched.
    """
    started = time.perf_counter()
    _refuse_duplicates(wheels)
    with contextlib.ExitStack() as temporary:
        verified = _verify_all(environment, wheels, temporary)
        return _install_verified(
            environment,
            wheels,
            verified,
            remove,
            compile=compile,
            parallel=parallel,
            link_mode=link_mode,
            started=started,
        )


def _install_verified(
    environment: TargetEnvironment,
    wheels: Sequence[WheelToInstall],
    verified: Sequence[VerifiedWheel],
    remove: Sequence[InstalledDistribution],
    *,
    compile: bool,
    parallel: bool,
    link_mode: LinkMode,
    started: float,
) -> TransactionResult:
    with environment_lock(environment), terminations_interrupt():
        # What another installer did meanwhile (it adds or removes .dist-info folders).
        current = environment.refresh_installed(if_listing_changed=True)
        outgoing = _installed_to_remove(current, wheels, remove)
        stash = Stash.create(current)
        journal = WriteJournal(displace=stash.put)
        try:
            uninstall(current, [dist.name for dist in outgoing], stash=stash.directory)
            installed, linked, copied = _install_all(
                current, wheels, verified, journal, parallel=parallel, link_mode=link_mode
            )
            if compile:
                workers = _MAX_WORKERS if parallel else 1
                compile_bytecode(current.python, installed, journal, workers=workers)
        except BaseException as error:
            with interrupts_deferred():  # a second Ctrl-C waits for the environment
                not_deleted = journal.undo()
                not_restored = stash.restore()  # keeps the stash if anything stays in it
            if not_deleted or not_restored:
                problems = [*not_deleted, *not_restored]
                raise InstallError(
                    f"{error}\nand the rollback could not put back everything:"
                    + "".join(f"\n    {problem}" for problem in problems[:10]),
                    hint=f"What could not be moved back is in {stash.directory}."
                    if not_restored
                    else "Delete the files listed above; they are from the failed install.",
                ) from error
            if isinstance(error, TorripError) or not isinstance(error, Exception):
                raise
            raise InstallError(f"install failed: {error}") from error
        with interrupts_deferred():
            stash.discard()
    return TransactionResult(
        installed=tuple((wheel.name, str(wheel.version)) for wheel in wheels),
        removed=tuple((dist.name, str(dist.version)) for dist in outgoing),
        seconds=time.perf_counter() - started,
        files_linked=linked,
        files_copied=copied,
    )


def _refuse_duplicates(wheels: Sequence[WheelToInstall]) -> None:
    counts = Counter(wheel.name for wheel in wheels)
    twice = sorted(name for name, count in counts.items() if count > 1)
    if twice:
        raise InstallError(
            f"more than one wheel of {', '.join(twice)} in one install",
            hint="Install one version of each project.",
        )


def _scheme_for(environment: TargetEnvironment, name: str) -> dict[str, str]:
    """The environment's scheme, with headers in their own directory per project, as pip."""
    scheme = {key: os.fspath(value) for key, value in environment.scheme.items()}
    scheme["headers"] = os.path.join(scheme["headers"], name)
    return scheme


def _verify_all(
    environment: TargetEnvironment,
    wheels: Sequence[WheelToInstall],
    temporary: contextlib.ExitStack,
) -> list[VerifiedWheel]:
    """Every wheel unpacked (if it was not: into a folder that ``temporary`` deletes) and
    placed into the scheme, in order."""
    store: UnpackedCache | None = None
    verified = []
    for wheel in wheels:
        unpacked = wheel.unpacked
        if unpacked is None:
            if store is None:
                folder = temporary.enter_context(tempfile.TemporaryDirectory(prefix="torrip-"))
                store = UnpackedCache(Path(folder))
            unpacked = unpack_wheel(store, wheel.path, sha256_of(wheel.path))
        verified.append(_verify(environment, wheel, unpacked))
    return verified


def _verify(
    environment: TargetEnvironment, wheel: WheelToInstall, unpacked: UnpackedWheel
) -> VerifiedWheel:
    verified = unpacked.place(_scheme_for(environment, wheel.name))
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
    link_mode: LinkMode,
) -> tuple[list[InstalledWheel], int, int]:
    """The wheels installed, and how many of their files were linked and how many copied."""
    script_kind = launcher_kind(environment.markers)

    def install_one(index: int, deferred: list[FileToPlace] | None = None) -> InstalledWheel:
        wheel = wheels[index]
        try:
            return install_wheel(
                verified[index],
                interpreter=environment.python,
                script_kind=script_kind,
                journal=journal,
                requested=wheel.requested,
                direct_url=wheel.direct_url,
                link_mode=link_mode,
                deferred=deferred,
            )
        except (TorripError, TransactionCancelled):
            raise
        except Exception as error:
            raise InstallError(
                f"installing {wheel.path.name} failed: {error}", wheel=wheel.path
            ) from error

    indices = range(len(wheels))
    if not parallel or _write_same_file(verified):
        installed = [install_one(index) for index in indices]
    elif _links_expected(environment, verified, link_mode):
        # Each wheel's paths claimed and its generated files written here, its links made
        # here or by a fork meanwhile (``placing``).
        total = sum(len(wheel.layout.files) for wheel in verified)
        installed = []
        with Placement(link_mode, total) as placement:
            for index in indices:
                deferred: list[FileToPlace] = []
                installed.append(install_one(index, deferred))
                placement.add(deferred)
            linked, copied = placement.finish()
        return installed, linked, copied
    elif len(wheels) < 2 or _average_file_size(verified) < _MIN_AVERAGE_FILE_SIZE_FOR_THREADS:
        installed = [install_one(index) for index in indices]
    else:
        installed = _install_on_threads(install_one, indices, journal)
    return (
        installed,
        sum(wheel.linked for wheel in installed),
        sum(wheel.copied for wheel in installed),
    )


def _install_on_threads(
    install_one: Callable[[int], InstalledWheel], indices: range, journal: WriteJournal
) -> list[InstalledWheel]:
    with ThreadPoolExecutor(max_workers=min(len(indices), _MAX_WORKERS)) as pool:
        futures = [pool.submit(install_one, index) for index in indices]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # interrupted: stop the workers before rolling back
            journal.cancelled.set()
            for future in futures:
                future.cancel()
            raise
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


def _links_expected(
    environment: TargetEnvironment, verified: Sequence[VerifiedWheel], link_mode: LinkMode
) -> bool:
    """Whether the files will be hard-linked (the cache and the environment on one file
    system): then threads only contend for the GIL between one link and the next (the
    scientific set, 7,215 files, warm: install phase 78 ms in one thread, 87 ms in two),
    and a forked process shares them better (``placing``)."""
    if link_mode != "hardlink":
        return False
    trees = {wheel.tree for wheel in verified if wheel.tree is not None}
    try:
        devices = {os.stat(tree).st_dev for tree in trees}
        devices.add(os.stat(environment.scheme["purelib"]).st_dev)
    except (OSError, KeyError):
        return False
    return len(devices) == 1


def _average_file_size(verified: Sequence[VerifiedWheel]) -> float:
    """Uncompressed bytes per archive file, over all the wheels (RECORD sizes)."""
    files = [file.size for wheel in verified for file in wheel.layout.files]
    return sum(files) / len(files) if files else 0.0


def _write_same_file(verified: Sequence[VerifiedWheel]) -> bool:
    """Whether two wheels write one path: then order matters (the last wins, as in pip)."""
    seen: set[str] = set()
    for wheel in verified:
        if not seen.isdisjoint(wheel.destinations):
            return True
        seen.update(wheel.destinations)
    return False

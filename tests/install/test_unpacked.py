"""The unpacked-wheel cache: unpacked once and checked, published whole, reused, renewed when
changed, shared by threads, and unsafe wheels refused with nothing kept."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest

import torrip.install.inflate as inflate_module
import torrip.install.safety as safety_module
import torrip.install.unpacked as unpacked_module
from fixtures.wheels import make_wheel
from install.support import make_executable, package_wheel, rewrite_wheel, snapshot
from torrip.cache import UnpackedCache, sha256_of
from torrip.errors import UnsafeWheelError
from torrip.install.unpacked import (
    FORK_MIN_BYTES,
    Unpacker,
    forked_workers,
    open_unpacked,
    unpack_wheel,
    worth_processes,
)


def _unpack(store: UnpackedCache, wheel: Path) -> unpacked_module.UnpackedWheel:
    return unpack_wheel(store, wheel, sha256_of(wheel))


def test_every_file_is_unpacked_checked_and_published(tmp_path: Path) -> None:
    wheel = package_wheel(
        tmp_path,
        "alpha",
        "1.0",
        extra_files={"alpha-1.0.data/scripts/tool": b"#!python\nprint('tool')\n"},
    )
    wheel = make_executable(wheel, "alpha-1.0.data/scripts/tool")
    store = UnpackedCache(tmp_path / "cache")
    unpacked = _unpack(store, wheel)

    assert unpacked.tree == store.entry_dir(sha256_of(wheel)) / "tree"
    assert unpacked.tree.parent.parent.parent == tmp_path / "cache" / "unpacked-v1"
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if not name.endswith("/RECORD")]
        for member in members:
            assert (unpacked.tree / member).read_bytes() == archive.read(member)
    assert sorted(file.member for file in unpacked.layout.files) == sorted(members)
    assert all(file.digest.startswith("sha256=") for file in unpacked.layout.files)
    assert os.access(unpacked.tree / "alpha-1.0.data/scripts/tool", os.X_OK)
    assert not os.access(unpacked.tree / "alpha/core.py", os.X_OK)
    assert [script.name for script in unpacked.layout.scripts] == ["alpha-cli"]
    assert list((store.store / "tmp").iterdir()) == []  # the staging folder was renamed


def test_a_second_unpack_reads_the_cache_not_the_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = package_wheel(tmp_path, "beta", "1.0")
    store = UnpackedCache(tmp_path / "cache")
    first = _unpack(store, wheel)

    def no_unpacking(*args: object) -> None:
        raise AssertionError("unpacked twice")

    monkeypatch.setattr(unpacked_module, "_unpack_into", no_unpacking)
    again = _unpack(store, wheel)
    assert again.tree == first.tree and again.layout == first.layout


@pytest.mark.parametrize("stat_by", ["folder", "path"])
@pytest.mark.parametrize("damage", ["edited", "deleted", "manifest"])
def test_a_changed_tree_is_unpacked_again(
    damage: str, stat_by: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if stat_by == "path":  # as where os.stat takes no dir_fd (Windows)
        monkeypatch.setattr(os, "supports_dir_fd", set())
    wheel = package_wheel(tmp_path, "gamma", "1.0")
    store = UnpackedCache(tmp_path / "cache")
    unpacked = _unpack(store, wheel)
    core = unpacked.tree / "gamma/core.py"
    original = core.read_bytes()
    if damage == "edited":  # as an in-place edit through a hard link in some site-packages
        with core.open("ab") as file:
            file.write(b"# edited\n")
    elif damage == "deleted":
        core.unlink()
    else:
        (unpacked.tree.parent / ".manifest.json").write_text("{not json", encoding="utf-8")

    assert open_unpacked(store, wheel, sha256_of(wheel)) is None
    renewed = _unpack(store, wheel)
    assert (renewed.tree / "gamma/core.py").read_bytes() == original
    assert open_unpacked(store, wheel, sha256_of(wheel)) is not None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"evil/__init__.py": b'__version__ = "6.6"\n'}, "sha256 does not match RECORD"),
        ({"evil/__init__.py": b"import os  # more\n"}, "RECORD says"),
    ],
    ids=["hash", "size"],
)
def test_a_wheel_not_matching_its_record_leaves_nothing(
    change: dict[str, bytes], reason: str, tmp_path: Path
) -> None:
    wheel = rewrite_wheel(make_wheel(tmp_path, "evil", "1.0"), change)
    store = UnpackedCache(tmp_path / "cache")
    with pytest.raises(UnsafeWheelError, match=reason) as refused:
        _unpack(store, wheel)
    assert refused.value.entry == "evil/__init__.py"
    assert not store.entry_dir(sha256_of(wheel)).exists()
    assert list((store.store / "tmp").iterdir()) == []


@pytest.fixture(params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with ISA-L's inflate (the default where its wheel exists) and zlib's."""
    if request.param == "zlib":
        monkeypatch.setattr(inflate_module, "_implementation", zlib)
    else:
        isal_zlib = pytest.importorskip("isal.isal_zlib")  # a dependency on this platform
        assert inflate_module._implementation is isal_zlib
    return str(request.param)


@pytest.fixture(params=["whole", "pread", "zipfile"])
def wheel_reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with the wheel read whole into memory (the default for wheels up to
    64 MiB), read by pread member by member (larger ones), and read by zipfile (no pread)."""
    if request.param != "whole":
        monkeypatch.setattr(safety_module, "_IN_MEMORY_LIMIT", -1)
    if request.param == "zipfile":
        monkeypatch.setattr(safety_module, "_pread", None)
    return str(request.param)


@pytest.mark.parametrize("whole_read_limit", [8 << 20, 1024], ids=["in-memory", "streamed"])
def test_members_inflate_exactly_by_either_path(
    whole_read_limit: int,
    inflater: str,
    wheel_reading: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(unpacked_module, "_WHOLE_READ_LIMIT", whole_read_limit)
    files = {
        # Inflates to many times the 1 MiB read chunk from one chunk of input.
        "big/zeros.bin": bytes(5 << 20) + b"end",
        "big/random.bin": os.urandom((3 << 20) + 17),
        "big/small.py": b"x = 1\n",
        "big/empty.txt": b"",
    }
    wheel = make_wheel(tmp_path, "big", "1.0", files=files)
    unpacked = _unpack(UnpackedCache(tmp_path / "cache"), wheel)
    for member, content in files.items():
        assert (unpacked.tree / member).read_bytes() == content


@pytest.mark.parametrize("whole_read_limit", [8 << 20, 1024], ids=["in-memory", "streamed"])
def test_a_corrupt_member_is_refused(
    whole_read_limit: int,
    inflater: str,
    wheel_reading: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(unpacked_module, "_WHOLE_READ_LIMIT", whole_read_limit)
    wheel = make_wheel(tmp_path, "broken", "1.0", files={"broken/data.bin": os.urandom(4096)})
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("broken/data.bin")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data = bytearray(wheel.read_bytes())
    for offset in range(start + 10, start + 60):  # garble the deflate stream
        data[offset] ^= 0xFF
    wheel.write_bytes(bytes(data))
    store = UnpackedCache(tmp_path / "cache")
    with pytest.raises(UnsafeWheelError) as refused:
        _unpack(store, wheel)
    assert refused.value.entry == "broken/data.bin"
    assert "corrupt zip member" in refused.value.reason or "RECORD" in refused.value.reason
    assert not store.entry_dir(sha256_of(wheel)).exists()


def _rewritten_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, bytes, UnpackedCache]:
    """A wheel that is changed in place (same inode) right after its checks pass."""
    # Larger than any read buffer, so what is read after the check comes from the disk.
    original = os.urandom(1 << 18)
    wheel = package_wheel(tmp_path, "toctou", "1.0", extra_files={"toctou/blob.bin": original})
    real_open = unpacked_module.open_checked_wheel

    def open_then_swap(path: Path):  # type: ignore[no-untyped-def]
        context = real_open(path)
        checked = context.__enter__()
        rewrite_wheel(path, {"toctou/blob.bin": os.urandom(1 << 18)})
        return _Entered(context, checked)

    monkeypatch.setattr(unpacked_module, "open_checked_wheel", open_then_swap)
    return wheel, original, UnpackedCache(tmp_path / "cache")


def test_the_wheel_rewritten_while_unpacking_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel read member by member (a large one): the bytes read after the check are
    compared with the RECORD checked."""
    monkeypatch.setattr(safety_module, "_IN_MEMORY_LIMIT", -1)
    wheel, _, store = _rewritten_after_the_check(tmp_path, monkeypatch)
    sha256 = sha256_of(wheel)
    with pytest.raises(UnsafeWheelError, match="toctou"):
        unpack_wheel(store, wheel, sha256)
    assert not store.entry_dir(sha256).exists()


def test_a_wheel_read_whole_unpacks_the_bytes_it_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel read into memory once: a change on disk after the check is never read."""
    wheel, original, store = _rewritten_after_the_check(tmp_path, monkeypatch)
    sha256 = sha256_of(wheel)
    unpacked = unpack_wheel(store, wheel, sha256)
    assert (unpacked.tree / "toctou" / "blob.bin").read_bytes() == original


def test_threads_unpack_a_wheel_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = package_wheel(tmp_path, "delta", "1.0")
    store = UnpackedCache(tmp_path / "cache")
    calls = []
    real = unpacked_module._unpack_into

    def counting(*args):  # type: ignore[no-untyped-def]
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(unpacked_module, "_unpack_into", counting)
    barrier = threading.Barrier(4)
    trees: list[Path] = []

    def unpack() -> None:
        barrier.wait()
        trees.append(_unpack(store, wheel).tree)

    threads = [threading.Thread(target=unpack) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(set(trees)) == 1 and len(trees) == 4


def test_a_lost_race_keeps_the_first_entry(tmp_path: Path) -> None:
    """Two processes without locks (or a lock-less file system): the first rename wins."""
    wheel = package_wheel(tmp_path, "epsilon", "1.0")
    sha256 = sha256_of(wheel)
    store = UnpackedCache(tmp_path / "cache")
    first = _unpack(store, wheel)
    before = snapshot(first.tree.parent)
    with store.staging(sha256) as staging:
        (staging / "tree").mkdir()
        (staging / "tree" / "other").write_bytes(b"late")
        assert store.publish(staging, sha256) == first.tree.parent
        assert not staging.exists()
    assert snapshot(first.tree.parent) == before


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_the_unpacker_works_in_the_background_and_reports_errors(
    processes: bool, tmp_path: Path
) -> None:
    good = package_wheel(tmp_path, "zeta", "1.0")
    evil = rewrite_wheel(make_wheel(tmp_path, "evil", "1.0"), {"evil/extra.py": b"x = 1\n"})
    store = UnpackedCache(tmp_path / "cache")
    with Unpacker(store, workers=2, processes=processes) as unpacker:
        unpacker.submit(good, sha256_of(good))
        unpacker.submit(good, sha256_of(good))  # once is enough
        unpacker.submit(evil, sha256_of(evil))
        assert unpacker.result(good, sha256_of(good)).layout.name == "zeta"
        with pytest.raises(UnsafeWheelError, match="not listed in RECORD"):
            unpacker.result(evil, sha256_of(evil))
        # Never submitted: unpacked on request. The same bytes under another name are
        # named as asked.
        renamed = tmp_path / "other" / good.name
        renamed.parent.mkdir()
        renamed.write_bytes(good.read_bytes())
        assert unpacker.result(renamed, sha256_of(good)).layout.path == renamed
        assert unpacker.uses_processes == processes


def test_worker_processes_unpack_what_threads_do(tmp_path: Path) -> None:
    wheels = [package_wheel(tmp_path / name, name, "1.0") for name in ("one", "two", "three")]
    by_threads = UnpackedCache(tmp_path / "threads")
    by_processes = UnpackedCache(tmp_path / "processes")
    with Unpacker(by_processes, workers=2, processes=True) as unpacker:
        for wheel in wheels:
            unpacker.submit(wheel, sha256_of(wheel))
        results = [unpacker.result(wheel, sha256_of(wheel)) for wheel in wheels]
        assert unpacker.uses_processes
        pool = unpacker._process_pool()
        assert pool is not None
        assert {process.pid for process in pool._processes.values()}.isdisjoint({os.getpid()})
        # Ctrl-C is the main process's to handle: the workers ignore it.
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler
    for wheel, result in zip(wheels, results, strict=True):
        expected = _unpack(by_threads, wheel)
        assert result.layout == expected.layout
        assert result.tree == by_processes.entry_dir(sha256_of(wheel)) / "tree"
        assert open_unpacked(by_processes, wheel, sha256_of(wheel)) == result


_FORKED = """
import json, multiprocessing, os, signal, sys
from pathlib import Path
from torrip.cache import UnpackedCache, sha256_of
from torrip.install.unpacked import Unpacker, forked_workers, open_unpacked

wheels = [Path(name) for name in sys.argv[3:]]
by_forks, by_threads = UnpackedCache(Path(sys.argv[1])), UnpackedCache(Path(sys.argv[2]))
with forked_workers(1 << 40, workers=2) as workers:  # two, whatever the cores
    assert workers is not None and workers.count == 2
    # Both forked at once (not as jobs come): a job may land on either.
    pids = {child.pid for child in multiprocessing.active_children()}
    assert len(pids) == 2 and workers.pool.submit(os.getpid).result() in pids
    ignored = workers.pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN
    with Unpacker(by_forks, forked=workers) as unpacker:
        assert unpacker.uses_processes
        forked = [unpacker.result(wheel, sha256_of(wheel)) for wheel in wheels]
    # The pool is whoever forked it's, not the unpacker's: it still works.
    assert workers.pool.submit(os.getpid).result() in pids
gone = []
for pid in pids:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        gone.append(pid)
with Unpacker(by_threads) as unpacker:
    threaded = [unpacker.result(wheel, sha256_of(wheel)) for wheel in wheels]
print(json.dumps({
    "workers_apart": os.getpid() not in pids,
    "ctrl_c_ignored": ignored,
    "stopped": len(gone) == len(pids),
    "same_layouts": [a.layout == b.layout for a, b in zip(forked, threaded)],
    "published": [open_unpacked(by_forks, w, sha256_of(w)) == r for w, r in zip(wheels, forked)],
}))
"""


def test_forked_workers_unpack_what_threads_do(tmp_path: Path) -> None:
    """Forked from a process without threads (a fresh one: pytest's may run some), used by
    an Unpacker without being its to stop, stopped when the block ends."""
    wheels = [package_wheel(tmp_path / name, name, "1.0") for name in ("one", "two", "three")]
    child = subprocess.run(
        [sys.executable, "-c", _FORKED, str(tmp_path / "forks"), str(tmp_path / "threads")]
        + [str(wheel) for wheel in wheels],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == {
        "workers_apart": True,
        "ctrl_c_ignored": True,
        "stopped": True,
        "same_layouts": [True, True, True],
        "published": [True, True, True],
    }


_FORKED_AHEAD = """
import json, multiprocessing, os, select, stat, sys, tempfile, threading
from pathlib import Path
from torrip.cache import UnpackedCache, sha256_of
from torrip.install.unpacked import FORK_MIN_BYTES, Unpacker, fork_ahead, forked_workers

def seen():
    return os.getcwd(), os.environ.get("TORRIP_AHEAD"), tempfile.gettempdir()

folder, wheel = Path(sys.argv[1]), Path(sys.argv[2])
kept, held = os.pipe()  # ``held`` stands for the server's socket, which workers must close
forked = fork_ahead(close=(held,))
os.close(held)
pids = {child.pid for child in multiprocessing.active_children()}
alone = threading.active_count() == 1
# The command comes: its folder, umask and environment are not the spare's.
os.chdir(folder)
os.umask(0o027)
os.environ.update(TORRIP_AHEAD="the command's", TMPDIR=str(folder))
with forked_workers(FORK_MIN_BYTES) as workers:
    assert workers is not None
    ran_in = {workers.submit(os.getpid).result() for _ in range(8)}
    with Unpacker(UnpackedCache(folder / "cache"), forked=workers) as unpacker:
        tree = unpacker.result(wheel, sha256_of(wheel)).tree
    context = workers.submit(seen).result()
modes = {stat.S_IMODE(path.stat().st_mode) for path in tree.rglob("*") if path.is_file()}
with forked_workers(FORK_MIN_BYTES) as fresh:
    again = fresh is not None and fresh.context is None
print(json.dumps({
    "forked": forked,
    "no_thread_until_used": alone,
    "their_own_pids": bool(ran_in) and ran_in <= pids and os.getpid() not in pids,
    "context": list(context),
    "modes": sorted(modes),
    "closed": select.select([kept], [], [], 10)[0] == [kept] and os.read(kept, 1) == b"",
    "again": again,
}))
"""


def test_workers_forked_ahead_do_the_command_s_jobs_in_its_context(tmp_path: Path) -> None:
    """Forked ahead of a command (the warm-start spare, before it takes one), the workers
    start no thread, hold no descriptor they were told to close, and take on the command's
    working folder, umask and environment: what they write in the cache has the command's
    mode. They serve one command: after it, workers are forked again."""
    wheel = package_wheel(tmp_path / "dist", "one", "1.0")
    child = subprocess.run(
        [sys.executable, "-c", _FORKED_AHEAD, str(tmp_path), str(wheel)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    folder = str(tmp_path)
    assert json.loads(child.stdout) == {
        "forked": True,
        "no_thread_until_used": True,
        "their_own_pids": True,
        "context": [folder, "the command's", folder],
        "modes": [0o640],
        "closed": True,
        "again": True,
    }


_FORK_OR_NOT = """
import threading, time
import torrip.install.unpacked as unpacked
from torrip.install.unpacked import FORK_MIN_BYTES, forked_workers

unpacked._THREADS_END_TIMEOUT = 0.5  # long enough to see whether a thread is waited for

def forked(pending):
    with forked_workers(pending, workers=2) as workers:
        return workers is not None

stop = threading.Event()
running = threading.Thread(target=stop.wait, name="torrip-index_0")
running.start()
started = time.monotonic()
print("while a thread of torrip's runs:", forked(1 << 40), time.monotonic() - started < 1)
stop.set()
running.join()
threading.Thread(target=time.sleep, args=(0.005,), name="torrip-index_1").start()
print("once a thread of torrip's ending ends:", forked(1 << 40))
other = threading.Thread(target=time.sleep, args=(1.0,))
other.start()
started = time.monotonic()
print("beside another program's thread:", forked(1 << 40), time.monotonic() - started < 0.2)
other.join()
print("a little to unpack:", forked(FORK_MIN_BYTES - 1))
print("enough:", forked(FORK_MIN_BYTES))
"""


def test_workers_are_forked_only_without_threads_and_for_enough(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _FORK_OR_NOT], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == [
        "while a thread of torrip's runs: False True",
        "once a thread of torrip's ending ends: True",
        "beside another program's thread: False True",  # and not waited for
        "a little to unpack: False",
        "enough: True",
    ]


def test_no_workers_are_forked_beside_a_running_thread(tmp_path: Path) -> None:
    """In this process too: a thread that does not end within the moment given is never
    copied by a fork."""
    stop = threading.Event()
    running = threading.Thread(target=stop.wait)
    running.start()
    try:
        with forked_workers(FORK_MIN_BYTES, workers=2) as workers:
            assert workers is None
    finally:
        stop.set()
        running.join()


_CTRL_C_WHILE_STARTING = """
import signal, sys
from pathlib import Path
from torrip.cache import UnpackedCache
from torrip.install.unpacked import Unpacker

signal.signal(signal.SIGINT, lambda *_: None)  # this process shrugs off every Ctrl-C
print("ready", flush=True)
with Unpacker(UnpackedCache(Path(sys.argv[1])), workers=2, processes=True) as unpacker:
    print("processes" if unpacker._process_pool() is not None else "threads")
"""


_CTRL_C_WHILE_FORKING = """
import signal
from torrip.install.unpacked import forked_workers

signal.signal(signal.SIGINT, lambda *_: None)
print("ready", flush=True)
with forked_workers(1 << 40, workers=2) as workers:
    print("processes" if workers is not None else "threads")
"""


@pytest.mark.parametrize(
    "script", [_CTRL_C_WHILE_STARTING, _CTRL_C_WHILE_FORKING], ids=["started", "forked"]
)
def test_ctrl_c_while_worker_processes_start_prints_no_traceback(
    script: str, tmp_path: Path
) -> None:
    """Ctrl-C reaches the whole process group: the forkserver importing torrip for its
    workers, and each worker (forked or started) before it ignores it. Neither may print a
    traceback under torrip's own "interrupted", nor die and leave the unpacking to threads."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "cache")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    started = threading.Event()

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 60
        while not started.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGINT)
            time.sleep(0.005)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        result = child.stdout.readline()  # the pool started (or did not): stop pressing
    finally:
        started.set()
        presser.join()
    out, err = child.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert (child.returncode, result + out) == (0, "processes\n"), err


@pytest.mark.parametrize("why", ["no semaphores", "frozen executable"])
def test_without_worker_processes_threads_unpack(
    why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_processes(method: str) -> None:
        raise OSError("no semaphores here")  # as in some sandboxes

    if why == "no semaphores":
        monkeypatch.setattr(multiprocessing, "get_context", no_processes)
    else:  # PyInstaller and the like: a worker would run the whole program again
        monkeypatch.setattr(unpacked_module.sys, "frozen", True, raising=False)
    wheel = package_wheel(tmp_path, "solo", "1.0")
    with Unpacker(UnpackedCache(tmp_path / "cache"), processes=True) as unpacker:
        assert unpacker.result(wheel, sha256_of(wheel)).layout.name == "solo"
        assert not unpacker.uses_processes


def test_a_worker_process_that_dies_is_replaced_by_a_thread(tmp_path: Path) -> None:
    wheel = package_wheel(tmp_path, "phoenix", "1.0")
    with Unpacker(UnpackedCache(tmp_path / "cache"), workers=2, processes=True) as unpacker:
        pool = unpacker._process_pool()
        assert pool is not None
        for process in list(pool._processes.values()):
            process.kill()
            process.join()
        assert unpacker.result(wheel, sha256_of(wheel)).layout.name == "phoenix"


def test_processes_only_for_much_to_unpack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = UnpackedCache(tmp_path / "cache")
    wheel = package_wheel(tmp_path, "sized", "1.0")
    sha256, size = sha256_of(wheel), wheel.stat().st_size
    limit = unpacked_module.PROCESSES_MIN_BYTES
    many = [(sha256, limit - 1), (None, 1)]
    assert not worth_processes(store, [(sha256, size), (None, None)])
    assert worth_processes(store, many)
    _unpack(store, wheel)
    assert not worth_processes(store, many)  # already unpacked: 1 byte left to do
    assert not worth_processes(store, [(sha256, limit)])

    monkeypatch.setattr(unpacked_module.os, "cpu_count", lambda: 2)
    with Unpacker(store) as unpacker:
        assert not unpacker.uses_processes
        unpacker.enable_processes()  # from now on, e.g. once enough has arrived
        assert unpacker.uses_processes
        assert unpacker.result(wheel, sha256).layout.name == "sized"
    monkeypatch.setattr(unpacked_module.os, "cpu_count", lambda: 1)
    with Unpacker(store, processes=True) as unpacker:
        assert not unpacker.uses_processes  # one core: nothing to gain


def test_the_manifest_records_what_was_checked(tmp_path: Path) -> None:
    wheel = package_wheel(tmp_path, "eta", "1.0")
    unpacked = _unpack(UnpackedCache(tmp_path / "cache"), wheel)
    manifest = json.loads((unpacked.tree.parent / ".manifest.json").read_text())
    assert (manifest["name"], manifest["version"], manifest["dist_info"]) == (
        "eta",
        "1.0",
        "eta-1.0.dist-info",
    )
    assert manifest["data_dir"] == "eta-1.0.data"
    rows = {row[0]: row for row in manifest["files"]}
    core = unpacked.tree / "eta/core.py"
    assert rows["eta/core.py"][2] == core.stat().st_size
    assert rows["eta/core.py"][4] == core.stat().st_mtime_ns


class _Entered:
    """A context manager already entered (for patching ``open_checked_wheel``)."""

    def __init__(self, context, value) -> None:  # type: ignore[no-untyped-def]
        self.context = context
        self.value = value

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.value

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        return self.context.__exit__(*exc)


def test_the_largest_wheel_waiting_is_unpacked_first() -> None:
    pool = unpacked_module.LargestFirst(1, "test-largest")
    started: list[str] = []
    gate = threading.Event()
    began = threading.Event()

    def hold() -> bool:
        began.set()
        return gate.wait()

    try:
        blocker = pool.submit(0, hold)  # holds the only thread while the rest queue up
        assert began.wait(10)
        futures = {
            name: pool.submit(size, lambda name=name: started.append(name) or name)
            for name, size in [("small", 10), ("huge", 1000), ("medium", 100), ("tiny", 1)]
        }
        gate.set()
        assert blocker.result() is True
        assert [futures[name].result() for name in futures] == list(futures)
        assert started == ["huge", "medium", "small", "tiny"]

        def broken() -> None:
            raise UnsafeWheelError("w.whl", "m.py", "sha256 does not match RECORD")

        with pytest.raises(UnsafeWheelError, match="does not match RECORD"):
            pool.submit(5, broken).result()
    finally:
        gate.set()
        pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(1, lambda: None)


def test_shutting_down_cancels_what_has_not_started() -> None:
    pool = unpacked_module.LargestFirst(1, "test-cancel")
    gate, began = threading.Event(), threading.Event()

    def hold() -> bool:
        began.set()
        return gate.wait()

    running = pool.submit(0, hold)
    assert began.wait(10)
    waiting = pool.submit(1, lambda: "never")
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()
    deadline = time.monotonic() + 10
    while not waiting.cancelled():  # shutdown cancels it at once, then waits for `running`
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not running.done()
    gate.set()
    stopper.join(timeout=10)
    assert running.result() is True


def test_a_limit_holds_jobs_back_until_raised() -> None:
    """Two threads, one job at a time until the limit is lifted (a prefetch keeps a core
    for the resolver that way)."""
    pool = unpacked_module.LargestFirst(2, "test-limit")
    pool.limit(1)
    gate, began = threading.Event(), threading.Event()

    def hold() -> bool:
        began.set()
        return gate.wait()

    try:
        running = pool.submit(0, hold)
        assert began.wait(10)
        waiting = pool.submit(1, lambda: "second")
        time.sleep(0.2)
        assert not waiting.running() and not waiting.done()  # a thread is free, yet it waits
        pool.limit(None)
        assert waiting.result(timeout=10) == "second"
        assert not running.done()
    finally:
        gate.set()
        pool.shutdown()


def test_threads_start_with_the_first_job() -> None:
    """An unpacker a cold install never gives a job (its workers unpack) starts no thread."""

    def named() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("test-lazy")]

    idle = unpacked_module.LargestFirst(2, "test-lazy-idle")
    assert named() == []
    idle.shutdown()
    pool = unpacked_module.LargestFirst(2, "test-lazy")
    try:
        assert named() == []
        assert pool.submit(0, lambda: "done").result(timeout=10) == "done"
        assert sorted(named()) == ["test-lazy_0", "test-lazy_1"]
    finally:
        pool.shutdown()
    assert named() == []

"""The fetch strategy: cache, sources, verification, dedupe, per-host bound, exact accounting."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from fixtures.index import LocalIndex
from fixtures.wheels import make_wheel
from torrip.cache import DistributionCache
from torrip.config import Settings
from torrip.connections import StdlibTransport
from torrip.errors import HashMismatchError, NetworkError, SizeMismatchError, TorripError
from torrip.index.links import Link, TorrentRef
from torrip.transport.fetch import (
    Fetcher,
    FetchResult,
    FileRequest,
    HttpSource,
    Source,
    fetch_key,
)
from torrip.transport.progress import RichProgress
from transport.test_http import FaultServer

DATA = os.urandom(200_000)
SHA = hashlib.sha256(DATA).hexdigest()
NAME = "demo-1.0-py3-none-any.whl"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(transport=StdlibTransport(tls=None), timeout=10, trust_env=False) as http:
        yield http


@pytest.fixture
def cache(tmp_path: Path) -> DistributionCache:
    return DistributionCache(tmp_path / "cache")


def _fetcher(
    client: httpx.Client, cache: DistributionCache | None, *, retries: int = 3, **settings: object
) -> Fetcher:
    root = cache.root if cache is not None else Path("unused")
    return Fetcher(
        Settings(cache_dir=root, **settings),  # type: ignore[arg-type]
        client,
        cache,
        [HttpSource(client, retries=retries, backoff=0.01)],
    )


def _request(
    server: FaultServer, data: bytes = DATA, name: str = NAME, **kw: object
) -> FileRequest:
    url = server.add(name, data, **kw)
    return FileRequest(name, url, _sha(data), len(data))


def test_from_link_drops_fragment_and_normalizes() -> None:
    link = Link(
        NAME, f"https://x.example/f/{NAME}#sha256={SHA.upper()}", {"sha256": SHA.upper()}, size=3
    )
    assert FileRequest.from_link(link) == FileRequest(NAME, f"https://x.example/f/{NAME}", SHA, 3)


def test_real_index_and_exact_accounting(
    local_index: LocalIndex, client: httpx.Client, cache: DistributionCache, tmp_path: Path
) -> None:
    wheels = [
        make_wheel(tmp_path / "dists", f"pkg{n}", "1.0", files={"big.bin": os.urandom(50_000)})
        for n in range(3)
    ]
    index = local_index(wheels, torrents=False)
    requests = [
        FileRequest(w.name, index.file_url(w.name), _sha(w.read_bytes()), w.stat().st_size)
        for w in wheels
    ]
    results = _fetcher(client, cache).fetch_all(requests)
    assert [r.request for r in results] == requests
    for wheel, result in zip(wheels, results, strict=True):
        assert result.source == "origin" and result.verified
        assert result.path.read_bytes() == wheel.read_bytes()
        assert result.path.name == wheel.name
    sent = sum(r.bytes_sent for r in index.requests if r.path.endswith(".whl"))
    assert sum(r.bytes["origin"] for r in results) == sent == sum(w.stat().st_size for w in wheels)


def test_never_downloads_twice(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    request = _request(server, once=True)  # a second GET of the file answers 403
    first = _fetcher(client, cache).fetch_all([request])[0]
    assert (first.source, dict(first.bytes)) == (
        "origin",
        {"cache": 0, "origin": len(DATA), "peers": 0},
    )
    second = _fetcher(client, cache).fetch_all([request])[0]
    assert (second.source, dict(second.bytes)) == (
        "cache",
        {"cache": len(DATA), "origin": 0, "peers": 0},
    )
    assert second.path == first.path
    assert len(server.gets(NAME)) == 1


def test_same_file_twice_in_one_run(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    request = _request(server, once=True, delay=0.1)
    renamed = FileRequest("Demo-1.0-py3-none-any.whl", request.url, SHA, len(DATA))
    results = _fetcher(client, cache).fetch_all([request, request, renamed])
    assert sorted(r.source for r in results) == ["cache", "cache", "origin"]
    assert sum(r.bytes["origin"] for r in results) == len(DATA) == server.bytes_sent()
    assert [r.path.name for r in results] == [NAME, NAME, renamed.filename]
    assert len(server.gets(NAME)) == 1


def test_resume_across_runs(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    request = _request(server, cuts=[70_000])
    with pytest.raises(NetworkError):
        _fetcher(client, cache, retries=0).fetch_all([request])
    assert cache.partial_path(SHA).stat().st_size == 70_000
    result = _fetcher(client, cache).fetch_all([request])[0]
    assert result.path.read_bytes() == DATA
    assert result.bytes["origin"] == len(DATA) - 70_000
    assert server.gets(NAME)[1].range == "bytes=70000-"
    assert server.bytes_sent() == len(DATA)
    assert list(cache.temp_dir().iterdir()) == []


def test_http_downloads_are_hashed_as_written_not_read_again(
    server: FaultServer,
    client: httpx.Client,
    cache: DistributionCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A multi-gigabyte wheel would take seconds to read back and hash after its last byte;
    the digest made while writing it is the one checked (a resumed file too)."""
    import torrip.transport.fetch as fetch

    def no_second_read(path: Path) -> str:
        raise AssertionError(f"{path} read again to hash it")

    monkeypatch.setattr(fetch, "sha256_of", no_second_read)
    request = _request(server, cuts=[70_000])
    with pytest.raises(NetworkError):
        _fetcher(client, cache, retries=0).fetch_all([request])
    result = _fetcher(client, cache).fetch_all([request])[0]
    assert result.sha256 == SHA and result.path.read_bytes() == DATA


def test_hash_mismatch(server: FaultServer, client: httpx.Client, cache: DistributionCache) -> None:
    url = server.add(NAME, DATA)
    expected = _sha(b"what the index promised")
    with pytest.raises(HashMismatchError) as caught:
        _fetcher(client, cache).fetch_all([FileRequest(NAME, url, expected, len(DATA))])
    error = caught.value
    assert (error.what, error.url, error.expected, error.actual) == (NAME, url, expected, SHA)
    for fact in (NAME, url, expected, SHA):
        assert fact in str(error)
    assert list(cache.entries()) == []
    assert list(cache.temp_dir().iterdir()) == []


def test_size_mismatch(server: FaultServer, client: httpx.Client, cache: DistributionCache) -> None:
    url = server.add(NAME, DATA)
    with pytest.raises(SizeMismatchError) as caught:
        _fetcher(client, cache).fetch_all([FileRequest(NAME, url, SHA, len(DATA) + 1)])
    assert (caught.value.expected_size, caught.value.actual_size) == (len(DATA) + 1, len(DATA))
    assert isinstance(caught.value, HashMismatchError)
    assert list(cache.entries()) == []
    assert list(cache.temp_dir().iterdir()) == []


def test_mismatch_stops_the_others(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    bad = FileRequest("bad-1.0.tar.gz", server.add("bad-1.0.tar.gz", b"evil"), _sha(b"good"), 4)
    slow = [
        _request(server, os.urandom(100_000), f"slow{n}-1.0.tar.gz", delay=0.3) for n in range(3)
    ]
    started = time.monotonic()
    with pytest.raises(HashMismatchError):
        _fetcher(client, cache).fetch_all([*slow, bad])
    assert time.monotonic() - started < 2
    assert cache.get(_sha(b"good"), "bad-1.0.tar.gz") is None
    assert not cache.partial_path(_sha(b"good")).exists()


def test_not_found(server: FaultServer, client: httpx.Client, cache: DistributionCache) -> None:
    from torrip.errors import HTTPStatusError

    url = server.url(NAME)
    with pytest.raises(HTTPStatusError) as caught:
        _fetcher(client, cache).fetch_all([FileRequest(NAME, url, SHA, len(DATA))])
    assert caught.value.url == url and caught.value.status == 404 and caught.value.hint


def test_retries_transient_statuses(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    request = _request(server, statuses=[503, 503])
    result = _fetcher(client, cache).fetch_all([request])[0]
    assert result.path.read_bytes() == DATA
    assert [hit.status for hit in server.gets(NAME)] == [503, 503, 200]


def test_downloads_per_host_are_bounded(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    with FaultServer() as other:
        requests = [
            _request(host, os.urandom(10_000), f"p{n}-1.0.tar.gz", delay=0.1)
            for host in (server, other)
            for n in range(4)
        ]
        results = _fetcher(client, cache, max_downloads_per_host=2).fetch_all(requests)
        assert len(results) == 8
        # Bounded per host, and still parallel, on both hosts at once.
        assert (server.max_active, other.max_active) == (2, 2)


def test_a_near_host_gets_a_few_downloads_at_once_and_a_far_one_all(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    """The first bytes from a host tell how far it is: at once (the near host's four
    largest files, which go first), NEAR_DOWNLOADS at a time, since more would only share
    one GIL; after a wait (the far host), max_downloads_per_host."""
    from torrip.transport.fetch import NEAR_DOWNLOADS

    said: list[str] = []
    with FaultServer() as far:
        near_requests = [
            _request(server, os.urandom(30_000 if n < 4 else 10_000), f"n{n}-1.0.tar.gz", **delay)
            for n, delay in enumerate([{}] * 4 + [{"delay": 0.1}] * 8)
        ]
        far_requests = [
            _request(far, os.urandom(10_000), f"f{n}-1.0.tar.gz", delay=0.1) for n in range(12)
        ]
        fetcher = Fetcher(
            Settings(cache_dir=cache.root, max_downloads_per_host=8),
            client,
            cache,
            [HttpSource(client, backoff=0.01)],
            log=said.append,
        )
        results = fetcher.fetch_all(near_requests + far_requests)
    assert [r.source for r in results] == ["origin"] * 24
    assert server.max_active == NEAR_DOWNLOADS
    assert far.max_active > NEAR_DOWNLOADS
    far_host = far.base_url.split("/")[2]
    widened = [line for line in said if "more downloads at once" in line]
    assert len(widened) == 1 and widened[0].startswith(f"{far_host} "), said
    assert widened[0].endswith(f"away: {8 - NEAR_DOWNLOADS} more downloads at once")


def test_a_near_host_gets_no_more_threads_than_downloads_at_once(
    server: FaultServer,
    client: httpx.Client,
    cache: DistributionCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files are handed to threads only as the host's width lets them run: a thread waiting
    at the gate costs context switches (and CPU the unpacking needs)."""
    import torrip.transport.fetch as fetch

    threads: set[str] = set()
    real = fetch.Fetcher._fetch_one

    def recording(self: Fetcher, *args: object) -> FetchResult:
        threads.add(threading.current_thread().name)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(fetch.Fetcher, "_fetch_one", recording)
    requests = [  # the first (largest) answers at once: the host is near
        _request(server, os.urandom(30_000 if n < 2 else 5_000), f"t{n}-1.0.tar.gz", **delay)
        for n, delay in enumerate([{}] * 2 + [{"delay": 0.05}] * 10)
    ]
    results = _fetcher(client, cache, max_downloads_per_host=8).fetch_all(requests)
    assert [r.source for r in results] == ["origin"] * 12
    assert server.max_active == fetch.NEAR_DOWNLOADS
    assert len(threads) == fetch.NEAR_DOWNLOADS, threads


def test_large_downloads_come_a_few_at_a_time_beside_the_small_ones(
    server: FaultServer,
    client: httpx.Client,
    cache: DistributionCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Big files over HTTP LARGE_AT_ONCE at a time, so each is done (and unpacked) early;
    small files still go many at once meanwhile."""
    import torrip.transport.fetch as fetch

    monkeypatch.setattr(fetch, "LARGE_DOWNLOAD", 50_000)
    with FaultServer() as small:
        large = [
            _request(server, os.urandom(60_000), f"big{n}-1.0.tar.gz", delay=0.2) for n in range(4)
        ]
        little = [
            _request(small, os.urandom(1_000), f"p{n}-1.0.tar.gz", delay=0.2) for n in range(6)
        ]
        results = _fetcher(client, cache, max_downloads_per_host=8).fetch_all(large + little)
        assert [r.source for r in results] == ["origin"] * 10
        assert server.max_active == fetch.LARGE_AT_ONCE
        assert small.max_active > fetch.LARGE_AT_ONCE


_CHILD = """
import sys
from pathlib import Path
import httpx
from torrip.cache import DistributionCache
from torrip.config import Settings
from torrip.transport.fetch import Fetcher, FileRequest
url, sha, size, root = sys.argv[1:]
with httpx.Client(trust_env=False) as client:
    cache = DistributionCache(Path(root))
    fetcher = Fetcher(Settings(cache_dir=Path(root)), client, cache)
    [result] = fetcher.fetch_all([FileRequest("demo-1.0-py3-none-any.whl", url, sha, int(size))])
print(result.source, result.bytes["origin"])
"""


def test_concurrent_processes_share_the_cache(
    server: FaultServer, cache: DistributionCache
) -> None:
    request = _request(server, once=True, delay=0.3)
    args = [sys.executable, "-c", _CHILD, request.url, SHA, str(len(DATA)), str(cache.root)]
    children = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=30)[0].split() for child in children]
    assert [child.returncode for child in children] == [0, 0]
    assert sorted(outputs) == [["cache", "0"], ["origin", str(len(DATA))]]
    assert [entry.sha256 for entry in cache.entries()] == [SHA]
    assert len(server.gets(NAME)) == 1


class FakeSwarm:
    """A non-origin source: serves given bytes, or declines."""

    name = "swarm"

    def __init__(self, data: bytes | None) -> None:
        self.data = data

    def fetch(
        self, request: FileRequest, dest: Path, progress: Callable[[int], None]
    ) -> int | Mapping[str, int] | None:
        if self.data is None:
            return None
        dest.write_bytes(self.data)
        progress(len(self.data))
        return {"peers": len(self.data) - 10, "origin": 10}


def test_swarm_source_first(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    request = _request(server)
    fetcher = Fetcher(Settings(cache_dir=cache.root), client, cache, [FakeSwarm(DATA)])
    assert [source.name for source in fetcher.sources] == ["swarm", "origin"]
    result = fetcher.fetch_all([request])[0]
    assert (result.source, dict(result.bytes)) == (
        "swarm",
        {"cache": 0, "origin": 10, "peers": len(DATA) - 10},
    )
    assert server.gets(NAME) == []


@pytest.mark.parametrize("swarm_data", [None, b"x" * len(DATA)])
def test_swarm_declining_or_lying_falls_back_to_origin(
    server: FaultServer, client: httpx.Client, cache: DistributionCache, swarm_data: bytes | None
) -> None:
    request = _request(server)
    said: list[str] = []
    sources: list[Source] = [FakeSwarm(swarm_data), HttpSource(client, backoff=0.01)]
    fetcher = Fetcher(Settings(cache_dir=cache.root), client, cache, sources, log=said.append)
    result = fetcher.fetch_all([request])[0]
    assert result.source == "origin" and result.path.read_bytes() == DATA
    # A loaded machine may find the server "far" and say so; that is not about the swarm.
    said = [line for line in said if "more downloads at once" not in line]
    if swarm_data is None:
        assert dict(result.bytes) == {"cache": 0, "origin": len(DATA), "peers": 0}
        assert said == []
    else:  # the wrong bytes are counted (they crossed the network) and dropped
        assert dict(result.bytes) == {"cache": 0, "origin": len(DATA) + 10, "peers": len(DATA) - 10}
        assert len(said) == 1 and "hash mismatch" in said[0]


class LateSwarm(FakeSwarm):
    """A swarm that finds no peers at first (and hands the file to HTTP), but serves
    ``data`` when waited for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(None)
        self.late = data
        self.waited = 0

    def handed_over(self, request: FileRequest) -> bool:
        return True

    def fetch_waiting_for_peers(
        self, request: FileRequest, dest: Path, progress: Callable[[int], None]
    ) -> Mapping[str, int]:
        self.waited += 1
        dest.write_bytes(self.late)
        progress(len(self.late))
        return {"peers": len(self.late), "origin": 0}


def test_an_origin_that_fails_makes_the_swarm_wait_for_peers(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    request = FileRequest(NAME, server.url(NAME), SHA, len(DATA))  # the origin answers 404
    swarm = LateSwarm(DATA)
    said: list[str] = []
    sources: list[Source] = [swarm, HttpSource(client, backoff=0.01)]
    fetcher = Fetcher(Settings(cache_dir=cache.root), client, cache, sources, log=said.append)
    result = fetcher.fetch_all([request])[0]
    assert (result.source, dict(result.bytes)) == (
        "swarm",
        {"cache": 0, "origin": 0, "peers": len(DATA)},
    )
    assert result.path.read_bytes() == DATA and swarm.waited == 1
    assert any("the origin failed (" in line and "waiting for peers" in line for line in said)


def test_an_origin_that_fails_with_no_late_peers_gives_its_own_error(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    request = FileRequest(NAME, server.url(NAME), SHA, len(DATA))
    swarm = LateSwarm(b"not the file")  # what it finds fails the check: the 404 is told
    sources: list[Source] = [swarm, HttpSource(client, backoff=0.01)]
    fetcher = Fetcher(Settings(cache_dir=cache.root), client, cache, sources)
    with pytest.raises(TorripError, match="404"):
        fetcher.fetch_all([request])
    assert swarm.waited == 1
    assert list(cache.entries()) == []


def test_bytes_the_origin_got_wrong_are_not_retried_from_peers(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    url = server.add(NAME, b"other bytes")
    request = FileRequest(NAME, url, SHA, len(b"other bytes"))
    swarm = LateSwarm(DATA)
    sources: list[Source] = [swarm, HttpSource(client, backoff=0.01)]
    fetcher = Fetcher(Settings(cache_dir=cache.root), client, cache, sources)
    with pytest.raises((HashMismatchError, SizeMismatchError)):
        fetcher.fetch_all([request])
    assert swarm.waited == 0


def test_a_swarm_that_did_not_hand_over_is_not_waited_for(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    """Declining for another reason (no torrent, too small, distrusted) is no promise of
    peers: the origin's error comes at once."""
    request = FileRequest(NAME, server.url(NAME), SHA, len(DATA))
    swarm = LateSwarm(DATA)
    swarm.handed_over = lambda request: False  # type: ignore[method-assign]
    sources: list[Source] = [swarm, HttpSource(client, backoff=0.01)]
    with pytest.raises(TorripError, match="404"):
        Fetcher(Settings(cache_dir=cache.root), client, cache, sources).fetch_all([request])
    assert swarm.waited == 0


class SlowSwarm:
    """A swarm that serves files with a torrent only once ``release`` is set."""

    name = "swarm"

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = files
        self.release = threading.Event()
        self.waited_out = False

    def fetch(
        self, request: FileRequest, dest: Path, progress: Callable[[int], None]
    ) -> int | Mapping[str, int] | None:
        if request.torrent is None:
            return None
        self.waited_out = not self.release.wait(10) or self.waited_out
        dest.write_bytes(self.files[request.filename])
        progress(len(self.files[request.filename]))
        return {"peers": len(self.files[request.filename])}


def test_http_downloads_do_not_wait_for_the_swarm(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    """Swarm downloads hold no HTTP slot: with one slot per host, a small file over HTTP
    finishes while two larger ones are still coming from peers."""
    big = {f"big{n}-1.0-py3-none-any.whl": os.urandom(300_000) for n in range(2)}
    swarm = SlowSwarm(big)
    requests = [
        FileRequest(name, server.add(name, data), _sha(data), len(data), TorrentRef(btih="0" * 40))
        for name, data in big.items()
    ]
    requests.append(_request(server))  # DATA, 200 kB: downloaded last, largest first
    sources: list[Source] = [swarm, HttpSource(client, backoff=0.01)]
    settings = Settings(cache_dir=cache.root, max_downloads_per_host=1)
    fetcher = Fetcher(settings, client, cache, sources)

    def on_fetched(result: FetchResult) -> None:
        if result.request.torrent is None:
            swarm.release.set()  # only now may the swarm's files arrive

    results = fetcher.fetch_all(requests, on_fetched=on_fetched)
    assert not swarm.waited_out
    assert [result.source for result in results] == ["swarm", "swarm", "origin"]


class DecliningSwarm:
    """A swarm that says it paces nothing, and counts how many of its fetches overlap."""

    name = "swarm"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.most = 0

    def paces(self, request: FileRequest) -> bool:
        return False

    def fetch(
        self, request: FileRequest, dest: Path, progress: Callable[[int], None]
    ) -> int | None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return None


def test_files_the_swarm_declines_wait_their_turn(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    """Files with torrents that the swarm would hand to HTTP at once are not all started
    together: one HTTP slot, one at a time, the largest first."""
    files = {f"f{n}-1.0-py3-none-any.whl": os.urandom(50_000 * (n + 1)) for n in range(3)}
    requests = [
        FileRequest(name, server.add(name, data), _sha(data), len(data), TorrentRef(btih="0" * 40))
        for name, data in files.items()
    ]
    swarm = DecliningSwarm()
    settings = Settings(cache_dir=cache.root, max_downloads_per_host=1)
    results = Fetcher(settings, client, cache, [swarm, HttpSource(client)]).fetch_all(requests)
    assert [result.source for result in results] == ["origin"] * 3
    assert swarm.most == 1
    server.settle()
    assert [hit.name for hit in server.hits] == sorted(files, reverse=True)


def test_fetches_under_way_elsewhere_stand_for_their_files(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    """``early``: a finished fetch is taken as it is (no request); one that failed, for any
    reason, is fetched again here; one that fails here too fails with its own error."""
    done = _request(server)
    other = _request(server, b"other bytes", "other-1.0-py3-none-any.whl")
    done_early: Future[FetchResult] = Future()
    done_early.set_result(fetch_one_now(client, cache, done))
    before = len(server.gets(NAME))
    failed_early: Future[FetchResult] = Future()
    failed_early.set_exception(OSError("a worker died"))
    early = {fetch_key(done): done_early, fetch_key(other): failed_early}
    told: list[str] = []
    shown = Recorder()
    results = _fetcher(client, cache).fetch_all(
        [done, other], shown, early=early, on_fetched=lambda r: told.append(r.request.filename)
    )
    assert [r.source for r in results] == ["origin", "origin"]
    assert results[0] is done_early.result() and len(server.gets(NAME)) == before
    assert len(server.gets(other.filename)) == 1 and results[1].path.read_bytes() == b"other bytes"
    assert sorted(told) == sorted([NAME, other.filename])
    # The display is told of both from the start, and of each as it ends, bytes and all.
    assert sorted(shown.expected) == sorted([NAME, other.filename])
    assert shown.advanced == {NAME: len(DATA), other.filename: len(b"other bytes")}
    assert sorted(r.request.filename for r in shown.finished) == sorted(shown.expected)

    lying = FileRequest(
        "bad-1.0-py3-none-any.whl",
        server.add("bad-1.0-py3-none-any.whl", DATA),
        _sha(b"not these bytes"),
        len(DATA),
    )
    with pytest.raises(HashMismatchError):
        _fetcher(client, cache).fetch_all([lying], early={fetch_key(lying): failed_early})


def fetch_one_now(
    client: httpx.Client, cache: DistributionCache, request: FileRequest
) -> FetchResult:
    return _fetcher(client, cache).fetch_one(request, threading.Event())


def test_local_files(client: httpx.Client, cache: DistributionCache, tmp_path: Path) -> None:
    local = tmp_path / NAME
    local.write_bytes(DATA)
    hashed = FileRequest(NAME, local.as_uri(), SHA, len(DATA))
    unhashed = FileRequest("other-1.0.tar.gz", (tmp_path / "other-1.0.tar.gz").as_uri(), None, None)
    (tmp_path / "other-1.0.tar.gz").write_bytes(b"sdist")
    first, second = _fetcher(client, cache).fetch_all([hashed, unhashed])
    assert first.path == cache.get(SHA, NAME) and first.verified
    assert (second.verified, second.sha256) == (False, _sha(b"sdist"))
    assert second.path.read_bytes() == b"sdist"  # recorded in the cache under its hash
    assert first.bytes["origin"] == len(DATA)
    with _fetcher(client, None) as fetcher:
        [in_place] = fetcher.fetch_all([hashed])
    assert in_place.path == local


def test_local_file_mismatch_keeps_the_users_file(
    client: httpx.Client, cache: DistributionCache, tmp_path: Path
) -> None:
    local = tmp_path / NAME
    local.write_bytes(DATA)
    with pytest.raises(HashMismatchError):
        _fetcher(client, cache).fetch_all([FileRequest(NAME, local.as_uri(), _sha(b"other"), None)])
    assert local.read_bytes() == DATA
    assert list(cache.entries()) == [] and list(cache.temp_dir().iterdir()) == []


def test_unhashed_url_is_fetched_and_hashed(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    url = server.add(NAME, DATA)
    [result] = _fetcher(client, cache).fetch_all([FileRequest(NAME, url, None, None)])
    assert (result.verified, result.sha256, result.path) == (False, SHA, cache.get(SHA, NAME))
    assert list(cache.temp_dir().iterdir()) == []


def test_without_cache(server: FaultServer, client: httpx.Client) -> None:
    request = _request(server)
    with _fetcher(client, None) as fetcher:
        [result] = fetcher.fetch_all([request])
        assert result.path.name == NAME and result.path.read_bytes() == DATA
    assert not result.path.exists()


class Recorder:
    def __init__(self) -> None:
        self.expected: list[str] = []
        self.started: list[tuple[str, int | None]] = []
        self.advanced: dict[str, int] = {}
        self.finished: list[FetchResult] = []

    def expect(self, requests: Sequence[FileRequest]) -> None:
        assert not self.started  # told before any download starts
        self.expected += [request.filename for request in requests]

    def start(self, request: FileRequest, total: int | None) -> None:
        self.started.append((request.filename, total))

    def peers(self, request: FileRequest, count: int) -> None:
        pass

    def advance(self, request: FileRequest, n: int, source: str) -> None:
        self.advanced[request.filename] = self.advanced.get(request.filename, 0) + n

    def finish(self, result: FetchResult) -> None:
        self.finished.append(result)


def test_progress_events(
    server: FaultServer, client: httpx.Client, cache: DistributionCache
) -> None:
    request = _request(server, cuts=[50_000], honour_ranges=False)
    recorder = Recorder()
    _fetcher(client, cache).fetch_all([request, request], recorder)
    assert recorder.expected == [NAME]  # once, as it is downloaded once
    assert recorder.started == [(NAME, len(DATA))]
    assert recorder.advanced == {NAME: len(DATA)}  # the restart's dropped bytes were taken back
    assert [r.source for r in recorder.finished] == ["origin", "cache"]


def test_rich_progress_plain_and_terminal(
    server: FaultServer, client: httpx.Client, tmp_path: Path
) -> None:
    big = os.urandom(1_200_000)
    requests = [_request(server), _request(server, big, "big-1.0.tar.gz")]
    plain = io.StringIO()
    with RichProgress(Console(file=plain, force_terminal=False, width=100)) as progress:
        _fetcher(client, DistributionCache(tmp_path / "a")).fetch_all(requests, progress)
    lines = sorted(plain.getvalue().splitlines())
    assert lines == [
        "fetched big-1.0.tar.gz (1.2 MB, origin)",
        f"fetched {NAME} (200.0 kB, origin)",
    ]
    terminal = io.StringIO()
    with RichProgress(Console(file=terminal, force_terminal=True, width=100)) as progress:
        _fetcher(client, DistributionCache(tmp_path / "b")).fetch_all(requests, progress)
        overall = progress._progress.tasks[0]
        assert overall.completed == overall.total == len(DATA) + len(big)  # counted once
    assert "fetched" not in terminal.getvalue()

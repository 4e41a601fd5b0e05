"""The index client against a real local index in every variant: JSON, HTML, and the
ways a metadata file can be present, absent, unhashed or wrong."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from fixtures.wheels import make_wheel
from torrip.config import Settings
from torrip.http import make_client
from torrip.index.client import LOCAL_WIDTH, NEAR_WIDTH, IndexClient, _OnDemand
from torrip.metadata import parse_metadata
from torrip.planner import InstallRequest, plan_install
from torrip.width import FAR_WAIT, Width


@pytest.fixture
def dists(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "dists"
    return [
        # Big and incompressible, so reading METADATA by ranges is worth it.
        make_wheel(
            directory,
            "app",
            "1.0",
            requires_dist=["lib>=1"],
            files={"app/__init__.py": b"", "app/blob.bin": random.Random(0).randbytes(400_000)},
        ),
        make_wheel(directory, "lib", "1.0"),
        make_wheel(directory, "lib", "2.0", requires_python=">=3.7"),
    ]


@pytest.mark.parametrize("formats", [("json", "html"), ("html",)], ids=["json", "html"])
@pytest.mark.parametrize("metadata", ["ok", "missing", "no-file", "wrong-hash", "unhashed"])
def test_resolves_in_every_variant(
    formats: tuple[str, ...],
    metadata: str,
    dists: list[Path],
    local_index,
    target_venv: Path,
    tmp_path: Path,
) -> None:
    index = local_index(dists, formats=formats, metadata=metadata)
    logged: list[str] = []
    planned = plan_install(
        InstallRequest(requirements=("app",), python=str(target_venv)),
        Settings(index_url=index.url, cache_dir=tmp_path / "cache"),
        log=logged.append,
    )
    assert {(str(d.candidate.name), str(d.candidate.version)) for d in planned.plan.install} == {
        ("app", "1.0"),
        ("lib", "2.0"),
    }
    wheel = "app-1.0-py3-none-any.whl"
    metadata_requests = index.count(wheel + ".metadata")
    wheel_requests = index.count(wheel)
    content_types = " ".join(logged)
    assert ("vnd.pypi.simple.v1+json" in content_types) == ("json" in formats)
    if metadata in ("ok", "unhashed"):
        assert (metadata_requests, wheel_requests) == (1, 0)
    else:
        assert metadata_requests == (0 if metadata == "missing" else 1)
        ranged = [r for r in index.requests if r.path.endswith(wheel)]
        assert ranged and all(r.range for r in ranged), "read the wheel by range requests"
        assert sum(r.bytes_sent for r in ranged) < (index.root / "files" / wheel).stat().st_size / 4
        assert any("range requests" in line for line in logged)
    if metadata == "wrong-hash":
        assert any("does not match" in line for line in logged)


def test_metadata_is_cached_by_file_hash(dists: list[Path], local_index, tmp_path: Path) -> None:
    index = local_index(dists)
    settings = Settings(index_url=index.url, cache_dir=tmp_path / "cache")
    for _ in range(2):
        with make_client(settings) as http, IndexClient(settings, http) as client:
            (link,) = [
                link for link in client.project_links("app") if link.filename.endswith(".whl")
            ]
            assert parse_metadata(client.metadata(link), link.filename).name == "app"
    assert index.count("app-1.0-py3-none-any.whl.metadata") == 1


def test_find_links_folder_without_index(
    dists: list[Path], target_venv: Path, tmp_path: Path
) -> None:
    planned = plan_install(
        InstallRequest(requirements=("app",), python=str(target_venv)),
        Settings(index_url="", find_links=(str(dists[0].parent),), cache_dir=tmp_path / "c"),
    )
    assert sorted(str(d.candidate.version) for d in planned.plan.install) == ["1.0", "2.0"]


def test_extra_index_urls_are_merged(tmp_path: Path, local_index, target_venv: Path) -> None:
    first = local_index([make_wheel(tmp_path / "a", "app", "1.0", requires_dist=["lib"])])
    second = local_index([make_wheel(tmp_path / "b", "lib", "3.0")])
    planned = plan_install(
        InstallRequest(requirements=("app",), python=str(target_venv)),
        Settings(index_url=first.url, extra_index_url=(second.url,), cache_dir=tmp_path / "c"),
    )
    assert {str(d.candidate.name): str(d.candidate.version) for d in planned.plan.install} == {
        "app": "1.0",
        "lib": "3.0",
    }


def test_project_pages_are_fetched_once_per_run(
    dists: list[Path], local_index, tmp_path: Path, target_venv: Path
) -> None:
    index = local_index(dists)
    plan_install(
        InstallRequest(requirements=("app", "lib"), python=str(target_venv)),
        Settings(index_url=index.url, cache_dir=tmp_path / "cache"),
    )
    assert index.count("/simple/lib/") == 1
    assert index.count("/simple/app/") == 1


def test_unreachable_index_is_a_clear_error(target_venv: Path, tmp_path: Path) -> None:
    from torrip.errors import NetworkError

    with pytest.raises(NetworkError) as caught:
        plan_install(
            InstallRequest(requirements=("app",), python=str(target_venv)),
            Settings(index_url="http://127.0.0.1:9/simple/", cache_dir=tmp_path / "c", retries=0),
        )
    assert "http://127.0.0.1:9/simple/app/" in str(caught.value)
    assert caught.value.hint


def _pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("torrip-index")}


def test_cache_hits_are_read_in_the_asking_thread(
    dists: list[Path], local_index, tmp_path: Path
) -> None:
    """A fresh page and a cached metadata file need no request: no pool thread reads them,
    and speculation's callbacks run in the thread that adds them."""
    index = local_index(dists)
    settings = Settings(index_url=index.url, cache_dir=tmp_path / "cache")
    with make_client(settings) as http, IndexClient(settings, http) as client:
        links = client.project_links("app")
        wheel = next(link for link in links if link.filename.endswith(".whl"))
        expected = client.metadata(wheel)
    requests = len(index.requests)
    first_pool = _pool_threads()  # may not have stopped yet

    with make_client(settings) as http, IndexClient(settings, http) as client:
        page = client.prefetch_project("app")
        assert not page.running() and not page.done()  # waits for someone to ask
        ran_in: list[int] = []
        page.add_done_callback(lambda f: ran_in.append(threading.get_ident()))
        assert ran_in == [threading.get_ident()]
        assert page.result() == links
        assert client.metadata(wheel) == expected
        assert _pool_threads() <= first_pool
    assert len(index.requests) == requests


def test_an_on_demand_future_runs_once_for_every_thread() -> None:
    calls: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def work() -> str:
        calls.append(threading.get_ident())
        started.set()
        release.wait(5)
        return "answer"

    future: _OnDemand[str] = _OnDemand(work)
    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(future.result()))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: results.append(future.result()))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert results == ["answer", "answer"]
    assert len(calls) == 1


def test_an_on_demand_future_carries_its_error() -> None:
    def work() -> str:
        raise OSError("disk gone")

    future: _OnDemand[str] = _OnDemand(work)
    with pytest.raises(OSError, match="disk gone"):
        future.result()
    assert isinstance(future.exception(), OSError)


def test_a_warm_plan_asks_the_index_nothing(
    dists: list[Path], local_index, tmp_path: Path, target_venv: Path
) -> None:
    index = local_index(dists)
    settings = Settings(index_url=index.url, cache_dir=tmp_path / "cache")
    request = InstallRequest(requirements=("app",), python=str(target_venv))
    plans = []
    for _ in range(2):
        planned = plan_install(request, settings)
        plans.append(
            sorted((str(d.candidate.name), str(d.candidate.version)) for d in planned.plan.install)
        )
        requests = len(index.requests)
    assert plans[0] == plans[1] == [("app", "1.0"), ("lib", "2.0")]
    assert len(index.requests) == requests


def test_callbacks_of_on_demand_futures_run_in_a_loop_not_a_stack() -> None:
    """Speculation over a dependency chain far deeper than the recursion limit."""
    ran: list[int] = []

    def chain(level: int) -> None:
        ran.append(level)
        if level < 5000:
            _OnDemand(lambda: level + 1).add_done_callback(lambda f: chain(f.result()))

    _OnDemand(lambda: 0).add_done_callback(lambda f: chain(f.result()))
    assert ran == list(range(5001))


def test_a_failing_callback_spoils_no_other(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def outer(_: object) -> None:
        _OnDemand(lambda: 1).add_done_callback(lambda f: 1 / 0)
        _OnDemand(lambda: 2).add_done_callback(lambda f: seen.append("after"))

    _OnDemand(lambda: 0).add_done_callback(outer)
    assert seen == ["after"]
    assert "exception calling callback" in caplog.text


class _CountingIndex:
    """Answers any project page (empty, PEP 691) after ``delay`` seconds; counts the
    requests it is answering at once."""

    def __init__(self, delay: float) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.delay = delay
        self.busy = 0
        self.most = 0
        lock = threading.Lock()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    index.busy += 1
                    index.most = max(index.most, index.busy)
                time.sleep(index.delay)
                body = b'{"meta": {"api-version": "1.1"}, "files": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with lock:
                    index.busy -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_far_index_gets_every_pool_thread(tmp_path: Path) -> None:
    index = _CountingIndex(0.05)  # the first request waits 50 ms: far
    said: list[str] = []
    settings = Settings(index_url=index.url, cache_dir=tmp_path / "cache")
    try:
        with make_client(settings) as http, IndexClient(settings, http, log=said.append) as client:
            client.project_links("first")  # alone: its wait decides
            futures = [client.prefetch_project(f"project-{n}") for n in range(24)]
            assert all(future.result() == [] for future in futures)
    finally:
        index.server.shutdown()
    assert any("more requests at once" in line for line in said)
    assert index.most > NEAR_WIDTH


def test_a_near_index_starts_no_more_threads_than_may_ask(tmp_path: Path) -> None:
    """Threads waiting at the width's gate would only cost their starts: a near index's
    requests share as many threads as may ask at once."""
    index = _CountingIndex(0.0)
    settings = Settings(index_url=index.url, cache_dir=tmp_path / "cache")
    try:
        with make_client(settings) as http, IndexClient(settings, http) as client:
            futures = [client.prefetch_project(f"project-{n}") for n in range(12)]
            assert all(future.result() == [] for future in futures)
            names = [t.name for t in threading.enumerate() if t.name.startswith("torrip-index")]
    finally:
        index.server.shutdown()
    assert 1 <= len(names) <= NEAR_WIDTH


def test_waiting_for_the_gil_is_no_distance(tmp_path: Path) -> None:
    """A near index whose first request had to wait for the GIL (another thread busy on the
    CPU, as when pages are parsed) stays at NEAR_WIDTH: only waits off this process's CPU
    count."""
    index = _CountingIndex(0.0)
    said: list[str] = []
    settings = Settings(index_url=index.url, cache_dir=tmp_path / "cache")
    busy = threading.Event()
    stop = threading.Event()

    def spin() -> None:
        busy.set()
        while not stop.is_set():
            sum(range(1000))  # pure Python: holds the GIL but for the switch interval

    spinner = threading.Thread(target=spin)
    try:
        with make_client(settings) as http, IndexClient(settings, http, log=said.append) as client:
            client.project_links("warm-up")  # httpx imported and connected: measure again
            assert not any("more requests at once" in line for line in said)
            client._width = Width(  # measured again, from scratch
                NEAR_WIDTH, settings.max_connections_per_host, on_widen=client._widened
            )
            spinner.start()
            busy.wait()
            futures = [client.prefetch_project(f"project-{n}") for n in range(NEAR_WIDTH)]
            assert all(future.result() == [] for future in futures)
    finally:
        stop.set()
        if spinner.is_alive():
            spinner.join()
        index.server.shutdown()
    assert not any("more requests at once" in line for line in said)


def test_the_first_requests_wait_decides_the_width(tmp_path: Path) -> None:
    """A near index keeps NEAR_WIDTH requests at once (more threads would only share one
    GIL); only the first request's wait counts."""
    settings = Settings(index_url="http://127.0.0.1:9/simple/", cache_dir=tmp_path)
    for waits, widened in (((FAR_WAIT / 4, 1.0), False), ((FAR_WAIT, 0.0), True)):
        said: list[str] = []
        with make_client(settings) as http, IndexClient(settings, http, log=said.append) as client:
            for wait in waits:
                client._width.observe(wait)
        extra = settings.max_connections_per_host - NEAR_WIDTH
        assert said == (
            [f"index {FAR_WAIT * 1000:.0f} ms away: {extra} more requests at once"]
            if widened
            else []
        )


def test_requests_after_close_are_cancelled_not_raised(tmp_path: Path) -> None:
    """A speculation's callback may still run when an error has ended resolution and closed
    the client: what it asks for is cancelled, not a RuntimeError from a shut-down pool
    printed as a traceback under the user's error."""
    settings = Settings(index_url="http://127.0.0.1:9/simple/", cache_dir=tmp_path)
    with make_client(settings) as http:
        client = IndexClient(settings, http)
        client.close()
        future = client.prefetch_project("late")
    assert future.cancelled()


@pytest.mark.parametrize(
    ("extra", "local"),
    [
        ((), LOCAL_WIDTH),
        (("http://127.0.0.1:1/other/simple/",), LOCAL_WIDTH),
        (("https://pypi.example/simple/",), NEAR_WIDTH),
    ],
    ids=["one index", "two on one host", "two hosts"],
)
def test_one_request_at_a_time_only_where_the_first_answer_speaks_for_every_index(
    extra: tuple[str, ...], local: int, tmp_path: Path
) -> None:
    settings = Settings(
        index_url="http://127.0.0.1:1/simple/", extra_index_url=extra, cache_dir=tmp_path
    )
    with make_client(settings) as http:
        client = IndexClient(settings, http)
        try:
            assert client._width.local == local
        finally:
            client.close()

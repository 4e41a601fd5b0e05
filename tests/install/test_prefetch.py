"""torrip.install.prefetch: pinned wheels fetched and unpacked by forked workers.

Each test runs the Prefetch in a child process of its own: the workers are forked only
while no other thread runs, and pytest's process runs the test servers' threads.
"""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.wheels import make_wheel

_CHILD = """
import sys, time
from pathlib import Path
from packaging.version import Version
from torrip.config import Settings
from torrip.index.links import Link
from torrip.install.prefetch import Prefetch
from torrip.resolver.models import Candidate

url, sha256, size, cache, wait = sys.argv[1:]
name = url.rsplit("/", 1)[1]
link = Link(name, url, {"sha256": sha256}, size=int(size))
with Prefetch(Settings(cache_dir=Path(cache))) as prefetch:
    assert prefetch.workers is not None, "no workers forked"
    prefetch.pinned(Candidate(name.split("-")[0], Version("1.0"), link=link))
    prefetch.pinned(Candidate(name.split("-")[0], Version("1.0"), link=link))  # once only
    assert len(prefetch.fetches) == 1
    if wait == "done":
        [job] = prefetch.fetches.values()
        result = job.result(timeout=60)
        unpacked = prefetch.unpacker.result(result.path, result.sha256)
        print(result.source, result.bytes["origin"], len(unpacked.layout.files))
    else:
        time.sleep(float(wait))
        started = time.monotonic()
        prefetch.close()
        print("closed in", time.monotonic() - started)
"""


def _child(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Serves any path as a 50 MB body, a kilobyte every 10 ms (80 s in all)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(50 << 20))
        self.end_headers()
        try:
            for _ in range(50 << 10):
                self.wfile.write(b"x" * 1024)
                self.wfile.flush()
                time.sleep(0.01)
        except OSError:
            pass  # the client went away: what the test wants

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def trickle() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/files/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_pinned_wheel_is_fetched_and_unpacked_by_a_worker(local_index, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "dists", "demo", "1.0")
    index = local_index([wheel])
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    out = _child(
        index.file_url(wheel.name), sha256, str(wheel.stat().st_size), str(tmp_path / "c"), "done"
    )
    source, origin, files = out.split()
    assert (source, int(origin)) == ("origin", wheel.stat().st_size)
    assert int(files) >= 3  # the module, METADATA, WHEEL... checked against RECORD
    assert index.count(wheel.name) == 1


def test_closing_stops_a_download_under_way(trickle: str, tmp_path: Path) -> None:
    """A failed resolution (or Ctrl-C) closes the Prefetch: a download in a worker stops at
    its next chunk, not at its end."""
    url = trickle + "huge-1.0-py3-none-any.whl"
    out = _child(url, "0" * 64, str(50 << 20), str(tmp_path / "c"), "0.5")
    closed_in = float(out.split()[-1])
    assert closed_in < 5.0


_LIKELY_CHILD = """
import sys
from pathlib import Path
from packaging.version import Version
from torrip.config import Settings
from torrip.index.links import Link
from torrip.install.prefetch import LIKELY_MAX_BYTES, Prefetch
from torrip.resolver.models import Candidate
from torrip.transport.fetch import FileRequest, fetch_key

url, sha256, size, cache = sys.argv[1:]
name = url.rsplit("/", 1)[1]
small = Link(name, url, {"sha256": sha256}, size=int(size))
big = Link("big-1.0-py3-none-any.whl", url + "-big", {"sha256": "0" * 64},
           size=LIKELY_MAX_BYTES + 1)
with Prefetch(Settings(cache_dir=Path(cache))) as prefetch:
    assert prefetch.workers is not None, "no workers forked"
    prefetch.likely(Candidate("big", Version("1.0"), link=big))
    print("big queued:", len(prefetch.fetches))
    prefetch.likely(Candidate(name.split("-")[0], Version("1.0"), link=small))
    [job] = prefetch.fetches.values()
    result = job.result(timeout=60)
    print(result.source, prefetch.unpacker.result(result.path, result.sha256).sha256 == sha256)
"""


def test_a_likely_wheel_is_fetched_before_it_is_pinned_unless_large(
    local_index, tmp_path: Path
) -> None:
    """The resolver's speculation names the candidates it will most likely pin: their wheels
    start at once, but not one so large that fetching it for nothing would cost much."""
    wheel = make_wheel(tmp_path / "dists", "demo", "1.0")
    index = local_index([wheel])
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _LIKELY_CHILD,
            index.file_url(wheel.name),
            sha256,
            str(wheel.stat().st_size),
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["big queued: 0", "origin True"]
    assert index.count(wheel.name) == 1


_STOP_CHILD = """
import sys, time
from pathlib import Path
from packaging.version import Version
from torrip.config import Settings
from torrip.index.links import Link
from torrip.install.prefetch import Prefetch
from torrip.resolver.models import Candidate
from torrip.transport.fetch import FileRequest, fetch_key

base, cache = sys.argv[1:]
links = [Link(f"p{i}-1.0-py3-none-any.whl", f"{base}p{i}-1.0-py3-none-any.whl",
              {"sha256": "0" * 64}, size=50 << 20) for i in range(2)]
with Prefetch(Settings(cache_dir=Path(cache))) as prefetch:
    assert prefetch.workers is not None, "no workers forked"
    for i, link in enumerate(links):
        prefetch.pinned(Candidate(f"p{i}", Version("1.0"), link=link))
    time.sleep(0.5)  # one job at a time while resolving: the first runs, the second waits
    first, second = (fetch_key(FileRequest.from_link(link)) for link in links)
    waiting = prefetch.fetches[second]
    prefetch.stop(keep={first})
    print(sorted(prefetch.fetches) == [first], waiting.cancelled(),
          prefetch.fetches[first].running())
"""


def test_stopping_drops_what_the_install_does_not_need_and_has_not_started(
    trickle: str, tmp_path: Path
) -> None:
    """When the plan is made, fetches of files it does not hold (a likely candidate that
    another was pinned instead of) are dropped if they have not started; the others go on."""
    done = subprocess.run(
        [sys.executable, "-c", _STOP_CHILD, trickle, str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]

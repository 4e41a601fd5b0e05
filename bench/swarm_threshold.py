"""How long a swarm download of a small file takes against plain HTTP, on loopback.

Decides ``SWARM_MIN_SIZE`` (docs/swarm.md): below the size where the swarm's fixed cost
(the .torrent, adding it, announcing, connecting) stops mattering, HTTP is used.

    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/swarm_threshold.py'
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common as c

sys.path.insert(0, str(c.REPO_DIR / "tests"))

from fixtures.swarm import OriginProxy, Seeder, Tracker, big_wheel
from torrip.cache import DistributionCache
from torrip.config import Settings
from torrip.http import make_client
from torrip.index.links import TorrentRef
from torrip.indexserver import IndexServer, build_index
from torrip.transport.fetch import Fetcher, FileRequest
from torrip.transport.recipe import parse_torrent
from torrip.transport.swarm import SwarmSource

SIZES = [256 * 1024, 1024 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024]
RUNS = 5


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="torrip-threshold-"))
    dists = work / "dists"
    wheels = [big_wheel(dists, f"blob{i}", "1.0", size, seed=i) for i, size in enumerate(SIZES)]
    root = work / "public"
    server = IndexServer(root).start()
    origin = OriginProxy(server.base_url)
    build_index(dists, root, base_url=origin.base_url)
    tracker = Tracker()
    seeders = [Seeder(dists, dht=False, address=f"127.0.0.{n + 2}") for n in range(3)]
    for seeder in seeders:
        for wheel in wheels:
            seeder.seed((root / "files" / f"{wheel.name}.torrent").read_bytes(), [tracker.url])
    settings = Settings(
        listen=("127.0.0.1:0",), dht_bootstrap=(), trackers=(tracker.url,), cache_dir=work / "c"
    )
    print(f"{'size':>10} {'http s':>8} {'swarm s':>8}")
    for wheel in wheels:
        data = wheel.read_bytes()
        torrent = parse_torrent((root / "files" / f"{wheel.name}.torrent").read_bytes())
        ref = TorrentRef(btih=torrent.btih, btmh=torrent.btmh, sha256=torrent.sha256)
        url = f"{origin.base_url}files/{wheel.name}"
        request = FileRequest(wheel.name, url, hashlib.sha256(data).hexdigest(), len(data), ref)
        times: dict[str, list[float]] = {"http": [], "swarm": []}
        for run in range(RUNS):
            for kind in ("http", "swarm"):
                cache = DistributionCache(work / f"cache-{kind}-{wheel.name}-{run}")
                with make_client(settings) as http:
                    swarm = SwarmSource(settings, http, cache=cache, min_size=0)
                    swarm._start()  # a session is started once per install: not timed
                    sources = [swarm] if kind == "swarm" else []
                    started = time.perf_counter()
                    with Fetcher(settings, http, cache, sources) as fetcher:
                        result = fetcher.fetch_all([request])[0]
                    times[kind].append(time.perf_counter() - started)
                    assert result.source == ("swarm" if kind == "swarm" else "origin")
                    swarm.close()
        print(
            f"{len(data):>10} {statistics.median(times['http']):8.3f} "
            f"{statistics.median(times['swarm']):8.3f}"
        )
    tracker.stop()
    for seeder in seeders:
        seeder.close()
    origin.stop()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

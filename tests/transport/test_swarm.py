"""Swarm downloads on loopback: peers and the origin at once, every byte accounted for."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.swarm import Swarm, big_wheel
from torrip.cache import DistributionCache
from torrip.http import make_client
from torrip.index.links import TorrentRef
from torrip.transport.fetch import Fetcher, FileRequest
from torrip.transport.recipe import parse_torrent
from torrip.transport.swarm import SwarmSource

SIZE = 3 * 1024 * 1024


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return big_wheel(tmp_path / "dists", "blob", "1.0", SIZE)


def _request(net, wheel: Path, *, with_url: bool = True) -> FileRequest:
    import hashlib

    data = wheel.read_bytes()
    torrent = parse_torrent(net.torrents[wheel.name])
    ref = TorrentRef(btih=torrent.btih, btmh=torrent.btmh, sha256=torrent.sha256)
    return FileRequest(
        wheel.name, net.file_url(wheel.name), hashlib.sha256(data).hexdigest(), len(data), ref
    )


def _fetch(settings, request, logs):
    cache = DistributionCache(settings.cache_dir)
    with make_client(settings) as http:
        swarm = SwarmSource(settings, http, cache=cache, log=logs.append, notice=logs.append)
        try:
            with Fetcher(settings, http, cache, [swarm], log=logs.append) as fetcher:
                return fetcher.fetch_all([request])[0]
        finally:
            swarm.close()


def test_origin_only(swarm: Swarm, wheel: Path, tmp_path: Path) -> None:
    net = swarm([wheel])
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    logs: list[str] = []
    result = _fetch(settings, _request(net, wheel), logs)
    print(logs)
    assert result.source == "swarm"
    sent = net.origin.bytes_sent(wheel.name) + net.origin.bytes_sent(".torrent")
    assert result.bytes["origin"] == sent
    assert result.bytes["peers"] == 0


def test_peers_through_tracker(swarm: Swarm, wheel: Path, tmp_path: Path) -> None:
    net = swarm([wheel], seeders=2, tracker=True)
    net.origin.throttle(50_000)
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    logs: list[str] = []
    result = _fetch(settings, _request(net, wheel), logs)
    print(logs, result.bytes)
    assert result.source == "swarm"
    assert result.bytes["peers"] > SIZE * 0.9

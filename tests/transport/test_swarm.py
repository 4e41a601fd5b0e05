"""Swarm downloads on loopback: peers and the origin at once, every byte accounted for."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.swarm import Swarm, SwarmNet, big_wheel
from torrip.cache import DistributionCache
from torrip.config import Settings
from torrip.errors import TorripError
from torrip.http import make_client
from torrip.index.links import TorrentRef
from torrip.transport import swarm as swarm_module
from torrip.transport.fetch import Fetcher, FetchResult, FileRequest
from torrip.transport.recipe import parse_torrent
from torrip.transport.swarm import SwarmSource

SIZE = 3 * 1024 * 1024


def size_of(path: Path) -> int:
    return path.stat().st_size


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return big_wheel(tmp_path / "dists", "blob", "1.0", SIZE)


def _request(net, wheel: Path) -> FileRequest:
    data = wheel.read_bytes()
    torrent = parse_torrent(net.torrents[wheel.name])
    ref = TorrentRef(btih=torrent.btih, btmh=torrent.btmh, sha256=torrent.sha256)
    return FileRequest(
        wheel.name, net.file_url(wheel.name), hashlib.sha256(data).hexdigest(), len(data), ref
    )


def _fetch(settings, request, logs):
    log = logs.append
    cache = DistributionCache(settings.cache_dir)
    with make_client(settings) as http:
        swarm = SwarmSource(settings, http, cache=cache, log=log, notice=log)
        try:
            with Fetcher(settings, http, cache, [swarm], log=log) as fetcher:
                return fetcher.fetch_all([request])[0]
        finally:
            swarm.close()


def _handed_to_http(net: SwarmNet, wheel: Path, settings: Settings, within: float) -> FetchResult:
    """Fetch ``wheel``: it must come over plain HTTP, handed over in under ``within`` s."""
    logs: list[str] = []
    started = time.monotonic()
    result = _fetch(settings, _request(net, wheel), logs)
    assert result.source == "origin"
    assert any("no peer serves it" in line for line in logs)
    assert time.monotonic() - started < within
    return result


def test_no_peers_hands_the_file_to_http(
    swarm: Swarm, wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long graces: handing over before them can only be the tracker's answer.
    monkeypatch.setattr(swarm_module, "PEER_GRACE", 8.0)
    monkeypatch.setattr(swarm_module, "MAX_PEER_GRACE", 8.0)
    net = swarm([wheel], tracker=True)  # a torrent and a tracker, but nobody seeds it
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    # The tracker said "nobody": no waiting for the grace the DHT would get.
    result = _handed_to_http(net, wheel, settings, within=swarm_module.MAX_PEER_GRACE)
    assert result.bytes["origin"] == net.origin.bytes_sent(wheel.name) == size_of(wheel)


def test_a_tracker_answer_is_not_lost_to_another_downloads_alert_pump(
    swarm: Swarm, wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On loopback a tracker answers before add_torrent returns. Another download's thread
    pumping alerts right then must not take that answer: lost, this file would wait out
    the grace before going to HTTP (one run in three of the zero-peer benchmark did)."""
    monkeypatch.setattr(swarm_module, "PEER_GRACE", 8.0)
    monkeypatch.setattr(swarm_module, "MAX_PEER_GRACE", 8.0)
    add = SwarmSource._add

    def add_then_pump_as_another_thread(self: SwarmSource, *args: object) -> object:
        added = add(self, *args)  # type: ignore[arg-type]
        time.sleep(0.3)  # the tracker's answer is in the alert queue by now
        other = threading.Thread(target=self._pump_alerts)
        other.start()
        other.join()
        return added

    monkeypatch.setattr(SwarmSource, "_add", add_then_pump_as_another_thread)
    net = swarm([wheel], tracker=True)  # nobody seeds it
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    _handed_to_http(net, wheel, settings, within=swarm_module.MAX_PEER_GRACE)


def test_no_peer_source_no_swarm(swarm: Swarm, wheel: Path, tmp_path: Path) -> None:
    net = swarm([wheel])  # no tracker anywhere, no DHT, no LAN discovery
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    assert not settings.trackers and not settings.dht_bootstrap
    logs: list[str] = []
    result = _fetch(settings, _request(net, wheel), logs)
    assert result.source == "origin"
    assert any("no tracker, DHT or LAN discovery" in line for line in logs)


def test_what_the_swarm_takes_on_itself(tmp_path: Path) -> None:
    """The fetcher starts at once only the downloads the swarm may pace itself; the rest
    wait their turn for HTTP, the largest first."""
    url = "http://127.0.0.1:9/blob-1.0-py3-none-any.whl"
    name = url.rsplit("/", 1)[1]
    big = FileRequest(name, url, "0" * 64, 4 << 20, TorrentRef(btih="0" * 40))
    small = replace(big, size=swarm_module.SWARM_MIN_SIZE - 1)
    bare = replace(big, torrent=None)
    lonely = Settings(cache_dir=tmp_path / "cache", dht_bootstrap=(), lan_discovery=False)
    tracked = replace(lonely, trackers=("http://127.0.0.1:9/announce",))
    with make_client(lonely) as http:
        paced = {
            name: [SwarmSource(settings, http).paces(r) for r in (big, small, bare)]
            for name, settings in (("lonely", lonely), ("tracked", tracked))
        }
    # Alone, only the .torrent's own trackers could find peers: it is fetched in turn.
    assert paced == {"lonely": [False, False, False], "tracked": [True, False, False]}


def test_what_the_workers_of_a_cold_install_may_fetch(tmp_path: Path) -> None:
    """What the install fetches over HTTP, but not what the user's swarm can find peers
    for, nor, under a live display, a file that gets a bar of its own."""
    from torrip.install.prefetch import OverHttp

    url = "http://127.0.0.1:9/blob-1.0-py3-none-any.whl"
    name = url.rsplit("/", 1)[1]
    big = FileRequest(name, url, "0" * 64, 4 << 20, TorrentRef(btih="0" * 40))
    small = replace(big, size=100_000)
    plain = replace(big, torrent=None)
    local = replace(plain, url=(tmp_path / name).as_uri())
    lonely = Settings(cache_dir=tmp_path / "cache", dht_bootstrap=(), lan_discovery=False)
    tracked = replace(lonely, trackers=("http://127.0.0.1:9/announce",))
    far = replace(small, url=f"https://files.example.org/{name}")
    requests = (big, small, plain, local, far)
    with make_client(lonely) as http:
        assert [OverHttp(lonely, http)(r) for r in requests] == [True, True, True, False, False]
        assert [OverHttp(tracked, http)(r) for r in requests] == [False, True, True, False, False]
        bars = OverHttp(lonely, http, bars=True)
        assert [bars(r) for r in requests] == [False, True, False, False, False]


@pytest.mark.parametrize(
    ("url", "near"),
    [
        ("http://127.0.0.1:8080/simple/", True),
        ("http://localhost/simple/", True),
        ("http://[::1]:3141/root/pypi/", True),
        ("http://10.1.2.3/simple/", True),
        ("http://192.168.0.7:8000/", True),
        ("https://pypi.org/simple/", False),
        ("https://files.pythonhosted.org/packages/x.whl", False),
        ("http://8.8.8.8/simple/", False),
        ("file:///srv/index/", False),
    ],
)
def test_near_hosts_are_this_machine_and_private_networks(url: str, near: bool) -> None:
    from torrip.install.prefetch import near_host

    assert near_host(url) is near


_LIBTORRENT_UNLOADED = """
import sys
from pathlib import Path
from torrip.config import Settings
from torrip.http import make_client
from torrip.index.links import TorrentRef
from torrip.transport.fetch import FileRequest
from torrip.transport.swarm import swarm_for

settings = Settings(cache_dir=Path(sys.argv[1]), dht_bootstrap=(), lan_discovery=False)
url = "http://127.0.0.1:9/blob-1.0-py3-none-any.whl"
request = FileRequest(url.rsplit("/")[-1], url, "0" * 64, 1 << 30, TorrentRef(btih="0" * 40))
with make_client(settings) as http, swarm_for(settings, http, None, [request]) as sources:
    print(len(sources), "libtorrent" in sys.modules)
"""


def test_libtorrent_is_loaded_only_for_a_session(tmp_path: Path) -> None:
    """Files with torrents get a swarm source; libtorrent (7-9 ms to load) waits for a
    session, which files nobody could find peers for never start."""
    child = subprocess.run(
        [sys.executable, "-c", _LIBTORRENT_UNLOADED, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run")},  # no agent of the user's
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["1", "False"]


def test_large_file_without_peers_gets_the_origin_as_web_seed(
    swarm: Swarm, wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swarm_module, "HANDOVER_MAX_SIZE", 0)  # as for a multi-GB file
    net = swarm([wheel], tracker=True)
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    logs: list[str] = []
    result = _fetch(settings, _request(net, wheel), logs)
    assert result.source == "swarm"
    sent = net.origin.bytes_sent(wheel.name) + net.origin.bytes_sent(".torrent")
    assert result.bytes["origin"] == sent
    assert result.bytes["peers"] == 0
    assert any("the origin joins" in line for line in logs)


def test_peers_through_tracker(swarm: Swarm, wheel: Path, tmp_path: Path) -> None:
    net = swarm([wheel], seeders=2, tracker=True)
    net.origin.throttle(50_000)
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    logs: list[str] = []
    result = _fetch(settings, _request(net, wheel), logs)
    assert result.source == "swarm"
    assert result.bytes["peers"] > SIZE * 0.9


def test_origin_stopped_mid_run_peers_finish(swarm: Swarm, wheel: Path, tmp_path: Path) -> None:
    net = swarm([wheel], seeders=2, tracker=True, seeder_rate=1_000_000)  # ~2 s from peers
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    stopper = threading.Timer(0.3, net.origin.stop)
    stopper.start()
    logs: list[str] = []
    result = _fetch(settings, _request(net, wheel), logs)
    stopper.join()
    assert net.origin.stopped
    assert result.source == "swarm"
    assert result.path.read_bytes() == wheel.read_bytes()
    assert result.bytes["peers"] >= SIZE - result.bytes["origin"]


def test_magnet_found_through_a_loopback_dht_only(
    swarm: Swarm, wheel: Path, tmp_path: Path
) -> None:
    net = swarm([wheel], seeders=2, dht=True)  # no tracker: the DHT is the only way
    net.origin.stop()  # no .torrent, no origin: the infohash and the DHT must do
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    assert settings.dht_bootstrap and not settings.trackers
    logs: list[str] = []
    result = _fetch(settings, _request(net, wheel), logs)
    assert result.source == "swarm"
    assert result.bytes == {"cache": 0, "origin": 0, "peers": result.path.stat().st_size}
    assert result.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert any("asking peers for it by infohash" in line for line in logs)


def test_magnet_metadata_for_another_file_is_refused(
    swarm: Swarm, wheel: Path, tmp_path: Path
) -> None:
    other = big_wheel(tmp_path / "other", "other", "1.0", SIZE, seed=5)
    net = swarm([wheel, other], seeders=1, tracker=True)
    net.origin.stop()
    request = _request(net, wheel)
    liar_ref = _request(net, other).torrent  # the infohash of another file
    logs: list[str] = []
    with pytest.raises(TorripError):  # no origin left to fall back on
        _fetch(
            net.client_settings(cache_dir=tmp_path / "cache", retries=0),
            replace(request, torrent=liar_ref),
            logs,
        )
    assert any("the swarm's torrent names" in line for line in logs)


@pytest.mark.parametrize("trackers", [(), ("http://127.0.0.1:9/announce",)])
def test_the_running_agent_is_a_peer(
    agent_home, tmp_path: Path, monkeypatch, trackers: tuple[str, ...]
) -> None:
    home = agent_home()
    cached = home.cache_file("served-1.0-py3-none-any.whl", 2 * 1024 * 1024, seed=7)
    home.start()
    home.wait_seeding(1)
    # This install has no DHT, no LAN discovery, no tracker (or one that is down) and an
    # origin that is down; its cache is another one, so the file is not there: only the
    # agent can serve it.
    monkeypatch.setenv("XDG_RUNTIME_DIR", home.env["XDG_RUNTIME_DIR"])
    settings = home.settings.replace(
        cache_dir=tmp_path / "other-cache", retries=0, trackers=trackers
    )
    assert not (settings.dht_bootstrap or settings.lan_discovery)
    torrent = cached.torrent
    request = FileRequest(
        cached.path.name,
        "http://127.0.0.1:9/nowhere/served-1.0-py3-none-any.whl",
        cached.sha256,
        torrent.length,
        TorrentRef(btih=torrent.btih, btmh=torrent.btmh),
    )
    logs: list[str] = []
    result = _fetch(settings, request, logs)
    assert result.source == "swarm"
    assert result.bytes["peers"] == torrent.length
    assert result.path.read_bytes() == cached.path.read_bytes()
    assert any("the running seeding agent at 127.0.0.1:" in line for line in logs)


def test_an_unreachable_dht_is_not_waited_for(
    swarm: Swarm, wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swarm_module, "PEER_GRACE", 8.0)
    monkeypatch.setattr(swarm_module, "MAX_PEER_GRACE", 8.0)
    net = swarm([wheel])
    # Nothing answers at this address: the DHT never gets a node (as without internet).
    settings = net.client_settings(cache_dir=tmp_path / "cache", dht_bootstrap=("127.0.0.1:9",))
    _handed_to_http(net, wheel, settings, within=swarm_module.PEER_GRACE)


def test_an_agent_without_the_file_does_not_hold_up_the_handover(
    swarm: Swarm, wheel: Path, agent_home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swarm_module, "PEER_GRACE", 8.0)
    monkeypatch.setattr(swarm_module, "MAX_PEER_GRACE", 8.0)
    home = agent_home()
    home.cache_file("other-1.0-py3-none-any.whl", 100_000, seed=3)
    home.start()
    home.wait_seeding(1)
    monkeypatch.setenv("XDG_RUNTIME_DIR", home.env["XDG_RUNTIME_DIR"])
    net = swarm([wheel], tracker=True)  # the tracker knows nobody; the agent lacks the file
    settings = net.client_settings(cache_dir=tmp_path / "cache")
    logs: list[str] = []
    started = time.monotonic()
    result = _fetch(settings, _request(net, wheel), logs)
    assert any("the running seeding agent at" in line for line in logs)
    assert result.source == "origin"
    assert time.monotonic() - started < 8.0


def test_a_duplicate_connection_dropped_is_not_a_peer_gone() -> None:
    """Two peers that dial each other keep one connection: the other's end is no reason to
    think the peer left (and hand the file to HTTP with it still connected)."""
    lt = pytest.importorskip("libtorrent")

    class Dropped:
        def __init__(self, reason: object) -> None:
            self.reason = reason

    assert not swarm_module._peer_left(Dropped(lt.close_reason_t.duplicate_peer_id))
    assert swarm_module._peer_left(Dropped(lt.close_reason_t.corrupt_pieces))
    assert swarm_module._peer_left(Dropped(lt.close_reason_t.none))  # refused, timed out

"""`torrip install` through a swarm on loopback: peers, origin, failures, and the report.

Each case installs real wheels into a real venv; the origin counts what it sent,
and the report must say the same.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from fixtures.swarm import Swarm, SwarmNet, big_wheel
from fixtures.wheels import make_wheel
from torrip.cli.main import main
from torrip.transport import swarm as swarm_module

SIZE = 3 * 1024 * 1024


@pytest.fixture
def wheels(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "dists"
    return [
        big_wheel(folder, "blob", "1.0", SIZE, seed=1),
        make_wheel(folder, "tiny", "1.0"),  # below the swarm's minimum: plain HTTP
    ]


def _install(
    net_flags: list[str], venv: Path, tmp_path: Path, *extra: str, report: str = "r.json"
) -> dict:
    code = main(
        [
            "install",
            "--isolated",
            "--cache-dir",
            str(tmp_path / "cache"),
            *net_flags,
            "--python",
            str(venv),
            "--report",
            str(tmp_path / report),
            *extra,
            "blob",
            "tiny",
        ]
    )
    assert code == 0
    return json.loads((tmp_path / report).read_text())


def _install_blob(net_flags: list[str], venv: Path, tmp_path: Path) -> int:
    """``torrip install blob`` alone, without a report: its exit status."""
    command = ["install", "--isolated", "--cache-dir", str(tmp_path / "cache"), *net_flags]
    return main([*command, "--python", str(venv), "blob"])


def _items(report: dict) -> dict[str, dict]:
    return {item["metadata"]["name"]: item for item in report["install"]}


def _assert_installed(venv: Path, wheel: Path) -> None:
    blob = next(venv.glob("lib/python*/site-packages/blob/blob.bin"))
    with __import__("zipfile").ZipFile(wheel) as archive:
        assert blob.read_bytes() == archive.read("blob/blob.bin")


def _origin_bytes_for(net: SwarmNet, filename: str) -> int:
    return net.origin.bytes_sent("/" + filename) + net.origin.bytes_sent(
        "/" + filename + ".torrent"
    )


def test_peers_carry_the_file_and_the_report_matches_the_origin(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path, capsys
) -> None:
    net = swarm(wheels, seeders=2, tracker=True)
    net.origin.throttle(200_000)  # a slow origin: peers should carry nearly everything
    venv = make_venv()
    report = _install(net.client_flags(), venv, tmp_path)
    blob = _items(report)["blob"]["torrip"]
    assert blob["source"] == "swarm"
    assert blob["bytes"]["peers"] >= SIZE * 0.9
    # Exact accounting: what the report says the origin sent is what the origin counted.
    assert blob["bytes"]["origin"] == _origin_bytes_for(net, wheels[0].name)
    tiny = _items(report)["tiny"]["torrip"]
    assert tiny["source"] == "origin"
    assert tiny["bytes"]["origin"] == net.origin.bytes_sent("/" + wheels[1].name)
    totals = report["torrip"]["bytes"]
    assert totals["origin"] == blob["bytes"]["origin"] + tiny["bytes"]["origin"]
    assert sum(seeder.uploaded() for seeder in net.seeders) >= blob["bytes"]["peers"]
    _assert_installed(venv, wheels[0])
    said = capsys.readouterr().out
    peers_share = 100 * totals["peers"] // (totals["peers"] + totals["origin"])
    assert "% from peers" in said and f": {peers_share}% from peers" in said


def test_no_peers_the_origin_serves_it_all(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swarm_module, "HANDOVER_MAX_SIZE", 0)  # the origin as a web seed
    net = swarm(wheels, tracker=True)  # torrents and a tracker, but nobody seeds them
    venv = make_venv()
    report = _install(net.client_flags(), venv, tmp_path)
    blob = _items(report)["blob"]["torrip"]
    assert blob["source"] == "swarm"
    assert blob["bytes"]["peers"] == 0
    origin = _origin_bytes_for(net, wheels[0].name)
    assert blob["bytes"]["origin"] == origin
    assert origin >= SIZE
    _assert_installed(venv, wheels[0])


def test_peers_that_come_late_serve_a_file_the_origin_lost(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path, capsys
) -> None:
    # Nobody seeds at first, so the swarm hands the file to HTTP; the origin has lost it
    # (404), so torrip waits for peers, and a seeder that turns up later serves it.
    net = swarm(wheels, seeders=1, tracker=True, seeded=[])
    assert net.tracker is not None
    net.origin.missing.add(wheels[0].name)
    seeder = net.seeders[0]
    shutil.copyfile(wheels[0], seeder.folder / wheels[0].name)
    torrent = (net.root / "files" / f"{wheels[0].name}.torrent").read_bytes()
    tracker_url = net.tracker.url

    def arrive_late() -> None:
        time.sleep(1.0)
        seeder.seed(torrent, [tracker_url])

    late = threading.Thread(target=arrive_late)
    late.start()
    try:
        venv = make_venv()
        report = _install(net.client_flags(), venv, tmp_path, "-v")
    finally:
        late.join()
    captured = capsys.readouterr()
    err = captured.err
    assert "no peer serves it (" in err
    assert "the origin failed (" in err and "waiting for peers" in err
    told = f"{wheels[0].name}: the origin cannot serve it; waiting up to 30 s for peers"
    assert told in captured.out + err
    blob = _items(report)["blob"]["torrip"]
    assert blob["source"] == "swarm", err
    assert blob["bytes"]["peers"] == wheels[0].stat().st_size
    assert net.origin.bytes_sent("/" + wheels[0].name) == 0  # the .torrent only
    _assert_installed(venv, wheels[0])


def test_an_origin_that_lost_the_file_with_nobody_seeding_fails_clearly(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path, capsys
) -> None:
    net = swarm(wheels, tracker=True)  # torrents and a tracker, but nobody seeds them
    net.origin.missing.add(wheels[0].name)
    venv = make_venv()
    assert _install_blob([*net.client_flags(), "--timeout", "2"], venv, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"{wheels[0].name} answered HTTP 404" in err
    assert not list((venv / "lib").glob("python*/site-packages/blob*"))


def test_corrupt_origin_with_good_peers_still_installs(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path
) -> None:
    net = swarm(wheels, seeders=1, tracker=True, seeded=[wheels[0].name])
    venv = make_venv()
    planned = _install(net.client_flags(), venv, tmp_path, "--dry-run", report="plan.json")
    assert _items(planned)["blob"]["torrip"]["torrent"]["btih"]
    net.origin.corrupt = True  # from now on every distribution byte it serves is wrong
    assert _install_blob(net.client_flags(), venv, tmp_path) == 0
    _assert_installed(venv, wheels[0])


def test_a_peer_sending_corrupt_pieces_is_banned(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path, capsys
) -> None:
    # The liar is fast, the honest seeder slow: the liar's pieces arrive first.
    net = swarm(wheels, seeders=1, corrupt_seeders=1, tracker=True, seeder_rate=1_000_000)
    net.origin.throttle(1_000_000)
    venv = make_venv()
    report = _install(net.client_flags(), venv, tmp_path, "-v")
    _assert_installed(venv, wheels[0])
    blob = _items(report)["blob"]["torrip"]
    err = capsys.readouterr().err
    assert blob["source"] == "swarm", err
    assert f"peer {net.seeders[1].address}:{net.seeders[1].port} banned peer" in err
    assert f"{net.seeders[0].address}:{net.seeders[0].port} banned" not in err


def test_libtorrent_missing_means_http_with_one_line(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path, monkeypatch, capsys
) -> None:
    net = swarm(wheels, seeders=1, tracker=True)
    monkeypatch.setenv("TORRIP_NO_LIBTORRENT", "1")
    venv = make_venv()
    report = _install(net.client_flags(), venv, tmp_path)
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert said.count("peer to peer is off (libtorrent is not installed)") == 1
    assert _items(report)["blob"]["torrip"]["source"] == "origin"
    assert sum(seeder.uploaded() for seeder in net.seeders) == 0
    _assert_installed(venv, wheels[0])


def test_no_p2p_flag_and_an_unusable_listen_address(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path, capsys
) -> None:
    net = swarm(wheels, seeders=1, tracker=True)
    report = _install(net.client_flags(), make_venv(), tmp_path, "--no-p2p")
    assert _items(report)["blob"]["torrip"]["source"] == "origin"
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count(
        "peer to peer is off (--no-p2p, or p2p = false)"
    ) == 1
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: listening there fails.
    flags = [*net.client_flags(), "--listen", "192.0.2.1:6881"]
    (tmp_path / "cache").rename(tmp_path / "cache-before")
    report = _install(flags, make_venv(), tmp_path)
    captured = capsys.readouterr()
    assert "peer to peer is off (cannot listen on 192.0.2.1:6881)" in captured.out + captured.err
    assert _items(report)["blob"]["torrip"]["source"] == "origin"
    assert sum(seeder.uploaded() for seeder in net.seeders) == 0


def test_a_torrent_for_other_bytes_is_distrusted_and_http_used(
    swarm: Swarm, local_index, make_venv, tmp_path: Path, capsys
) -> None:
    # Same name, same size, other bytes: a torrent index that lies about the file.
    real = big_wheel(tmp_path / "real", "blob", "1.0", SIZE, seed=1)
    for seed in range(2, 200):  # deflate adds a few bytes or not: find a fake of equal size
        fake = big_wheel(tmp_path / f"fake{seed}", "blob", "1.0", SIZE, seed=seed)
        if fake.stat().st_size == real.stat().st_size:
            break
    assert real.stat().st_size == fake.stat().st_size
    liar = swarm([fake], seeders=1, tracker=True)
    plain = local_index([real], torrents=False)
    sha256 = hashlib.sha256(real.read_bytes()).hexdigest()
    published = local_index([real])  # its torrent index tree, then one torrent swapped
    shutil.copyfile(
        liar.root / "files" / f"{fake.name}.torrent",
        published.root / "torrents" / sha256[:2] / f"{sha256}.torrent",
    )
    venv = make_venv()
    code = main(
        [
            "install",
            "--isolated",
            "-v",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--index-url",
            plain.url,
            "--torrent-index",
            published.base_url + "torrents/",
            "--listen",
            "127.0.0.1:0",
            "--dht-bootstrap",
            "",
            "--trackers",
            liar.tracker.url if liar.tracker else "",
            "--report",
            str(tmp_path / "r.json"),
            "--python",
            str(venv),
            "blob",
        ]
    )
    assert code == 0
    _assert_installed(venv, real)
    item = _items(json.loads((tmp_path / "r.json").read_text()))["blob"]["torrip"]
    assert item["source"] == "origin"
    assert "swarm failed" in capsys.readouterr().err


def test_a_warm_install_starts_no_swarm(
    swarm: Swarm, wheels: list[Path], make_venv, tmp_path: Path, monkeypatch
) -> None:
    net = swarm(wheels, seeders=1, tracker=True)
    _install(net.client_flags(), make_venv(), tmp_path)

    def no_swarm(*args: object, **kwargs: object) -> None:
        raise AssertionError("a swarm was started with every file in the cache")

    monkeypatch.setattr(swarm_module, "SwarmSource", no_swarm)
    venv = make_venv()
    report = _install(net.client_flags(), venv, tmp_path, report="warm.json")
    assert {item["torrip"]["source"] for item in report["install"]} == {"cache"}
    _assert_installed(venv, wheels[0])

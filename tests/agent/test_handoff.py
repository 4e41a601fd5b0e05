"""After an install: files go to the agent per the `seed` setting, and others get them from it."""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fixtures.agent import AgentHome, CachedFile, agent_processes, wait_for
from fixtures.environments import MakeVenv
from fixtures.swarm import Swarm, big_wheel
from torrip.agent.client import ping
from torrip.agent.handoff import hand_to_agent, seedable
from torrip.cache import DistributionCache, sha256_of
from torrip.index.links import TorrentRef
from torrip.indexserver import IndexServer, build_index
from torrip.transport.fetch import FetchResult, FileRequest
from torrip.transport.recipe import TorrentFile, make_torrent, parse_torrent

Home = Callable[..., AgentHome]


def _fetched(cached: CachedFile, *, verified: bool = True) -> FetchResult:
    request = FileRequest(cached.path.name, f"http://origin/{cached.path.name}", None, None)
    size = cached.path.stat().st_size
    return FetchResult(request, cached.path, "origin", {"origin": size}, cached.sha256, verified)


def _without_torrent(
    home: AgentHome, name: str, size: int, ref: TorrentRef | None = None, *, seed: int = 9
) -> tuple[FetchResult, TorrentFile]:
    """A verified cached file without a kept torrent (it came over HTTP), and its recipe torrent."""
    cache = DistributionCache(home.cache_dir)
    temp = cache.temp_dir() / name
    temp.write_bytes(random.Random(seed).randbytes(size))
    sha256 = sha256_of(temp)
    path = cache.add_file(temp, sha256, name)
    url = f"http://origin.invalid/files/{name}"
    request = FileRequest(name, url, sha256, path.stat().st_size, ref)
    result = FetchResult(request, path, "origin", {"origin": size}, sha256, True)
    return result, make_torrent(path)


def test_only_verified_files_with_a_torrent_are_handed_over(agent_home: Home) -> None:
    home = agent_home()
    with_torrent = home.cache_file("a-1.0-py3-none-any.whl", 20_000)
    unverified = home.cache_file("b-1.0-py3-none-any.whl", 20_000, seed=1)
    unannounced, _ = _without_torrent(home, "c-1.0-py3-none-any.whl", 100)
    announced, _ = _without_torrent(
        home, "d-1.0-py3-none-any.whl", 100, TorrentRef(btih="ab" * 20), seed=4
    )
    results = [
        _fetched(with_torrent),
        _fetched(with_torrent),  # the same file twice: once
        _fetched(unverified, verified=False),
        unannounced,
        announced,
    ]
    assert seedable(DistributionCache(home.cache_dir), results) == [
        {"sha256": with_torrent.sha256},
        {
            "sha256": announced.sha256,
            "filename": "d-1.0-py3-none-any.whl",
            "url": announced.request.url,
            "btih": "ab" * 20,
        },
    ]


def test_the_agent_makes_the_announced_torrent_of_a_file_that_came_over_http(
    agent_home: Home,
) -> None:
    home = agent_home()
    name = "http-1.0-py3-none-any.whl"
    right, torrent = _without_torrent(home, name, 300_000)
    ref = TorrentRef(btih=torrent.btih, btmh=torrent.btmh)
    right = right._replace(request=replace(right.request, torrent=ref))
    wrong, _ = _without_torrent(home, "x-1.0-py3-none-any.whl", 1000, TorrentRef(btih="00" * 20))
    outcome, _lines = _hand(home, [right, wrong])
    assert outcome.files == 2  # type: ignore[attr-defined]  # both accepted, to be checked
    home.wait_seeding(1)
    wait_for(lambda: "not recipe 1" in home.paths.log_file.read_text(), 10)
    kept = parse_torrent(DistributionCache(home.cache_dir).torrent(right.sha256) or b"")
    assert (kept.btih, kept.btmh) == (torrent.btih, torrent.btmh)
    assert kept.web_seeds == (right.request.url,)  # the origin, for downloaders
    assert DistributionCache(home.cache_dir).torrent(wrong.sha256) is None
    assert home.status()["files_known"] == 1


def _hand(home: AgentHome, results: list[FetchResult], **env: str) -> tuple[object, list[str]]:
    lines: list[str] = []
    outcome = hand_to_agent(
        home.settings if not env else home_settings(home, env),
        results,
        [home.root / "venv" / "site-packages"],
        notice=lines.append,
        warn=lines.append,
        environ={**home.env, **env},
    )
    return outcome, lines


def home_settings(home: AgentHome, env: dict[str, str]) -> object:
    from torrip.config import load_settings

    return load_settings(environ={**home.env, **env})


def test_seed_never_and_auto_under_ci_start_nothing(agent_home: Home) -> None:
    home = agent_home()
    results = [_fetched(home.cache_file("a-1.0-py3-none-any.whl", 20_000))]
    outcome, lines = _hand(home, results, TORRIP_SEED="never")
    assert outcome.skipped == "seeding is off" and lines == []  # type: ignore[attr-defined]
    outcome, lines = _hand(home, results, TORRIP_SEED="auto", CI="true")
    assert outcome.skipped == "CI is set" and lines == []  # type: ignore[attr-defined]
    assert ping(home.paths) is None and agent_processes(home.paths.run) == []


def test_auto_starts_the_agent_once_and_says_how_to_stop_it(agent_home: Home) -> None:
    home = agent_home(TORRIP_SEED="auto")
    first = home.cache_file("a-1.0-py3-none-any.whl", 20_000)
    outcome, lines = _hand(home, [_fetched(first)])
    pid = outcome.started_pid  # type: ignore[attr-defined]
    assert pid is not None and ping(home.paths)["pid"] == pid  # type: ignore[index]
    assert len(lines) == 1 and "torrip agent stop" in lines[0] and f"pid {pid}" in lines[0]
    second = home.cache_file("b-1.0-py3-none-any.whl", 20_000, seed=1)
    outcome, lines = _hand(home, [_fetched(second)])
    assert outcome.started_pid is None and outcome.files == 1 and lines == []  # type: ignore[attr-defined]
    home.wait_seeding(2)
    home.torrip("agent", "stop")
    state = json.loads(home.paths.state_file.read_text())
    assert state["files"][second.sha256]["environments"] == [
        str(home.root / "venv" / "site-packages")
    ]


def _site_file(venv: Path, wheel: Path) -> tuple[bytes, bytes]:
    name = wheel.name.split("-")[0]
    installed = next(venv.glob(f"lib/python*/site-packages/{name}/blob.bin")).read_bytes()
    with zipfile.ZipFile(wheel) as archive:
        return installed, archive.read(f"{name}/blob.bin")


def test_an_install_seeds_and_another_home_downloads_from_it_with_the_origin_stopped(
    agent_home: Home, swarm: Swarm, make_venv: MakeVenv, tmp_path: Path
) -> None:
    wheels = [
        big_wheel(tmp_path / "dists", "blob", "1.0", 2 * 1024 * 1024, seed=1),
        big_wheel(tmp_path / "dists", "blub", "2.0", 1536 * 1024, seed=2),
    ]
    net = swarm(wheels, tracker=True)  # no seeders yet: the first home takes the origin's
    assert net.tracker is not None
    first = agent_home(TORRIP_TRACKERS=net.tracker.url)
    second = agent_home(TORRIP_TRACKERS=net.tracker.url, TORRIP_SEED="never")
    venv_a, venv_b = make_venv(), make_venv()

    installed = first.torrip(
        "install", "--index-url", net.url, "--python", str(venv_a), "blob", "blub"
    )
    assert "Seeding 2 downloaded files" in installed.stdout, installed.stdout + installed.stderr
    first.wait_seeding(2)
    # Seeding is not yet announced: until the tracker knows the agent for both files, it
    # would tell the second home "nobody", and the file would go to the (stopped) origin.
    agent = first.port()

    def announced() -> bool:  # copies taken at once: the tracker's thread changes them
        return (
            sum(any(p == agent for _, p in list(k)) for k in list(net.tracker.peers.values())) >= 2
        )

    wait_for(announced, 15, lambda: f"the tracker does not know the agent (port {agent})")

    # From now on no HTTP server has the files: the origin is stopped, and the second home's
    # index serves pages, metadata and torrents (same infohashes: the recipe) but no file.
    net.origin.stop()
    bare = tmp_path / "bare-index"
    build_index(tmp_path / "dists", bare)
    for wheel in (bare / "files").glob("*.whl"):
        wheel.unlink()
    index = IndexServer(bare).start()
    try:
        report_path = tmp_path / "second.json"
        done = second.torrip(
            "install",
            "-v",  # what the swarm did, in the message of a failure
            "--index-url",
            index.url,
            "--python",
            str(venv_b),
            "--report",
            str(report_path),
            "blob",
            "blub",
            check=False,
            timeout=120,
        )
    finally:
        index.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    for item in report["install"]:
        torrip = item["torrip"]
        assert torrip["source"] == "swarm", torrip
        # Every byte of the file from the first home's agent; the index sent only the .torrent.
        assert torrip["bytes"]["peers"] == torrip["size"], torrip
        torrent = bare / "files" / f"{torrip['filename']}.torrent"
        assert torrip["bytes"]["origin"] == torrent.stat().st_size, torrip
    for wheel in wheels:
        got, expected = _site_file(venv_b, wheel)
        assert got == expected
    sizes = sum(wheel.stat().st_size for wheel in wheels)
    assert first.status()["uploaded_run"] >= sizes
    assert ping(second.paths) is None  # seed = never in the second home


def test_a_download_seeds_too_with_no_environment(
    agent_home: Home, swarm: Swarm, tmp_path: Path
) -> None:
    """torrip download hands what it fetched to the agent as an install does; no
    environment needs those files, so the agent lists none for them (evicted first)."""
    wheel = big_wheel(tmp_path / "dists", "blob", "1.0", 2 * 1024 * 1024, seed=3)
    net = swarm([wheel], tracker=True)
    home = agent_home()
    done = home.torrip("download", "--index-url", net.url, "-d", str(tmp_path / "w"), "blob")
    assert "Seeding 1 downloaded file " in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "w" / wheel.name).read_bytes() == wheel.read_bytes()
    home.wait_seeding(1)
    home.torrip("agent", "stop")
    state = json.loads(home.paths.state_file.read_text())
    (entry,) = state["files"].values()
    assert entry["environments"] == []
    skipped = home.torrip(
        "download", "--index-url", net.url, "-d", str(tmp_path / "w2"), "--no-seed", "blob"
    )
    assert "Seeding" not in skipped.stdout
    assert ping(home.paths) is None  # --no-seed started nothing

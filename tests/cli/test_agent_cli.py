"""`torrip agent` and `torrip seed` from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from fixtures.agent import AgentHome
from fixtures.index import LocalIndex
from fixtures.wheels import make_wheel
from torrip.cache import sha256_of
from torrip.transport.recipe import parse_torrent, verify_file

Home = Callable[..., AgentHome]


def test_service_prints_a_unit_for_this_interpreter(agent_home: Home) -> None:
    unit = agent_home().torrip("agent", "service", "systemd").stdout
    assert f"ExecStart={sys.executable} -m torrip agent run" in unit
    plist = agent_home().torrip("agent", "service", "launchd").stdout
    assert "<string>agent</string>" in plist


def test_commands_that_need_an_agent_say_how_to_start_one(agent_home: Home) -> None:
    home = agent_home()
    for args in (["agent", "list"], ["agent", "remove", "x"]):
        done = home.torrip(*args, check=False)
        assert done.returncode == 1
        assert "no agent is running" in done.stderr and "torrip agent start" in done.stderr
    status = home.torrip("agent", "status", check=False)
    assert status.returncode == 3 and "No agent is running." in status.stdout


def test_bad_limits_fail_before_anything_starts(agent_home: Home) -> None:
    home = agent_home()
    done = home.torrip("agent", "start", "--seed-days", "-3", check=False)
    assert done.returncode == 2 and "seed-days must not be negative" in done.stderr
    assert home.torrip("agent", "status", check=False).returncode == 3  # nothing started
    bad_setting = agent_home(TORRIP_SEED_QUOTA="lots")
    done = bad_setting.torrip("agent", "start", check=False)
    assert done.returncode == 2 and "seed-quota" in done.stderr


def test_agent_add_without_an_agent_keeps_the_file_for_later(
    agent_home: Home, tmp_path: Path
) -> None:
    home = agent_home()
    wheel = make_wheel(tmp_path, "mine", "1.0")
    done = home.torrip("agent", "add", str(wheel))
    assert "they are seeded once the agent runs" in done.stdout
    home.start()
    assert home.wait_seeding(1)["files_known"] == 1


def test_seed_publishes_recipe_torrents_with_the_origin_as_web_seed(
    agent_home: Home, local_index: LocalIndex, tmp_path: Path
) -> None:
    home = agent_home()
    dists = tmp_path / "dists"
    wheels = [
        make_wheel(dists, "app", "1.0", requires_dist=["lib>=2"]),
        make_wheel(dists, "lib", "2.0"),
    ]
    index = local_index(wheels)
    published = tmp_path / "torrents"
    venv_python = sys.executable  # only its tags and version matter: nothing is installed
    done = home.torrip(
        "seed",
        "--index-url",
        index.url,
        "--python",
        venv_python,
        "--publish",
        str(published),
        "--no-agent",
        "app",
    )
    assert "Published 2 torrents" in done.stdout
    for wheel in wheels:
        sha256 = sha256_of(wheel)
        torrent = parse_torrent((published / sha256[:2] / f"{sha256}.torrent").read_bytes())
        verify_file(torrent, wheel)
        assert torrent.web_seeds == (index.file_url(wheel.name),)
        # The same infohash the index announces: anyone computes the same torrent.
        assert (
            torrent.btih
            == parse_torrent(
                index.root.joinpath("files", f"{wheel.name}.torrent").read_bytes()
            ).btih
        )
        assert torrent.btih in done.stdout
    assert home.torrip("agent", "status", check=False).returncode == 3  # --no-agent

    seeded = home.torrip("seed", "--index-url", index.url, "--python", venv_python, "app")
    assert "Agent started" in seeded.stdout and "seeding 2 files" in seeded.stdout
    status = json.loads(home.torrip("agent", "status", "--json").stdout)
    assert status["files_known"] == 2

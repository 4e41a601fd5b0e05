"""The agent's limits: which files it seeds, which the disk quota evicts, what is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from torrip.agent.limits import (
    AgentLimits,
    CacheUse,
    Candidate,
    choose_evictions,
    choose_seeded,
    installed_in,
    seed_policy,
)
from torrip.config import Settings
from torrip.errors import ConfigError

DAY = 86400.0
NOW = 1_000 * DAY


def _limits(**changes: float) -> AgentLimits:
    values = {"upload_rate": 0, "connections": 50, "torrents": 0, "quota": 0, "ratio": 0.0}
    values.update({"days": 0, **changes})
    return AgentLimits(**values)  # type: ignore[arg-type]


def _candidate(name: str, *, age_days: float = 1, **changes: object) -> Candidate:
    values: dict[str, object] = {"size": 1000, "last_used": NOW - age_days * DAY}
    values.update(changes)
    return Candidate(name, **values)  # type: ignore[arg-type]


def test_defaults_are_bounded() -> None:
    limits = AgentLimits.from_settings(Settings())
    assert limits.connections == 200 and limits.torrents == 2000
    assert limits.quota == 10 * 1000**3 and limits.days == 30 and limits.ratio == 0


def test_settings_come_from_the_environment_with_units(tmp_path: Path) -> None:
    from torrip.config import load_settings

    settings = load_settings(
        environ={
            "TORRIP_CONFIG_FILE": str(tmp_path / "none.toml"),
            "TORRIP_SEED": "never",
            "TORRIP_SEED_QUOTA": "2G",
            "TORRIP_SEED_RATIO": "1.5",
            "TORRIP_SEED_TORRENTS": "7",
        }
    )
    assert seed_policy(settings) == "never"
    limits = AgentLimits.from_settings(settings)
    assert (limits.quota, limits.ratio, limits.torrents) == (2 * 1000**3, 1.5, 7)


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="seed"):
        seed_policy(Settings(seed="sometimes"))
    with pytest.raises(ConfigError, match="seed-days"):
        AgentLimits.from_settings(Settings(seed_days=-1))
    with pytest.raises(ConfigError, match="seed-ratio"):
        AgentLimits.from_settings(Settings(seed_ratio=-0.5))


def test_removed_ratio_and_days_stop_a_file() -> None:
    plan = choose_seeded(
        [
            _candidate("removed", removed=True),
            _candidate("done", uploaded=2000),
            _candidate("old", age_days=31),
            _candidate("fresh"),
        ],
        _limits(ratio=2.0, days=30),
        now=NOW,
    )
    assert plan.seed == ("fresh",)
    assert plan.stopped == {"removed": "removed", "done": "ratio", "old": "days"}


def test_no_limits_seed_everything() -> None:
    candidates = [_candidate(str(n), age_days=n * 100, uploaded=10**9) for n in range(5)]
    assert len(choose_seeded(candidates, _limits(), now=NOW).seed) == 5


def test_the_torrent_limit_keeps_the_most_recently_used() -> None:
    plan = choose_seeded(
        [_candidate("a", age_days=3), _candidate("b", age_days=1), _candidate("c", age_days=2)],
        _limits(torrents=2),
        now=NOW,
    )
    assert plan.seed == ("b", "c")
    assert plan.stopped == {"a": "limit"}


def test_quota_evicts_unneeded_least_recently_used_first() -> None:
    uses = [
        CacheUse("needed-old", 400, last_used=1, needed=True),
        CacheUse("unneeded-new", 400, last_used=30, needed=False),
        CacheUse("unneeded-old", 400, last_used=10, needed=False),
        CacheUse("needed-new", 400, last_used=40, needed=True),
    ]
    assert choose_evictions(uses, 1600) == []
    assert choose_evictions(uses, 1000) == ["unneeded-old", "unneeded-new"]
    assert choose_evictions(uses, 500) == ["unneeded-old", "unneeded-new", "needed-old"]
    assert choose_evictions(uses, 0) == []  # no quota


def test_installed_in_finds_the_dist_info_of_that_version(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "My_Pkg-1.0.0.dist-info").mkdir(parents=True)
    (site / "other-2.0.dist-info").write_text("a file, not a folder")
    assert installed_in("my_pkg-1.0-py3-none-any.whl", [str(site)])
    assert not installed_in("my_pkg-1.1-py3-none-any.whl", [str(site)])
    assert not installed_in("other-2.0-py3-none-any.whl", [str(site)])
    assert not installed_in("my_pkg-1.0-py3-none-any.whl", [str(tmp_path / "gone")])
    assert not installed_in("demo-1.0.tar.gz", [str(site)])

"""What bounds the agent, and the choices those bounds make. Pure functions, no I/O.

    limits = AgentLimits.from_settings(settings)
    plan = choose_seeded(candidates, limits, now=time.time())
    plan.seed                      # sha256s to seed, most recently used first
    plan.stopped                   # sha256 -> why not: "removed", "ratio", "days", "limit"
    evict = choose_evictions(uses, limits.quota)   # sha256s to delete from the cache

Settings (config key = TORRIP_* variable = flag, docs/agent.md): ``seed``,
``upload-rate``, ``seed-connections``, ``seed-torrents``, ``seed-quota``,
``seed-ratio``, ``seed-days``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from torrip.config import Settings
from torrip.errors import ConfigError

__all__ = [
    "SEED_POLICIES",
    "AgentLimits",
    "CacheUse",
    "Candidate",
    "SeedPlan",
    "SeedPolicy",
    "choose_evictions",
    "choose_seeded",
    "installed_in",
    "seed_policy",
]

SeedPolicy = Literal["auto", "always", "never"]
SEED_POLICIES: tuple[SeedPolicy, ...] = ("auto", "always", "never")
_DAY = 86400.0


def seed_policy(settings: Settings) -> SeedPolicy:
    value = settings.seed.strip().lower()
    for policy in SEED_POLICIES:
        if value == policy:
            return policy
    raise ConfigError(
        f"bad value {settings.seed!r} for seed",
        hint="Use seed = auto (start the agent after an install), always, or never.",
    )


@dataclass(frozen=True)
class AgentLimits:
    upload_rate: int  # bytes/s, 0 unlimited
    connections: int
    torrents: int  # 0: no limit
    quota: int  # bytes, 0: no quota
    ratio: float  # 0: no limit
    days: int  # 0: no limit

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentLimits:
        for name in ("seed_connections", "seed_torrents", "seed_quota", "seed_days"):
            if getattr(settings, name) < 0:
                raise ConfigError(
                    f"{name.replace('_', '-')} must not be negative",
                    hint="Use 0 for no limit.",
                )
        if settings.seed_ratio < 0:
            raise ConfigError("seed-ratio must not be negative", hint="Use 0 for no limit.")
        return cls(
            upload_rate=max(0, settings.upload_rate),
            connections=max(2, settings.seed_connections),
            torrents=settings.seed_torrents,
            quota=settings.seed_quota,
            ratio=settings.seed_ratio,
            days=settings.seed_days,
        )

    def as_dict(self) -> dict[str, int | float]:
        return {
            "upload_rate": self.upload_rate,
            "connections": self.connections,
            "torrents": self.torrents,
            "quota": self.quota,
            "ratio": self.ratio,
            "days": self.days,
        }


@dataclass(frozen=True)
class Candidate:
    """A cached file that has a torrent: may the agent seed it?"""

    sha256: str
    size: int
    last_used: float  # seconds since the epoch
    uploaded: int = 0  # bytes, all runs
    removed: bool = False  # the user said `torrip agent remove`


@dataclass(frozen=True)
class SeedPlan:
    seed: tuple[str, ...]
    stopped: Mapping[str, str] = field(default_factory=dict)


def choose_seeded(candidates: Iterable[Candidate], limits: AgentLimits, *, now: float) -> SeedPlan:
    """Which files to seed: not removed, within ratio and days, the most recently used first."""
    stopped: dict[str, str] = {}
    eligible: list[Candidate] = []
    for candidate in candidates:
        if candidate.removed:
            stopped[candidate.sha256] = "removed"
        elif limits.ratio > 0 and candidate.uploaded >= limits.ratio * candidate.size:
            stopped[candidate.sha256] = "ratio"
        elif limits.days > 0 and now - candidate.last_used > limits.days * _DAY:
            stopped[candidate.sha256] = "days"
        else:
            eligible.append(candidate)
    eligible.sort(key=lambda c: (-c.last_used, c.sha256))
    if limits.torrents > 0:
        for candidate in eligible[limits.torrents :]:
            stopped[candidate.sha256] = "limit"
        eligible = eligible[: limits.torrents]
    return SeedPlan(tuple(c.sha256 for c in eligible), stopped)


@dataclass(frozen=True)
class CacheUse:
    """A cached content, for the disk quota."""

    sha256: str
    size: int
    last_used: float
    needed: bool  # installed in an environment that still exists


def choose_evictions(uses: Sequence[CacheUse], quota: int) -> list[str]:
    """The contents to delete so the cache fits ``quota`` bytes (0: none).

    Least recently used files that no environment needs go first, then the rest,
    least recently used first.
    """
    total = sum(use.size for use in uses)
    if quota <= 0 or total <= quota:
        return []
    evicted: list[str] = []
    for use in sorted(uses, key=lambda u: (u.needed, u.last_used, u.sha256)):
        if total <= quota:
            break
        evicted.append(use.sha256)
        total -= use.size
    return evicted


def installed_in(filename: str, site_packages: Iterable[str]) -> bool:
    """Whether the wheel ``filename`` is installed in one of these site-packages folders.

    It is when a ``<name>-<version>.dist-info`` folder of the wheel's project and version
    is there (names compared normalized, as installers write them differently).
    """
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    for folder in site_packages:
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith(".dist-info"):
                continue
            project, _, found = entry[: -len(".dist-info")].rpartition("-")
            if canonicalize_name(project) != name or not _same_version(found, version):
                continue
            if Path(folder, entry).is_dir():
                return True
    return False


def _same_version(text: str, version: Version) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return False

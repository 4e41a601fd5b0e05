"""Plan: the resolution compared with what the target has installed.

``--dry-run``, ``--report`` and (later) ``lock`` render a plan; fetch and install execute it.
"""

from __future__ import annotations

from typing import NamedTuple

from torrip.environment import InstalledDistribution, TargetEnvironment
from torrip.resolver.resolve import Resolution, ResolvedDistribution

__all__ = ["Plan", "make_plan"]


class Plan(NamedTuple):
    install: tuple[ResolvedDistribution, ...]
    # Installed versions that an entry of ``install`` replaces (upgrade or downgrade).
    remove: tuple[InstalledDistribution, ...]
    # Already installed at the resolved version.
    kept: tuple[ResolvedDistribution, ...]

    @property
    def is_empty(self) -> bool:
        return not self.install and not self.remove


def make_plan(
    resolution: Resolution, environment: TargetEnvironment, *, reinstall: bool = False
) -> Plan:
    install, remove, kept = [], [], []
    for dist in resolution.distributions:
        present = environment.installed.get(dist.candidate.name)
        if dist.candidate.source == "installed" and not reinstall:
            kept.append(dist)
            continue
        install.append(dist)
        if present is not None:
            remove.append(present)
    return Plan(tuple(install), tuple(remove), tuple(kept))

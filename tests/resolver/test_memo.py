"""Resolutions kept and reused while the pages they read are unchanged
(``torrip.resolver.memo``), through the planner against a real index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.wheels import make_wheel
from torrip.config import Settings, load_settings
from torrip.planner import InstallRequest, PlannedInstall, plan_install
from torrip.resolver.memo import AREA

REUSED = "resolved as last time"


def _settings(url: str, tmp_path: Path, **more: object) -> Settings:
    return load_settings(
        {"index_url": url, "cache_dir": tmp_path / "cache", "p2p": False, **more},
        environ={"TORRIP_CONFIG_FILE": str(tmp_path / "none.toml")},
    )


@pytest.fixture
def index(local_index, tmp_path: Path):  # type: ignore[no-untyped-def]
    dists = tmp_path / "dists"
    return local_index(
        [
            make_wheel(
                dists, "app", "1.0", requires_dist=["lib", "never[x]>=1; python_version < '3'"]
            ),
            make_wheel(dists, "lib", "1.0"),
            make_wheel(dists, "lib", "2.0"),
        ]
    )


class Planner:
    """Plans installs of the index's projects into one venv, with one cache."""

    def __init__(self, url: str, python: Path, cache: Path, tmp_path: Path) -> None:
        self.url, self.python, self.cache, self.tmp_path = url, python, cache, tmp_path
        self.settings = _settings(url, tmp_path)

    def plan(self, *requirements: str, settings: Settings | None = None) -> list[str]:
        """The pins, and whether the kept resolution answered (a last item "reused")."""
        said: list[str] = []
        request = InstallRequest(requirements=requirements, python=str(self.python))
        planned = plan_install(request, settings or self.settings, log=said.append)
        self.last = planned
        reused = ["reused"] if any(REUSED in line for line in said) else []
        return [*_pins(planned), *reused]


@pytest.fixture
def planner(index, make_venv, tmp_path: Path) -> Planner:  # type: ignore[no-untyped-def]
    return Planner(index.url, make_venv() / "bin" / "python", tmp_path / "cache", tmp_path)


def _pins(planned: PlannedInstall) -> list[str]:
    return [f"{d.candidate.name}=={d.candidate.version}" for d in planned.resolution.distributions]


def test_the_same_request_is_resolved_once_while_its_pages_are_unchanged(
    planner: Planner,
    index,  # type: ignore[no-untyped-def]
) -> None:
    assert planner.plan("app") == ["app==1.0", "lib==2.0"]
    first = planner.last
    asked = len(index.requests)
    assert planner.plan("app") == ["app==1.0", "lib==2.0", "reused"]
    again = planner.last.resolution.distributions
    assert [d.candidate.link for d in again] == [
        d.candidate.link for d in first.resolution.distributions
    ]
    assert len(index.requests) == asked  # not a page, not a metadata file
    # packaging's requirements and markers read back from their fields, as they were.
    kept, fresh = (p.resolution.distributions[0].metadata for p in (planner.last, first))
    assert [str(r) for r in kept.requires_dist] == [str(r) for r in fresh.requires_dist]
    marker = kept.requires_dist[1].marker
    assert marker is not None and not marker.evaluate({"python_version": "3.11"})
    assert marker.evaluate({"python_version": "2.7"})
    assert kept.requires_dist[1].extras == {"x"}
    # Asked otherwise: resolved anew.
    assert planner.plan("app", "lib<2") == ["app==1.0", "lib==1.0"]


def test_a_page_changed_or_stale_means_resolving_again(planner: Planner) -> None:
    planner.plan("app")
    metas = {
        json.loads(meta.read_text())["url"].rstrip("/").rsplit("/", 1)[1]: meta
        for meta in (planner.cache / "http-v1").rglob("*.json")
    }
    assert sorted(metas) == ["app", "lib"]

    # lib's page stale: asked again, but only once resolving (app's page, what was asked
    # for, is asked for at once, and may be revalidated before the kept resolution is read).
    meta = json.loads(metas["lib"].read_text())
    metas["lib"].write_text(json.dumps({**meta, "stored_at": 0}))
    assert "reused" not in planner.plan("app")
    assert "reused" in planner.plan("app")  # revalidated: fresh, the same bytes

    meta = json.loads(metas["app"].read_text())
    metas["app"].write_text(json.dumps({**meta, "sha256": "0" * 64}))  # as if another page
    assert "reused" not in planner.plan("app")


def test_a_damaged_entry_is_resolved_again_and_replaced(planner: Planner) -> None:
    first = planner.plan("app")
    (entry,) = (planner.cache / AREA).rglob("*.pickle")
    entry.write_bytes(b"not a pickle")
    assert planner.plan("app") == first
    assert planner.plan("app") == [*first, "reused"]


def test_what_a_folder_or_another_target_decides_is_not_reused(planner: Planner) -> None:
    folder = planner.tmp_path / "dists"
    planner.plan(
        "app", settings=_settings(planner.url, planner.tmp_path, find_links=(str(folder),))
    )
    assert not (planner.cache / AREA).exists()

    planner.plan("app")
    site = next((planner.python.parent.parent / "lib").glob("python*/site-packages"))
    info = site / "lib-1.0.dist-info"  # lib 1.0 installed: it satisfies app's "lib"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lib\nVersion: 1.0\n")
    assert planner.plan("app") == ["app==1.0", "lib==1.0"]
    sources = [d.candidate.source for d in planner.last.resolution.distributions]
    assert sources == ["index", "installed"]

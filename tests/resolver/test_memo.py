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
            make_wheel(dists, "app", "1.0", requires_dist=["lib"]),
            make_wheel(dists, "lib", "1.0"),
            make_wheel(dists, "lib", "2.0"),
        ]
    )


def _plan(settings: Settings, python: Path, *requirements: str) -> tuple[PlannedInstall, list[str]]:
    said: list[str] = []
    request = InstallRequest(requirements=requirements, python=str(python))
    planned = plan_install(request, settings, log=said.append)
    return planned, said


def _pins(planned: PlannedInstall) -> list[str]:
    return [f"{d.candidate.name}=={d.candidate.version}" for d in planned.resolution.distributions]


def test_the_same_request_is_resolved_once_while_its_pages_are_unchanged(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    python = make_venv() / "bin" / "python"
    settings = _settings(index.url, tmp_path)
    first, said = _plan(settings, python, "app")
    assert _pins(first) == ["app==1.0", "lib==2.0"] and not any(REUSED in s for s in said)
    asked = len(index.requests)

    again, said = _plan(settings, python, "app")
    assert any(REUSED in s for s in said)
    assert _pins(again) == _pins(first)
    assert (
        again.resolution.distributions[1].candidate.link
        == first.resolution.distributions[1].candidate.link
    )
    assert len(index.requests) == asked  # not a page, not a metadata file

    # Asked otherwise: resolved anew.
    other, said = _plan(settings, python, "app", "lib<2")
    assert _pins(other) == ["app==1.0", "lib==1.0"] and not any(REUSED in s for s in said)


def test_a_page_changed_or_stale_means_resolving_again(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    python = make_venv() / "bin" / "python"
    settings = _settings(index.url, tmp_path)
    _plan(settings, python, "app")
    metas = sorted((tmp_path / "cache" / "http-v1").rglob("*.json"))
    assert len(metas) == 2  # app's page and lib's

    meta = json.loads(metas[0].read_text())
    metas[0].write_text(json.dumps({**meta, "stored_at": 0}))  # stale: asked again
    _, said = _plan(settings, python, "app")
    assert not any(REUSED in s for s in said)
    _, said = _plan(settings, python, "app")  # revalidated: fresh, the same bytes
    assert any(REUSED in s for s in said)

    meta = json.loads(metas[1].read_text())
    metas[1].write_text(json.dumps({**meta, "sha256": "0" * 64}))  # as if another page
    _, said = _plan(settings, python, "app")
    assert not any(REUSED in s for s in said)


def test_a_damaged_entry_is_resolved_again_and_replaced(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    python = make_venv() / "bin" / "python"
    settings = _settings(index.url, tmp_path)
    first, _ = _plan(settings, python, "app")
    (entry,) = (tmp_path / "cache" / AREA).rglob("*.pickle")
    entry.write_bytes(b"not a pickle")
    again, said = _plan(settings, python, "app")
    assert _pins(again) == _pins(first) and not any(REUSED in s for s in said)
    _, said = _plan(settings, python, "app")
    assert any(REUSED in s for s in said)


def test_what_a_folder_or_another_target_decides_is_not_reused(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    python = make_venv() / "bin" / "python"
    folder = tmp_path / "dists"
    with_folder = _settings(index.url, tmp_path, find_links=(str(folder),))
    _plan(with_folder, python, "app")
    assert not (tmp_path / "cache" / AREA).exists()

    settings = _settings(index.url, tmp_path)
    _plan(settings, python, "app")
    site = next((python.parent.parent / "lib").glob("python*/site-packages"))
    info = site / "lib-1.0.dist-info"  # lib 1.0 installed: it satisfies app's "lib"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lib\nVersion: 1.0\n")
    installed, said = _plan(settings, python, "app")
    assert not any(REUSED in s for s in said)
    assert [d.candidate.source for d in installed.resolution.distributions] == [
        "index",
        "installed",
    ]

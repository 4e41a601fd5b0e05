"""Resolver scenarios from data files: each builds real wheels, serves them, and plans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomllib

from fixtures.wheels import make_sdist, make_wheel
from torrip.config import Settings
from torrip.errors import TorripError
from torrip.planner import InstallRequest, plan_install

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.toml"))


def _build_dists(
    packages: list[dict[str, Any]], directory: Path
) -> tuple[list[Path], dict[str, str]]:
    dists, yanked = [], {}
    for package in packages:
        if package.get("sdist"):
            path = make_sdist(directory, package["name"], package["version"])
        else:
            path = make_wheel(
                directory,
                package["name"],
                package["version"],
                requires_dist=package.get("requires", ()),
                requires_python=package.get("requires_python"),
                provides_extra=package.get("extras", ()),
                tag=package.get("tag", "py3-none-any"),
            )
        if "yanked" in package:
            yanked[path.name] = package["yanked"]
        dists.append(path)
    return dists, yanked


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(scenario: Path, tmp_path: Path, local_index, target_venv: Path) -> None:
    data = tomllib.loads(scenario.read_text())
    dists, yanked = _build_dists(data["packages"], tmp_path / "dists")
    index = local_index(dists, yanked=yanked)
    request_data = data["request"]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(request_data.get("constraints", [])) + "\n")
    request = InstallRequest(
        requirements=tuple(request_data["requirements"]),
        constraint_files=(str(constraints),),
        python=str(target_venv),
        no_deps=request_data.get("no_deps", False),
    )
    settings = Settings(
        index_url=index.url, cache_dir=tmp_path / "cache", pre=request_data.get("pre", False)
    )
    expect = data["expect"]
    if "error" in expect:
        with pytest.raises(TorripError) as caught:
            plan_install(request, settings)
        assert type(caught.value).__name__ == expect["error"], str(caught.value)
        for text in expect["messages"]:
            assert text in str(caught.value), str(caught.value)
        for text in expect.get("absent", []):
            assert text not in str(caught.value), str(caught.value)
        return
    planned = plan_install(request, settings)
    installed = {str(d.candidate.name): str(d.candidate.version) for d in planned.plan.install}
    assert installed == expect["install"]
    passed_over = [[str(part) for part in n] for n in planned.resolution.newer_source_only]
    assert passed_over == expect.get("newer_source_only", [])

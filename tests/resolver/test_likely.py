"""The provider's speculation names the candidates the resolver will most likely pin
(``Provider(on_likely=...)``), for the install to fetch their wheels early."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from packaging.requirements import Requirement as PEP508Requirement

from fixtures.wheels import make_wheel
from torrip.config import Settings
from torrip.environment import find_target_python, inspect_environment
from torrip.http import make_client
from torrip.index.client import IndexClient
from torrip.resolver.models import Candidate
from torrip.resolver.provider import Provider, ProviderOptions, requirement_from_pep508
from torrip.resolver.resolve import resolve


def test_each_requirement_met_names_its_best_candidate_once_its_metadata_is_read(
    local_index, target_venv: Path, tmp_path: Path
) -> None:
    """app needs lib and other; other needs lib<2. The best lib for app's requirement is
    2.0, for other's 1.0: both are named (one of them will be fetched for nothing), each
    candidate once, and only candidates whose metadata was read."""
    dists = tmp_path / "dists"
    index = local_index(
        [
            make_wheel(dists, "app", "1.0", requires_dist=["lib", "other"]),
            make_wheel(dists, "other", "1.0", requires_dist=["lib<2"]),
            make_wheel(dists, "lib", "1.0"),
            make_wheel(dists, "lib", "2.0"),
            make_wheel(dists, "unrelated", "1.0"),
        ]
    )
    settings = Settings(index_url=index.url, cache_dir=tmp_path / "cache")
    environment = inspect_environment(find_target_python(str(target_venv)))
    named: list[str] = []
    four = threading.Event()

    def likely(candidate: Candidate) -> None:
        named.append(f"{candidate.name} {candidate.version}")
        if len(named) >= 4:
            four.set()

    with make_client(settings) as http, IndexClient(settings, http) as client:
        provider = Provider(client, environment, ProviderOptions(), on_likely=likely)
        app = requirement_from_pep508(PEP508Requirement("app"))
        provider._speculate(app)
        assert four.wait(30), named
        time.sleep(0.2)  # nothing more comes
        assert sorted(named) == ["app 1.0", "lib 1.0", "lib 2.0", "other 1.0"]
        assert index.count("unrelated-1.0-py3-none-any.whl.metadata") == 0

        # The resolution pins what speculation named, but for lib 2.0.
        resolution = resolve(provider, [app])
        pinned = sorted(
            f"{d.candidate.name} {d.candidate.version}" for d in resolution.distributions
        )
        assert pinned == ["app 1.0", "lib 1.0", "other 1.0"]

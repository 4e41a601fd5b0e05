"""execute_plan: wheels unpacked while others download, links from the cache on a warm
install, the metadata check read from the unpacked tree, link modes, no cache at all."""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from pathlib import Path

import pytest

import torrip.install.unpacked as unpacked_module
import torrip.transport.fetch as fetch_module
from fixtures.wheels import make_wheel
from install.support import snapshot
from torrip.config import Settings, load_settings
from torrip.errors import ConfigError, MetadataError
from torrip.install.execute import execute_plan
from torrip.metadata import parse_metadata
from torrip.planner import InstallRequest, PlannedInstall, plan_install

APP_CODE = b"def main():\n    return 'app'\n" + b"# padding\n" * 2000


@pytest.fixture
def index(tmp_path: Path, local_index):  # type: ignore[no-untyped-def]
    directory = tmp_path / "dists"
    return local_index(
        [
            make_wheel(
                directory, "app", "1.0", requires_dist=["lib"], files={"app/__init__.py": APP_CODE}
            ),
            make_wheel(directory, "lib", "1.0"),
        ]
    )


def _settings(index, tmp_path: Path, **changes: object) -> Settings:  # type: ignore[no-untyped-def]
    settings = load_settings(
        {"index_url": index.url, "cache_dir": tmp_path / "cache", "p2p": False},
        environ={"TORRIP_CONFIG_FILE": str(tmp_path / "none.toml")},
    )
    return settings.replace(**changes)


def _plan(settings: Settings, venv: Path) -> PlannedInstall:
    request = InstallRequest(requirements=("app",), python=str(venv / "bin" / "python"))
    return plan_install(request, settings)


def _site(venv: Path) -> Path:
    (site,) = venv.glob("lib/python*/site-packages")
    return site


def test_unpacking_starts_while_other_files_download(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planned = _plan(_settings(index, tmp_path), make_venv())
    first_unpack = threading.Event()
    real_unpack = unpacked_module.unpack_wheel
    real_fetch = fetch_module.HttpSource.fetch

    def unpack(store, wheel, sha256):  # type: ignore[no-untyped-def]
        first_unpack.set()
        return real_unpack(store, wheel, sha256)

    def fetch(self, request, dest, progress):  # type: ignore[no-untyped-def]
        if request.filename.startswith("app-"):
            # lib's download ends first; app's only once lib is being unpacked.
            assert first_unpack.wait(timeout=30), "nothing was unpacked during the downloads"
        return real_fetch(self, request, dest, progress)

    monkeypatch.setattr(unpacked_module, "unpack_wheel", unpack)
    monkeypatch.setattr(fetch_module.HttpSource, "fetch", fetch)
    execution = execute_plan(planned)
    assert sorted(name for name, _ in execution.transaction.installed) == ["app", "lib"]
    assert set(execution.seconds) == {"fetch", "unpack", "install"}


def test_a_warm_install_links_from_the_cache_without_unpacking(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(index, tmp_path)
    first, second = make_venv(), make_venv()
    execute_plan(_plan(settings, first))

    def no_unpacking(*args: object) -> None:
        raise AssertionError("unpacked again")

    monkeypatch.setattr(unpacked_module, "_unpack_into", no_unpacking)
    execute_plan(_plan(settings, second))
    ours, theirs = _site(first) / "app/__init__.py", _site(second) / "app/__init__.py"
    assert ours.stat().st_ino == theirs.stat().st_ino and ours.stat().st_nlink == 3


def test_a_warm_install_unpacks_again_a_wheel_edited_through_a_link(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """An edit made in place in one environment (through the cache's inode) never reaches
    the next: the cached files are compared with their manifest first."""
    settings = _settings(index, tmp_path)
    first, second = make_venv(), make_venv()
    execute_plan(_plan(settings, first))
    edited = _site(first) / "app/__init__.py"
    with edited.open("ab") as file:
        file.write(b"# edited\n")
    execute_plan(_plan(settings, second))
    installed = _site(second) / "app/__init__.py"
    assert installed.read_bytes() == APP_CODE
    assert not installed.samefile(edited)
    lib = "lib/__init__.py"
    assert (_site(second) / lib).samefile(_site(first) / lib)  # the others still linked


def test_copy_mode_and_a_bad_link_mode(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    venv = make_venv()
    execute_plan(_plan(_settings(index, tmp_path, link_mode="copy"), venv))
    assert (_site(venv) / "app/__init__.py").stat().st_nlink == 1

    bad = _plan(_settings(index, tmp_path, link_mode="symlink"), make_venv())
    before = len([r for r in index.requests if r.path.endswith(".whl")])
    with pytest.raises(ConfigError, match="link-mode"):
        execute_plan(bad)
    assert len([r for r in index.requests if r.path.endswith(".whl")]) == before


def test_without_a_cache_nothing_is_left_behind(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    venv = make_venv()
    execute_plan(_plan(_settings(index, tmp_path, no_cache=True), venv))
    assert (_site(venv) / "app/__init__.py").read_bytes() == APP_CODE
    assert list(temporary.iterdir()) == []
    assert not (tmp_path / "cache").exists()


def test_metadata_that_differs_from_the_resolution_is_refused(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    venv = make_venv()
    planned = _plan(_settings(index, tmp_path), venv)
    before = snapshot(venv)
    (app,) = [dist for dist in planned.plan.install if dist.candidate.name == "app"]
    raw = b"".join(
        line for line in app.metadata.raw.splitlines(keepends=True) if b"Requires-Dist" not in line
    )
    assert raw != app.metadata.raw
    lying = app._replace(metadata=parse_metadata(raw, "a .metadata file"))
    install = tuple(lying if dist is app else dist for dist in planned.plan.install)
    planned = dataclasses.replace(planned, plan=planned.plan._replace(install=install))
    with pytest.raises(MetadataError, match="differs from the metadata the index served"):
        execute_plan(planned)
    assert snapshot(venv) == before


def test_an_unwritable_unpacked_cache_falls_back_to_a_temporary_one(
    index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    settings = _settings(index, tmp_path)
    # Where the unpacked cache would go, a file: nothing can be created there (as in a
    # read-only shared cache; the tests run as root, for whom modes do not stop writes).
    settings.cache_dir.mkdir(parents=True)
    (settings.cache_dir / "unpacked-v1").write_bytes(b"not a folder")
    venv = make_venv()
    execution = execute_plan(_plan(settings, venv))
    assert sorted(name for name, _ in execution.transaction.installed) == ["app", "lib"]
    assert (_site(venv) / "app" / "__init__.py").read_bytes() == APP_CODE
    assert (settings.cache_dir / "unpacked-v1").read_bytes() == b"not a folder"


def test_the_tls_context_is_made_for_https_files_missing_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the CA bundle slows what runs beside it: a lock install whose files are all
    cached, or come over plain http, never starts it."""
    import hashlib

    import torrip.install.execute as execute_module
    from torrip.cache import DistributionCache
    from torrip.transport.fetch import FileRequest

    settings = Settings(cache_dir=tmp_path / "cache")
    data = b"cached bytes"
    sha256 = hashlib.sha256(data).hexdigest()
    temporary = tmp_path / "download"
    temporary.write_bytes(data)
    DistributionCache(settings.cache_dir).add_file(temporary, sha256, "a-1.0-py3-none-any.whl")
    cached = FileRequest("a-1.0-py3-none-any.whl", "https://x.test/a.whl", sha256, len(data))
    plain = FileRequest("b-1.0-py3-none-any.whl", "http://x.test/b.whl", "0" * 64, 5)
    secure = FileRequest("c-1.0-py3-none-any.whl", "https://x.test/c.whl", "1" * 64, 5)
    prepared: list[Settings] = []
    monkeypatch.setattr(execute_module, "prepare_tls", prepared.append)

    execute_module._cache_and_swarm_requests(settings, [cached, plain])
    assert prepared == []
    execute_module._cache_and_swarm_requests(settings, [cached, plain, secure])
    assert prepared == [settings]

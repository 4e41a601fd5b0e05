"""torrip.lockfile: reading, selecting for a real target, planning, torrip's tool table."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from fixtures.locks import one_wheel_lock
from fixtures.wheels import make_sdist, make_wheel
from install.support import to_install
from torrip.config import Settings
from torrip.environment import TargetEnvironment, inspect_environment
from torrip.errors import LockfileError
from torrip.index.links import TorrentRef
from torrip.install.transaction import install_transaction
from torrip.lockfile import is_lockfile_name, split_extras
from torrip.lockfile.install import LockInstallRequest, plan_lock_install, protected_names
from torrip.lockfile.read import load_lockfile, select_files
from torrip.lockfile.tooldata import tool_table, torrents_from_tool

BTIH = "ab" * 20
BTMH = "1220" + "cd" * 32


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> TargetEnvironment:
    import subprocess
    import sys

    venv = tmp_path_factory.mktemp("lock-target")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return inspect_environment(venv / "bin" / "python")


def wheel_entry(path: Path, **extra: str) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    fields = [f'url = "{path.as_uri()}"', f"size = {path.stat().st_size}"]
    fields += [f'{key} = "{value}"' for key, value in extra.items()]
    return "{ " + ", ".join(fields) + f', hashes = {{ sha256 = "{digest}" }} }}'


def write_lock(directory: Path, body: str, header: str = "") -> Path:
    path = directory / "pylock.toml"
    path.write_text(f'lock-version = "1.0"\ncreated-by = "test"\n{header}\n{body}')
    return path


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Path]:
    directory = tmp_path / "w"
    return {
        "lib": make_wheel(directory, "lib", "2.0"),
        "other": make_wheel(directory, "lib", "2.0", tag="cp27-cp27m-win32"),
        "sdist": make_sdist(directory, "sourcey", "0.3"),
    }


def test_lockfile_names_follow_pep751() -> None:
    assert is_lockfile_name("pylock.toml") and is_lockfile_name("dir/pylock.dev.toml")
    assert is_lockfile_name("pylock.toml[a,b]")
    assert not is_lockfile_name("requirements.txt") and not is_lockfile_name("pylock.a.b.toml")
    assert split_extras("pylock.toml[fast, x]") == ("pylock.toml", frozenset({"fast", "x"}))
    assert split_extras("pylock.toml") == ("pylock.toml", frozenset())


def test_selects_the_wheel_for_the_target_with_its_torrent(
    tmp_path: Path, wheels: dict[str, Path], environment: TargetEnvironment
) -> None:
    body = (
        '[[packages]]\nname = "lib"\nversion = "2.0"\nindex = "https://example.org/simple"\n'
        f"wheels = [{wheel_entry(wheels['other'])}, {wheel_entry(wheels['lib'])}]\n"
        f'[packages.tool.torrip.torrents."{wheels["lib"].name}"]\n'
        f'btih = "{BTIH.upper()}"\nbtmh = "{BTMH}"\n'
        '[[packages]]\nname = "winonly"\nversion = "1.0"\nmarker = "sys_platform == \'win32\'"\n'
        'wheels = [{ url = "https://example.org/winonly-1.0-py3-none-any.whl", '
        'hashes = { sha256 = "00" } }]\n'
    )
    path = write_lock(tmp_path, body)
    (locked,) = select_files(load_lockfile(path), path, environment)
    assert (locked.name, str(locked.version), locked.filename) == ("lib", "2.0", wheels["lib"].name)
    assert locked.url == wheels["lib"].as_uri() and locked.index == "https://example.org/simple"
    assert locked.allowed_hashes == {
        f"sha256:{hashlib.sha256(wheels['lib'].read_bytes()).hexdigest()}"
    }
    assert locked.torrent == TorrentRef(btih=BTIH, btmh=BTMH)


@pytest.mark.parametrize(
    ("header", "body", "message"),
    [
        ("", "", "Missing required value in 'packages'"),
        ('requires-python = "<3"', "packages = []", "does not satisfy the Python version"),
        ("environments = [\"sys_platform == 'plan9'\"]", "packages = []", "environments"),
        ("", "packages = [\n", "not valid TOML"),
        ("", '[[packages]]\nname = "lib"\nversion = "2.0"\n', "Exactly one of vcs"),
    ],
)
def test_locks_that_do_not_fit_say_why(
    tmp_path: Path, environment: TargetEnvironment, header: str, body: str, message: str
) -> None:
    path = write_lock(tmp_path, body, header)
    with pytest.raises(LockfileError) as caught:
        select_files(load_lockfile(path), path, environment)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert caught.value.hint


def test_an_unknown_lock_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pylock.toml"
    path.write_text('lock-version = "2.0"\ncreated-by = "future"\npackages = []\n')
    with pytest.raises(LockfileError, match=r"lock-version '2.0' is not supported") as caught:
        load_lockfile(path)
    assert "1.x" in str(caught.value.hint)
    path.write_text('lock-version = "1.1"\ncreated-by = "soon"\npackages = []\n')
    warnings: list[str] = []
    assert load_lockfile(path, warn=warnings.append).packages == []
    assert warnings == [f"{path} has lock-version 1.1; torrip knows 1.0 and reads it as such"]


def test_a_wheel_for_another_platform_names_the_package(
    tmp_path: Path, wheels: dict[str, Path], environment: TargetEnvironment
) -> None:
    body = (
        f'[[packages]]\nname = "lib"\nversion = "2.0"\nwheels = [{wheel_entry(wheels["other"])}]\n'
    )
    path = write_lock(tmp_path, body)
    with pytest.raises(
        LockfileError, match="No wheel found matching the provided tags for package 'lib'"
    ):
        select_files(load_lockfile(path), path, environment)


def test_an_sdist_only_entry_names_the_package_and_file(
    tmp_path: Path, wheels: dict[str, Path], environment: TargetEnvironment
) -> None:
    sdist = wheels["sdist"]
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    body = (
        '[[packages]]\nname = "sourcey"\nversion = "0.3"\n'
        f'sdist = {{ url = "{sdist.as_uri()}", hashes = {{ sha256 = "{digest}" }} }}\n'
    )
    path = write_lock(tmp_path, body)
    with pytest.raises(LockfileError) as caught:
        select_files(load_lockfile(path), path, environment)
    assert "sourcey 0.3: no wheel in the lock fits" in str(caught.value)
    assert "only the source distribution sourcey-0.3.tar.gz" in str(caught.value)
    assert "wheels only" in str(caught.value.hint)


def test_a_hash_torrip_cannot_check_is_refused(
    tmp_path: Path, wheels: dict[str, Path], environment: TargetEnvironment
) -> None:
    body = (
        '[[packages]]\nname = "lib"\nversion = "2.0"\n'
        f'wheels = [{{ url = "{wheels["lib"].as_uri()}", hashes = {{ blake9 = "00" }} }}]\n'
    )
    path = write_lock(tmp_path, body)
    with pytest.raises(LockfileError, match=r"none of the hashes of lib-2\.0-py3-none-any\.whl"):
        select_files(load_lockfile(path), path, environment)


def test_torrip_tool_table_round_trips_and_drops_junk() -> None:
    refs = {"a-1-py3-none-any.whl": TorrentRef(btih=BTIH, btmh=BTMH, sha256="ef" * 32)}
    table = tool_table(refs)
    assert table is not None and torrents_from_tool(table) == refs
    assert tool_table({}) is None
    junk = {
        "torrip": {
            "torrents": {
                "x.whl": {"btih": "not hex"},
                "y.whl": "a string",
                "z.whl": {"sha256": "ef" * 32},  # no infohash at all
                "w.whl": {"btmh": BTMH, "url": "ftp://nope"},
            }
        }
    }
    logged: list[str] = []
    assert torrents_from_tool(junk, logged.append) == {}
    assert len(logged) == 4
    assert torrents_from_tool({"other-tool": {}}) == {}
    assert torrents_from_tool(None) == {}


def test_plan_keeps_what_is_installed_at_the_locked_version(tmp_path: Path, make_venv) -> None:
    venv = make_venv()
    old = make_wheel(tmp_path / "old", "lib", "1.0")
    environment = inspect_environment(venv / "bin" / "python")
    install_transaction(environment, [to_install(old)], [])
    new = make_wheel(tmp_path / "new", "lib", "2.0")
    same = make_wheel(tmp_path / "new", "stay", "1.0")
    install_transaction(environment.refresh_installed(), [to_install(same)], [])
    body = "".join(
        f'[[packages]]\nname = "{name}"\nversion = "{version}"\nwheels = [{wheel_entry(path)}]\n'
        for name, version, path in (("lib", "2.0", new), ("stay", "1.0", same))
    )
    path = write_lock(tmp_path, body)
    settings = Settings(cache_dir=tmp_path / "cache")
    planned = plan_lock_install(LockInstallRequest(path, python=str(venv)), settings)
    plan = planned.plan
    assert [d.candidate.name for d in plan.install] == ["lib"]
    assert [(d.name, str(d.version)) for d in plan.remove] == [("lib", "1.0")]
    assert [d.candidate.name for d in plan.kept] == ["stay"]
    assert {d.candidate.source for d in planned.resolution.distributions} == {"lock"}
    assert set(planned.allowed_hashes) == {"lib", "stay"}
    again = plan_lock_install(LockInstallRequest(path, python=str(venv), reinstall=True), settings)
    assert [d.candidate.name for d in again.plan.install] == ["lib", "stay"]


def test_sync_never_removes_torrip_or_what_it_needs(tmp_path: Path, make_venv) -> None:
    venv = make_venv()
    environment = inspect_environment(venv / "bin" / "python")
    directory = tmp_path / "w"
    installed = [
        make_wheel(
            directory, "torrip", "9.0", requires_dist=["helper", "winhelp; sys_platform == 'win32'"]
        ),
        make_wheel(directory, "helper", "1.0", requires_dist=["deep"]),
        make_wheel(directory, "deep", "1.0"),
        make_wheel(directory, "winhelp", "1.0"),
        make_wheel(directory, "pip", "1.0"),
    ]
    install_transaction(environment, [to_install(w) for w in installed], [])
    environment = environment.refresh_installed()
    assert protected_names(environment) == {
        canonicalize_name(n) for n in ("torrip", "helper", "deep")
    }
    path = write_lock(tmp_path, "packages = []\n")
    planned = plan_lock_install(
        LockInstallRequest(path, python=str(venv), sync=True), Settings(cache_dir=tmp_path / "c")
    )
    assert sorted(d.name for d in planned.plan.remove) == ["pip", "winhelp"]


def _dated_lock(sha256: str) -> str:
    return one_wheel_lock(
        "dated",
        "https://files.example/dated-1.0-py3-none-any.whl",
        size=10,
        sha256=sha256,
        wheel_extra="upload-time = 2025-03-04T05:06:07Z\n",
        tables=(
            "\n[packages.tool.other]\nday = 2025-03-04\nat = 05:06:07.5\n"
            "local = 2025-03-04T05:06:07\nratio = 0.1\n"
        ),
    )


def test_a_lockfile_is_parsed_once_and_read_back_alike(tmp_path: Path) -> None:
    """The parsed TOML is kept by the sha256 of the bytes: the same lock next time, dates
    and times included; other bytes are parsed anew."""
    from torrip.lockfile.parsed import AREA, parse_lockfile_toml

    path = tmp_path / "pylock.toml"
    path.write_text(_dated_lock("a" * 64))
    cache = tmp_path / "cache"
    first = load_lockfile(path, cache_dir=cache)
    (kept,) = (cache / AREA).iterdir()
    assert kept.name == hashlib.sha256(path.read_bytes()).hexdigest() + ".json"
    again = load_lockfile(path, cache_dir=cache)
    assert again == first == load_lockfile(path)
    assert str(again.packages[0].wheels[0].upload_time) == "2025-03-04 05:06:07+00:00"
    data = path.read_bytes()
    assert parse_lockfile_toml(data, cache) == parse_lockfile_toml(data, None)

    kept.write_text('{"lock-version": "9.9"}')  # what is kept is what is read
    assert parse_lockfile_toml(data, cache) == {"lock-version": "9.9"}
    kept.write_text("not json")  # damaged: parsed again, kept again
    assert parse_lockfile_toml(data, None) == parse_lockfile_toml(data, cache)
    assert kept.read_text() != "not json"

    path.write_text(_dated_lock("b" * 64))
    assert load_lockfile(path, cache_dir=cache).packages[0].wheels[0].hashes == {"sha256": "b" * 64}


def test_a_lockfile_with_a_dollar_key_is_not_kept(tmp_path: Path) -> None:
    from torrip.lockfile.parsed import AREA, parse_lockfile_toml

    data = (_dated_lock("a" * 64) + '"$toml" = "date"\nvalue = "x"\n').encode()
    document = parse_lockfile_toml(data, tmp_path)
    assert document["packages"][0]["tool"]["other"]["$toml"] == "date"
    assert not (tmp_path / AREA).exists()

"""`torrip lock`, `torrip install -r pylock.toml`, `torrip sync`: end to end, with real
indexes on loopback, real venvs, and pip and uv writing and installing lockfiles too."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from packaging.pylock import Pylock

from fixtures.index import RunningIndex, clean_installer_env
from fixtures.wheels import make_sdist, make_wheel
from install.support import snapshot
from torrip.cli.main import main
from torrip.indexserver import IndexServer, build_index

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

BIN = Path(sys.executable).parent
UPLOADED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)

Torrip = Callable[..., tuple[int, str, str]]


@pytest.fixture
def dists(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "dists"
    return [
        make_wheel(
            directory,
            "app",
            "1.0",
            requires_dist=["lib>=1", "extra-dep; extra == 'x'", "backport; python_version < '3'"],
            provides_extra=["x"],
        ),
        make_wheel(directory, "lib", "1.0"),
        make_wheel(directory, "lib", "2.0", requires_python=">=3.10"),
        make_wheel(directory, "extra-dep", "0.1"),
        make_wheel(directory, "backport", "1.0"),
        make_wheel(directory, "stray", "1.0"),
        make_sdist(directory, "sourcey", "0.3"),
    ]


@pytest.fixture
def index(local_index, dists: list[Path]) -> RunningIndex:
    return local_index(dists, upload_times={"lib-2.0-py3-none-any.whl": UPLOADED})


@pytest.fixture
def torrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Torrip:
    """Run the CLI in this process, with no config file and a private cache."""
    monkeypatch.setenv("TORRIP_CONFIG_FILE", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("TORRIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def freeze(torrip: Torrip, venv: Path) -> list[str]:
    code, out, err = torrip("freeze", "--all", "--python", str(venv))
    assert code == 0, err
    return out.split()


def locked_pins(path: Path) -> list[str]:
    lock = Pylock.from_dict(tomllib.loads(path.read_text()))
    return [f"{package.name}=={package.version}" for package in lock.packages]


def lock(torrip: Torrip, index: RunningIndex, venv: Path, *reqs: str, out: str = "pylock.toml"):
    code, _, err = torrip("lock", "-i", index.url, "--python", str(venv), "-o", out, *reqs)
    assert code == 0, err
    return Path(out).resolve()


def run_tool(command: list[str | Path], cache: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=clean_installer_env(cache),
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result


# -- torrip lock ---------------------------------------------------------------------


def test_lock_writes_every_fact_of_each_wheel(torrip: Torrip, index: RunningIndex, make_venv):
    venv = make_venv()
    path = lock(torrip, index, venv, "app[x]")
    document = tomllib.loads(path.read_text())
    assert document["lock-version"] == "1.0" and document["created-by"] == "torrip"
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert document["requires-python"] == f"=={minor}.*"
    assert f'python_version == "{minor}"' in document["environments"][0]
    assert locked_pins(path) == ["app==1.0", "extra-dep==0.1", "lib==2.0"]
    pages = {}
    for package in document["packages"]:
        (wheel,) = package["wheels"]
        served = index.root / "files" / wheel["name"]
        assert package["index"] == index.url.rstrip("/")
        assert wheel["url"] == index.file_url(wheel["name"])
        assert wheel["size"] == served.stat().st_size
        assert wheel["hashes"] == {"sha256": hashlib.sha256(served.read_bytes()).hexdigest()}
        page = pages.setdefault(
            package["name"],
            httpx.get(
                f"{index.url}{package['name']}/",
                headers={"Accept": "application/vnd.pypi.simple.v1+json"},
            ).json(),
        )
        (entry,) = [f for f in page["files"] if f["filename"] == wheel["name"]]
        torrent = package["tool"]["torrip"]["torrents"][wheel["name"]]
        assert torrent == entry["_torrent"]  # btih, btmh and the .torrent's sha256
    lib = next(p for p in document["packages"] if p["name"] == "lib")
    assert lib["wheels"][0]["upload-time"] == UPLOADED
    assert lib["requires-python"] == ">=3.10"


def test_lock_ignores_what_is_installed(torrip: Torrip, index: RunningIndex, make_venv):
    venv = make_venv()
    assert torrip("install", "-q", "-i", index.url, "--python", str(venv), "lib==1.0")[0] == 0
    path = lock(torrip, index, venv, "app")
    assert locked_pins(path) == ["app==1.0", "lib==2.0"]  # not the installed lib 1.0


def test_lock_refuses_a_name_pep751_does_not_allow(torrip: Torrip, index: RunningIndex):
    code, _, err = torrip("lock", "-i", index.url, "-o", "requirements.lock", "app")
    assert code == 1
    assert "does not follow PEP 751" in err and "pylock.<name>.toml" in err
    assert not Path("requirements.lock").exists()


def test_lock_to_stdout(torrip: Torrip, index: RunningIndex, make_venv):
    code, out, err = torrip(
        "lock", "-q", "-i", index.url, "--python", str(make_venv()), "-o", "-", "lib"
    )
    assert code == 0, err
    assert Pylock.from_dict(tomllib.loads(out)).packages[0].name == "lib"


def test_files_without_an_index_hash_are_hashed_for_the_lock(
    torrip: Torrip, dists: list[Path], make_venv
):
    folder = dists[0].parent  # a --find-links folder: no hashes, no sizes, no index
    code, _, err = torrip(
        "lock", "--no-index", "-f", str(folder), "--python", str(make_venv()), "lib"
    )
    assert code == 0, err
    (package,) = tomllib.loads(Path("pylock.toml").read_text())["packages"]
    wheel = folder / "lib-2.0-py3-none-any.whl"
    assert "index" not in package
    assert package["wheels"][0]["url"] == wheel.resolve().as_uri()
    assert package["wheels"][0]["hashes"] == {
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()
    }
    assert package["wheels"][0]["size"] == wheel.stat().st_size
    venv = make_venv()
    assert torrip("install", "-r", "pylock.toml", "--python", str(venv))[0] == 0
    assert freeze(torrip, venv) == ["lib==2.0"]


# -- install -r pylock.toml ------------------------------------------------------------


def test_round_trip_lock_install_freeze(torrip: Torrip, index: RunningIndex, make_venv):
    path = lock(torrip, index, make_venv(), "app[x]", out="pylock.dev.toml")
    target = make_venv()
    before = len(index.requests)
    code, out, err = torrip("install", "-r", str(path), "--python", str(target))
    assert code == 0, err
    assert "Successfully installed app-1.0 extra-dep-0.1 lib-2.0" in out
    assert freeze(torrip, target) == locked_pins(path)
    asked = [r.path for r in index.requests[before:]]
    assert not [p for p in asked if "/simple/" in p]  # no index page, no metadata file
    assert sorted(p.rsplit("/", 1)[1] for p in asked) == sorted(
        ["app-1.0-py3-none-any.whl", "extra_dep-0.1-py3-none-any.whl", "lib-2.0-py3-none-any.whl"]
    )
    again = torrip("install", "-r", str(path), "--python", str(target))
    assert again[0] == 0 and "Requirement already satisfied: lib==2.0" in again[1]


def test_lock_install_with_the_index_stopped(
    torrip: Torrip, dists: list[Path], tmp_path, make_venv
):
    """Pages on one server, files on another: the lock needs only the files."""
    root = tmp_path / "site"
    files = IndexServer(root).start()
    pages = IndexServer(root).start()
    try:
        dist_dir = tmp_path / "dists"
        build_index(dist_dir, root, base_url=files.base_url)
        code, _, err = torrip("lock", "-i", pages.url, "--python", str(make_venv()), "app")
        assert code == 0, err
        pages.stop()
        with pytest.raises(httpx.HTTPError):
            httpx.get(pages.url, timeout=2)
        first = make_venv()
        code, _, err = torrip("install", "-r", "pylock.toml", "--python", str(first))
        assert code == 0, err
        assert freeze(torrip, first) == ["app==1.0", "lib==2.0"]
    finally:
        pages.stop()
        files.stop()
    second = make_venv()  # no server at all now: every file from the cache
    code, _, err = torrip(
        "install", "-r", "pylock.toml", "--python", str(second), "--report", "r.json"
    )
    assert code == 0, err
    report = json.loads(Path("r.json").read_text())
    assert report["torrip"]["bytes"]["origin"] == 0
    assert {item["torrip"]["source"] for item in report["install"]} == {"cache"}
    assert freeze(torrip, second) == ["app==1.0", "lib==2.0"]


def test_a_tampered_lock_is_refused_and_nothing_changes(
    torrip: Torrip, index: RunningIndex, make_venv
):
    venv = make_venv()
    assert torrip("install", "-q", "-i", index.url, "--python", str(venv), "lib==1.0")[0] == 0
    path = lock(torrip, index, make_venv(), "app")
    served = index.root / "files" / "lib-2.0-py3-none-any.whl"
    real = hashlib.sha256(served.read_bytes()).hexdigest()
    path.write_text(path.read_text().replace(real, "0" * 64))
    before = snapshot(venv)
    code, _, err = torrip("install", "-r", str(path), "--python", str(venv))
    assert code == 1
    assert "hash mismatch for lib-2.0-py3-none-any.whl" in err and f"got      sha256:{real}" in err
    assert snapshot(venv) == before
    assert freeze(torrip, venv) == ["lib==1.0"]


def test_a_tampered_file_is_refused_and_nothing_changes(
    torrip: Torrip, index: RunningIndex, make_venv
):
    venv = make_venv()
    path = lock(torrip, index, venv, "app")
    served = index.root / "files" / "lib-2.0-py3-none-any.whl"
    data = bytearray(served.read_bytes())
    data[-30] ^= 0xFF  # same size, other bytes
    served.write_bytes(bytes(data))
    before = snapshot(venv)
    code, _, err = torrip("install", "-r", str(path), "--python", str(venv))
    assert code == 1
    assert "hash mismatch for lib-2.0-py3-none-any.whl" in err
    assert snapshot(venv) == before


def test_a_lockfile_is_installed_on_its_own(torrip: Torrip, index: RunningIndex, make_venv):
    path = lock(torrip, index, make_venv(), "lib")
    code, _, err = torrip("install", "-r", str(path), "app", "--python", str(make_venv()))
    assert code == 1 and "a lockfile is installed on its own" in err
    code, _, err = torrip("install", "-U", "-r", str(path), "--python", str(make_venv()))
    assert code == 1 and "do not apply to a lockfile" in err


def test_a_lock_that_does_not_fit_names_the_package(torrip: Torrip, index: RunningIndex, make_venv):
    path = lock(torrip, index, make_venv(), "lib")
    text = path.read_text().replace("lib-2.0-py3-none-any.whl", "lib-2.0-cp27-cp27m-win32.whl")
    path.write_text(text)
    venv = make_venv()
    code, _, err = torrip("install", "-r", str(path), "--python", str(venv))
    assert code == 1
    assert "No wheel found matching the provided tags for package 'lib'" in err
    assert "hint:" in err
    assert freeze(torrip, venv) == []


def test_extras_of_a_lock_are_selected_like_pips(torrip: Torrip, tmp_path: Path, make_venv):
    path = tmp_path / "pylock.toml"
    wheel = make_wheel(tmp_path / "w", "lib", "2.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    path.write_text(
        'lock-version = "1.0"\ncreated-by = "hand"\nextras = ["fast"]\n\n'
        '[[packages]]\nname = "lib"\nversion = "2.0"\nmarker = "\'fast\' in extras"\n'
        f'wheels = [{{ path = "w/{wheel.name}", hashes = {{ sha256 = "{digest}" }} }}]\n'
    )
    plain, fast = make_venv(), make_venv()
    assert torrip("install", "-r", str(path), "--python", str(plain))[0] == 0
    assert freeze(torrip, plain) == []
    code, _, err = torrip("install", "-r", f"{path}[fast]", "--python", str(fast))
    assert code == 0, err
    assert freeze(torrip, fast) == ["lib==2.0"]  # from a path relative to the lock
    # --extra and --all-extras, as uv spells it, select the same.
    for option in (["--extra", "fast"], ["--all-extras"]):
        args = ("install", "--dry-run", "-r", str(path), *option, "--python", str(plain))
        code, out, err = torrip(*args)
        assert code == 0, err
        assert "Would install lib-2.0" in out, option


# -- sync ------------------------------------------------------------------------------


def test_sync_installs_and_removes_what_the_lock_does_not_list(
    torrip: Torrip, index: RunningIndex, make_venv
):
    venv = make_venv()
    code, _, err = torrip(
        "install", "-q", "-i", index.url, "--python", str(venv), "lib==1.0", "stray"
    )
    assert code == 0, err
    path = lock(torrip, index, make_venv(), "app")
    code, out, _ = torrip("sync", str(path), "--python", str(venv), "--dry-run")
    assert code == 0
    assert "Would remove lib-1.0 stray-1.0" in out and "Would install app-1.0 lib-2.0" in out
    assert freeze(torrip, venv) == ["lib==1.0", "stray==1.0"]
    code, out, err = torrip("sync", str(path), "--python", str(venv))
    assert code == 0, err
    assert "Successfully uninstalled lib-1.0 stray-1.0" in out
    assert freeze(torrip, venv) == locked_pins(path) == ["app==1.0", "lib==2.0"]
    code, out, _ = torrip("sync", str(path), "--python", str(venv))
    assert code == 0 and "Would" not in out and "uninstalled" not in out
    assert torrip("install", "-q", "-i", index.url, "--python", str(venv), "stray")[0] == 0
    code, out, err = torrip("sync", str(path), "--python", str(venv))  # only a removal
    assert code == 0, err
    assert "Successfully uninstalled stray-1.0" in out and "Successfully installed" not in out
    assert freeze(torrip, venv) == ["app==1.0", "lib==2.0"]


def test_sync_takes_only_a_lockfile(torrip: Torrip, tmp_path: Path):
    (tmp_path / "requirements.txt").write_text("lib\n")
    code, _, err = torrip("sync", "requirements.txt")
    assert code == 1 and "torrip sync installs PEP 751 lockfiles" in err


# -- other tools' lockfiles, and other tools installing torrip's -----------------------


def test_torrip_installs_the_lock_uv_writes(
    torrip: Torrip, index: RunningIndex, tmp_path, make_venv
):
    (tmp_path / "requirements.in").write_text("app[x]\n")
    python = make_venv() / "bin" / "python"
    uv = [BIN / "uv", "pip", "compile", "-q", "--index-url", index.url, "--python", python]
    run_tool([*uv, "requirements.in", "-o", "pylock.toml"], tmp_path)
    assert 'created-by = "uv"' in (tmp_path / "pylock.toml").read_text()
    venv = make_venv()
    code, _, err = torrip("install", "-r", "pylock.toml", "--python", str(venv))
    assert code == 0, err
    assert freeze(torrip, venv) == locked_pins(tmp_path / "pylock.toml")
    assert freeze(torrip, venv) == ["app==1.0", "extra-dep==0.1", "lib==2.0"]


def test_torrip_installs_the_lock_pip_writes(
    torrip: Torrip, index: RunningIndex, tmp_path, make_venv
):
    pip = [BIN / "pip", "lock", "-q", "--index-url", index.url, "-o", "pylock.toml", "app[x]"]
    run_tool(pip, tmp_path)
    assert 'created-by = "pip"' in (tmp_path / "pylock.toml").read_text()
    venv = make_venv()
    code, _, err = torrip("install", "-r", "pylock.toml", "--python", str(venv))
    assert code == 0, err
    assert freeze(torrip, venv) == ["app==1.0", "extra-dep==0.1", "lib==2.0"]


@pytest.mark.parametrize("tool", ["uv", "pip"])
def test_uv_and_pip_install_the_lock_torrip_writes(
    tool: str, torrip: Torrip, index: RunningIndex, tmp_path: Path, make_venv
):
    path = lock(torrip, index, make_venv(), "app[x]")
    venv = make_venv()
    python = venv / "bin" / "python"
    if tool == "uv":
        command = [BIN / "uv", "pip", "install", "-q", "--python", python, "-r", path]
    else:
        command = [BIN / "pip", "--python", python, "install", "-q", "-r", path]
    before = len(index.requests)
    run_tool(command, tmp_path)
    assert freeze(torrip, venv) == locked_pins(path)
    if tool == "uv":  # uv, too, takes the files by their locked URLs and asks no index
        assert not [r for r in index.requests[before:] if "/simple/" in r.path]


@pytest.mark.parametrize("tool", ["torrip", "uv", "pip"])
def test_a_hash_pinned_requirements_file(
    tool: str, torrip: Torrip, index: RunningIndex, tmp_path: Path, make_venv
):
    """-o requirements.txt (or --format requirements.txt): what the lock pins, with the
    sha256 of each chosen file, in pip's hash-checking form, as uv pip compile writes it;
    torrip, uv and pip install exactly the lock from it."""
    locked = lock(torrip, index, make_venv(), "app[x]")
    pinned = lock(torrip, index, make_venv(), "app[x]", out="requirements.txt")
    text = pinned.read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    lock_data = Pylock.from_dict(tomllib.loads(locked.read_text()))
    expected = []
    for package in lock_data.packages:
        (wheel,) = package.wheels or ()
        expected += [
            f"{package.name}=={package.version} \\",
            f"    --hash=sha256:{wheel.hashes['sha256']}",
        ]
    assert lines == expected
    code, out, _ = torrip(
        "lock", "-i", index.url, "--python", str(make_venv()), "--format", "requirements.txt",
        "-o", "-", "app[x]",
    )  # fmt: skip
    assert code == 0 and [line for line in out.splitlines() if line[:1] != "#"] == expected
    venv = make_venv()
    python = venv / "bin" / "python"
    if tool == "torrip":
        code, _, err = torrip("install", "-i", index.url, "--python", str(venv), "-r", str(pinned))
        assert code == 0, err
    elif tool == "uv":
        run_tool([BIN / "uv", "pip", "install", "-q", "--index-url", index.url, "--python",
                  python, "--require-hashes", "-r", pinned], tmp_path)  # fmt: skip
    else:
        run_tool([BIN / "pip", "--python", python, "install", "-q", "--index-url", index.url,
                  "--require-hashes", "-r", pinned], tmp_path)  # fmt: skip
    assert freeze(torrip, venv) == locked_pins(locked)


# -- the swarm: a lock install with no index and no origin at all -----------------------


def test_lock_install_from_peers_with_index_and_origin_stopped(
    torrip: Torrip, swarm, tmp_path: Path, make_venv
):
    """The lock names each wheel's torrent; with every server gone, peers bring the bytes
    (the metadata too, by infohash), checked against the lock's sha256."""
    from fixtures.swarm import big_wheel

    wheel = big_wheel(tmp_path / "big", "blob", "1.0", 2 * 1024 * 1024, seed=7)
    net = swarm([wheel], seeders=1, tracker=True)
    code, _, err = torrip("lock", "-i", net.url, "--python", str(make_venv()), "blob")
    assert code == 0, err
    document = tomllib.loads(Path("pylock.toml").read_text())
    assert document["packages"][0]["tool"]["torrip"]["torrents"][wheel.name]["btmh"]
    net.origin.stop()
    net.index.stop()
    venv = make_venv()
    flags = [f for f in net.client_flags() if f not in ("--index-url", net.url)]
    code, _, err = torrip(
        "install", "-r", "pylock.toml", "--python", str(venv), "--report", "r.json", *flags
    )
    assert code == 0, err
    (item,) = json.loads(Path("r.json").read_text())["install"]
    assert item["torrip"]["source"] == "swarm"
    assert item["torrip"]["bytes"]["peers"] == wheel.stat().st_size
    assert item["torrip"]["bytes"]["origin"] == 0
    assert freeze(torrip, venv) == ["blob==1.0"]

"""`torrip install` from the command line: help, dry runs, reports, errors, targets."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fixtures.environments import available_interpreters
from fixtures.index import RunningIndex
from fixtures.wheels import make_sdist, make_wheel
from torrip import __version__
from torrip.cli.main import main

PIP = Path(sys.executable).parent / "pip"


def run_torrip(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "torrip", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def dry_run(
    index: RunningIndex, python: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``torrip install --dry-run`` from the test index into ``python``."""
    return run_torrip(
        "install", "--dry-run", "--index-url", index.url, "--python", str(python), *args, env=env
    )


@pytest.fixture
def index(tmp_path: Path, local_index):
    directory = tmp_path / "dists"
    return local_index(
        [
            make_wheel(
                directory,
                "app",
                "1.0",
                requires_dist=["lib>=1", "extra-dep; extra == 'x'"],
                provides_extra=["x"],
            ),
            make_wheel(directory, "lib", "1.0"),
            make_wheel(
                directory,
                "lib",
                "2.0",
                requires_python=">=3.10",
                # What pip's report must show as pip does: UTF-8, a folded value unfolded,
                # keywords split on spaces, the first of two single-use values, the body.
                more_metadata=(
                    "Summary: The backend\u2014core services\n"
                    "Author: Stefan K\u00f6gl\n"
                    "License: BSD\n        All rights reserved.\n        \n        Use it.\n"
                    "Keywords: one two  three\n"
                    "Home-page: https://first.example\n"
                    "Home-page: https://second.example\n"
                    "\n"
                    "# Lib\n\nKonnichiwa: \u30b3\u30f3\u30cb\u30c1\u30cf\n"
                ),
            ),
            make_wheel(directory, "extra-dep", "0.1"),
            make_wheel(directory, "backport", "1.0"),
            make_wheel(
                directory, "modern", "1.0", requires_dist=["backport; python_version < '3.10'"]
            ),
            make_sdist(directory, "sourcey", "0.3"),
            make_wheel(directory, "halfbuilt", "1.0"),
            make_sdist(directory, "halfbuilt", "1.1"),
        ]
    )


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    return {
        "TORRIP_CONFIG_FILE": str(tmp_path / "no-config.toml"),
        "TORRIP_CACHE_DIR": str(tmp_path / "cache"),
    }


def test_version_and_help() -> None:
    version = run_torrip("--version")
    assert version.returncode == 0 and version.stdout.startswith(f"torrip {__version__}")
    top = run_torrip("--help")
    assert top.returncode == 0 and "install" in top.stdout
    install = run_torrip("install", "--help")
    for text in (
        "Install Options",
        "Package Index Options",
        "General Options",
        "--dry-run",
        "--report",
        "-r FILE, --requirement FILE",
        "--index-url",
        "--python",
    ):
        assert text in install.stdout


def test_dry_run_prints_the_plan(
    index, target_venv: Path, isolated_env, capsys, monkeypatch
) -> None:
    for key, value in isolated_env.items():
        monkeypatch.setenv(key, value)
    code = main(
        ["install", "--dry-run", "--index-url", index.url, "--python", str(target_venv), "app[x]"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Would install app-1.0 extra_dep-0.1 lib-2.0" in out.replace("extra-dep", "extra_dep")


def test_report_matches_pips_format(index, target_venv: Path, isolated_env, tmp_path: Path) -> None:
    ours = tmp_path / "torrip.json"
    result = run_torrip(
        "install",
        "--dry-run",
        "-q",
        "--index-url",
        index.url,
        "--python",
        str(target_venv),
        "--report",
        str(ours),
        "app",
        env=isolated_env,
    )
    assert result.returncode == 0, result.stderr
    pips = tmp_path / "pip.json"
    pip_env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    pip_env.update(PIP_CONFIG_FILE="/dev/null", PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run(
        [
            str(PIP),
            "--python",
            str(target_venv / "bin" / "python"),
            "install",
            "--dry-run",
            "--quiet",
            "--no-cache-dir",
            "--index-url",
            index.url,
            "--report",
            str(pips),
            "app",
        ],
        check=True,
        env=pip_env,
        timeout=120,
    )
    report, reference = json.loads(ours.read_text()), json.loads(pips.read_text())
    assert report["version"] == reference["version"] == "1"
    assert report["environment"] == reference["environment"]
    ours_items = {i["metadata"]["name"]: i for i in report["install"]}
    pip_items = {i["metadata"]["name"]: i for i in reference["install"]}
    assert ours_items.keys() == pip_items.keys() == {"app", "lib"}
    for name, item in pip_items.items():
        mine = ours_items[name]
        assert set(item) - {"requested_extras"} <= set(mine)
        assert mine["download_info"]["url"] == item["download_info"]["url"]
        assert (
            mine["download_info"]["archive_info"]["hashes"]
            == (item["download_info"]["archive_info"]["hashes"])
        )
        assert (mine["requested"], mine["is_direct"]) == (item["requested"], item["is_direct"])
        assert mine["metadata"] == item["metadata"]
        assert "torrent" in mine["torrip"]  # the index publishes torrents


def test_requirements_file_with_its_own_index_url(
    index, target_venv: Path, isolated_env, tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--index-url {index.url}\nlib==1.0  # pinned\n")
    result = run_torrip(
        "install",
        "--dry-run",
        "--python",
        str(target_venv),
        "-r",
        str(requirements),
        env=isolated_env,
    )
    assert result.returncode == 0, result.stderr
    assert "Would install lib-1.0" in result.stdout


def test_index_strategy_first_index_keeps_a_private_project_private(
    local_index, target_venv: Path, isolated_env, tmp_path: Path
) -> None:
    """Dependency confusion: a public index publishes a higher version of a private
    project. As pip, every index counts by default and the public file wins; with
    first-index (uv's strategy, extra indexes first) the private index answers alone, and
    projects it does not have still come from the public one."""
    private = local_index([make_wheel(tmp_path / "private", "corp-lib", "1.0")])
    public = local_index(
        [
            make_wheel(tmp_path / "public", "corp-lib", "99.0"),
            make_wheel(tmp_path / "public", "six", "1.0"),
        ]
    )

    def plan(*options: str, **env: str) -> subprocess.CompletedProcess[str]:
        cache = tmp_path / f"cache-{len(list(tmp_path.glob('cache-*')))}"  # no page reused
        return run_torrip(
            "install", "--dry-run", "-v", "--python", str(target_venv),
            "--index-url", public.url, "--extra-index-url", private.url,
            *options, "corp-lib", "six",
            env={**isolated_env, "TORRIP_CACHE_DIR": str(cache), **env},
        )  # fmt: skip

    merged = plan()
    assert "Would install corp-lib-99.0 six-1.0" in merged.stdout, merged.stderr
    for chosen in (plan("--index-strategy", "first-index"),
                   plan(TORRIP_INDEX_STRATEGY="first-index")):  # fmt: skip
        assert chosen.returncode == 0, chosen.stderr
        assert "Would install corp-lib-1.0 six-1.0" in chosen.stdout
        assert f"corp-lib: files from {private.url} alone" in chosen.stderr
    asked = [r.path for r in public.requests if r.path.endswith("/corp-lib/")]
    assert len(asked) == 1  # the merged plan's; first-index never asked the public index
    bad = plan(TORRIP_INDEX_STRATEGY="best")
    assert bad.returncode != 0
    assert "bad value 'best' for index-strategy" in bad.stderr and "first-index" in bad.stderr


def test_constraints_and_requirements_by_url(index, target_venv: Path, isolated_env) -> None:
    """As pip (and Airflow's install instructions): -c URL and -r URL, files read from the
    server like any other, what they include by relative names read from beside them."""
    (index.root / "pins").mkdir()
    (index.root / "pins" / "constraints.txt").write_text("-c more.txt\n")
    (index.root / "pins" / "more.txt").write_text("lib==1.0\n")
    (index.root / "pins" / "requirements.txt").write_text("app\n")
    pins = f"{index.base_url}pins/"
    planned = dry_run(
        index, target_venv, "-r", pins + "requirements.txt", "-c", pins + "constraints.txt",
        env=isolated_env,
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    assert "Would install app-1.0 lib-1.0" in planned.stdout
    missing = dry_run(index, target_venv, "app", "-c", pins + "gone.txt", env=isolated_env)
    assert missing.returncode != 0
    assert f"could not read {pins}gone.txt: HTTP 404" in missing.stderr
    assert "Check the URL given to -r or -c" in missing.stderr


def test_sdist_only_is_a_clear_error(index, target_venv: Path, isolated_env) -> None:
    result = dry_run(index, target_venv, "sourcey", env=isolated_env)
    assert result.returncode == 1
    assert "sourcey 0.3 has only a source distribution: sourcey-0.3.tar.gz" in result.stderr
    assert "hint:" in result.stderr


def test_a_newer_version_with_only_an_sdist_is_named(
    index, target_venv: Path, isolated_env
) -> None:
    """pip would build halfbuilt 1.1 from its sdist; torrip installs 1.0 and says so."""
    result = dry_run(index, target_venv, "halfbuilt", env=isolated_env)
    assert result.returncode == 0, result.stderr
    assert "Would install halfbuilt-1.0" in result.stdout
    assert (
        "warning: halfbuilt 1.1 has only a source distribution (halfbuilt-1.1.tar.gz), which "
        "torrip does not build: using 1.0" in " ".join(result.stderr.split())
    )


def test_bad_requirement_and_no_requirement(target_venv: Path, isolated_env) -> None:
    bad = run_torrip(
        "install", "--dry-run", "--python", str(target_venv), "app>>1", env=isolated_env
    )
    assert bad.returncode == 1 and "invalid requirement 'app>>1'" in bad.stderr
    none = run_torrip("install", "--dry-run", env=isolated_env)
    assert none.returncode == 1 and "at least one requirement" in none.stderr


def _fake_installed(venv: Path, name: str, version: str) -> None:
    (site,) = venv.glob("lib/python*/site-packages")
    dist_info = site / f"{name}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    (dist_info / "RECORD").write_text("")


def test_installed_distributions_satisfy_unless_upgrading(index, make_venv, isolated_env) -> None:
    venv = make_venv()
    _fake_installed(venv, "lib", "1.0")
    kept = dry_run(index, venv, "app", env=isolated_env)
    assert kept.returncode == 0, kept.stderr
    assert "Requirement already satisfied: lib==1.0" in kept.stdout
    assert "Would install app-1.0" in kept.stdout and "lib-2.0" not in kept.stdout
    upgraded = run_torrip(
        "install",
        "--dry-run",
        "-U",
        "--index-url",
        index.url,
        "--python",
        str(venv),
        "lib",
        env=isolated_env,
    )
    assert "Would remove lib-1.0" in upgraded.stdout
    assert "Would install lib-2.0" in upgraded.stdout
    # -U app: lib 1.0 still satisfies app, so it stays, unless the strategy is eager.
    only_app = dry_run(index, venv, "-U", "app", env=isolated_env)
    assert "Requirement already satisfied: lib==1.0" in only_app.stdout, only_app.stderr
    eager = dry_run(index, venv, "-U", "--upgrade-strategy", "eager", "app", env=isolated_env)
    assert "Would remove lib-1.0" in eager.stdout, eager.stderr
    assert "Would install app-1.0 lib-2.0" in eager.stdout


@pytest.mark.parametrize("version", list(available_interpreters()))
def test_each_target_interpreter(version: str, index, make_venv, isolated_env) -> None:
    venv = make_venv(available_interpreters()[version])
    result = dry_run(index, venv, "lib", "modern", env=isolated_env)
    assert result.returncode == 0, result.stderr
    old = tuple(map(int, version.split("."))) < (3, 10)
    expected = "backport-1.0 lib-1.0 modern-1.0" if old else "lib-2.0 modern-1.0"
    assert f"Would install {expected}" in result.stdout


def test_real_install_then_from_cache(index, make_venv, isolated_env, tmp_path: Path) -> None:
    first, second = make_venv(), make_venv()
    report = tmp_path / "report.json"
    result = run_torrip(
        "install",
        "--index-url",
        index.url,
        "--python",
        str(first),
        "--report",
        str(report),
        "app",
        env=isolated_env,
    )
    assert result.returncode == 0, result.stderr
    assert "Successfully installed app-1.0 lib-2.0" in result.stdout
    python = first / "bin" / "python"
    subprocess.run([str(python), "-c", "import app, lib"], check=True)
    (site,) = first.glob("lib/python*/site-packages")
    assert (site / "app-1.0.dist-info" / "REQUESTED").exists()
    assert not (site / "lib-2.0.dist-info" / "REQUESTED").exists()
    assert (site / "lib-2.0.dist-info" / "INSTALLER").read_text().strip() == "torrip"
    data = json.loads(report.read_text())
    served = sum(r.bytes_sent for r in index.requests if r.path.endswith(".whl"))
    assert data["torrip"]["bytes"]["origin"] == served
    assert {i["torrip"]["source"] for i in data["install"]} == {"origin"}

    before = len(index.requests)
    again = run_torrip(
        "install",
        "--index-url",
        index.url,
        "--python",
        str(second),
        "--report",
        str(report),
        "app",
        env=isolated_env,
    )
    assert again.returncode == 0, again.stderr
    assert not [r for r in index.requests[before:] if r.path.endswith(".whl")]
    data = json.loads(report.read_text())
    assert data["torrip"]["bytes"]["origin"] == 0
    assert {i["torrip"]["source"] for i in data["install"]} == {"cache"}


def test_a_damaged_cached_file_is_fetched_again(
    index, make_venv, isolated_env, tmp_path: Path
) -> None:
    """A cached wheel whose bytes changed on disk, size kept: not the wheel's fault, and not
    for good (every later install would fail): it is dropped and downloaded again."""
    install = ("install", "--index-url", index.url, "lib", "--report", str(tmp_path / "r.json"))
    first = run_torrip(*install, "--python", str(make_venv()), env=isolated_env)
    assert first.returncode == 0, first.stderr
    cache = Path(isolated_env["TORRIP_CACHE_DIR"])
    (cached,) = (cache / "dists-v1").rglob("lib-2.0-*.whl")
    original = cached.read_bytes()
    with zipfile.ZipFile(cached) as archive:
        member = archive.infolist()[0]
    header = original[member.header_offset : member.header_offset + 30]
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    data_start = member.header_offset + 30 + name_length + extra_length
    damaged = bytearray(original)
    damaged[data_start] ^= 0xFF  # the member's first byte of data
    cached.write_bytes(bytes(damaged))
    shutil.rmtree(cache / "unpacked-v1")  # or the wheel is not read again

    again = run_torrip(*install, "--python", str(make_venv()), env=isolated_env)
    assert again.returncode == 0, again.stderr
    assert "the cached copy is damaged" in again.stderr + again.stdout
    assert "Successfully installed lib-2.0" in again.stdout
    assert cached.read_bytes() == original
    report = json.loads((tmp_path / "r.json").read_text())
    assert [i["torrip"]["source"] for i in report["install"]] == ["origin"]
    assert report["torrip"]["bytes"]["origin"] == len(original)


def test_an_externally_managed_python_is_refused_unless_told(
    index, make_system_python, isolated_env, tmp_path: Path
) -> None:
    """PEP 668, as pip and uv: install, sync and uninstall refuse a distributor's Python
    before downloading or changing anything; --dry-run only reads; the override works."""
    python = make_system_python("[externally-managed]\nError=Use apt install python3-lib.\n")
    (site,) = python.parent.parent.glob("lib/python*/site-packages")
    install = ("install", "--index-url", index.url, "--python", str(python), "lib")
    refused = run_torrip(*install, env=isolated_env)
    assert refused.returncode == 1
    assert f"error: {python} is externally managed" in refused.stderr
    assert "Use apt install python3-lib." in refused.stderr
    assert "--break-system-packages" in refused.stderr
    assert not [r for r in index.requests if r.path.endswith(".whl")]
    assert list(site.iterdir()) == []

    planned = run_torrip(*install, "--dry-run", env=isolated_env)
    assert planned.returncode == 0, planned.stderr
    assert "Would install lib-2.0" in planned.stdout

    lock = tmp_path / "pylock.toml"
    locked = run_torrip(
        "lock",
        "--index-url",
        index.url,
        "--python",
        str(python),
        "-o",
        str(lock),
        "lib",
        env=isolated_env,
    )
    assert locked.returncode == 0, locked.stderr
    synced = run_torrip("sync", "--python", str(python), str(lock), env=isolated_env)
    assert (synced.returncode, "externally managed" in synced.stderr) == (1, True)
    assert list(site.iterdir()) == []

    told = run_torrip(*install, env={**isolated_env, "TORRIP_BREAK_SYSTEM_PACKAGES": "1"})
    assert told.returncode == 0, told.stderr
    assert (site / "lib-2.0.dist-info").is_dir()
    uninstall = ("uninstall", "-y", "--python", str(python), "lib")
    kept = run_torrip(*uninstall, env=isolated_env)
    assert (kept.returncode, "externally managed" in kept.stderr) == (1, True)
    assert (site / "lib-2.0.dist-info").is_dir()
    removed = run_torrip(*uninstall, "--break-system-packages", env=isolated_env)
    assert removed.returncode == 0, removed.stderr
    assert not (site / "lib-2.0.dist-info").exists()


def test_user_installs_go_to_the_user_site(
    index, make_system_python, make_venv, isolated_env, tmp_path: Path
) -> None:
    """--user, as pip's: into the interpreter's user scheme (PYTHONUSERBASE here), what the
    system site holds left alone and shadowed, an upgrade replacing the user site's copy;
    refused in a venv, with PYTHONNOUSERSITE, and on an externally managed Python."""
    python = make_system_python()
    (site,) = python.parent.parent.glob("lib/python*/site-packages")
    told = run_torrip(
        "install", "--index-url", index.url, "--python", str(python), "lib==1.0",
        env={**isolated_env, "TORRIP_BREAK_SYSTEM_PACKAGES": "1"},
    )  # fmt: skip
    assert told.returncode == 0, told.stderr
    base = tmp_path / "userbase"
    user_env = {**isolated_env, "PYTHONUSERBASE": str(base)}

    def user_install(
        *args: str, env: dict[str, str] = user_env
    ) -> subprocess.CompletedProcess[str]:
        return run_torrip(
            "install", "--user", "--index-url", index.url, "--python", str(python), *args, env=env
        )

    installed = user_install("app")
    assert installed.returncode == 0, installed.stderr
    # The system site's lib 1.0 satisfies app, as for pip: only app is installed.
    assert "Requirement already satisfied: lib==1.0" in installed.stdout
    assert "Successfully installed app-1.0" in installed.stdout
    upgraded = user_install("lib==2.0")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "uninstalled" not in upgraded.stdout  # the system site's lib 1.0 stays
    (user_site,) = base.glob("lib/python*/site-packages")
    assert sorted(p.name for p in user_site.glob("*.dist-info")) == [
        "app-1.0.dist-info",
        "lib-2.0.dist-info",
    ]
    assert (site / "lib-1.0.dist-info").is_dir()
    ran = subprocess.run(
        [str(python), "-c", "import app, lib; print(lib.__file__)"],
        capture_output=True, text=True, env={**os.environ, "PYTHONUSERBASE": str(base)},
    )  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.startswith(str(user_site)), ran.stderr
    again = user_install("app")
    assert "Requirement already satisfied: app==1.0" in again.stdout, again.stderr
    downgraded = user_install("lib==1.0", "--force-reinstall")
    assert downgraded.returncode == 0, downgraded.stderr
    assert sorted(p.name for p in user_site.glob("lib-*.dist-info")) == ["lib-1.0.dist-info"]
    # Outside a venv the user site is listed as installed, as pip lists it.
    listed = run_torrip("list", "--format", "freeze", "--python", str(python), env=user_env)
    assert "app==1.0" in listed.stdout.split(), listed.stderr
    plain = run_torrip("uninstall", "-y", "--python", str(python), "app", env=user_env)
    assert plain.returncode == 1 and "uninstall --user" in plain.stderr
    uninstall = ("uninstall", "-y", "--user", "--python", str(python))
    removed = run_torrip(*uninstall, "lib", env=user_env)
    assert removed.returncode == 0, removed.stderr
    assert not list(user_site.glob("lib*")) and (site / "lib-1.0.dist-info").is_dir()
    system = run_torrip(*uninstall, "lib", env=user_env)  # only the system's is left
    assert system.returncode == 1 and "outside the environment" in system.stderr

    in_venv = run_torrip(
        "install", "--user", "--index-url", index.url, "--python", str(make_venv()), "lib",
        env=user_env,
    )  # fmt: skip
    assert in_venv.returncode == 1 and "virtual environment" in in_venv.stderr
    off = user_install("lib", env={**user_env, "PYTHONNOUSERSITE": "1"})
    assert off.returncode == 1 and "PYTHONNOUSERSITE" in off.stderr
    managed = make_system_python("[externally-managed]\nError=Use apt.\n")
    refused = run_torrip(
        "install", "--user", "--index-url", index.url, "--python", str(managed), "lib",
        env=user_env,
    )  # fmt: skip
    assert refused.returncode == 1 and "externally managed" in refused.stderr


@pytest.mark.parametrize("metadata", ["ok", "missing"])
def test_an_index_in_a_local_folder(metadata: str, local_index, make_venv, tmp_path: Path) -> None:
    """--index-url names a folder laid out as an index, or its file: URL, as pip reads
    one: pages, metadata files (or range reads of the wheels) and wheels come from disk,
    no server is asked."""
    directory = tmp_path / "dists"
    wheels = [
        make_wheel(directory, "app", "1.0", requires_dist=["lib>=1"]),
        make_wheel(directory, "lib", "1.0"),
    ]
    served = local_index(wheels, absolute_urls=False, torrents=False, metadata=metadata)
    folder = served.root / "simple"
    # The JSON pages as `torrip index build` writes them; without them, the HTML pages.
    for url, page_type in [
        (str(folder), "application/vnd.pypi.simple.v1+json"),
        (folder.as_uri(), "application/vnd.pypi.simple.v1+json"),
        (folder.as_uri(), "text/html"),
    ]:
        if page_type == "text/html":
            for page in folder.rglob("index.json"):
                page.unlink()
        env = {
            "TORRIP_CONFIG_FILE": str(tmp_path / "no-config.toml"),
            "TORRIP_CACHE_DIR": str(tmp_path / "cache" / page_type.replace("/", "-") / url[:4]),
        }
        venv = make_venv()
        install = ("install", "-v", "--index-url", url, "--python", str(venv), "app")
        result = run_torrip(*install, env=env)
        assert result.returncode == 0, result.stderr
        assert "Successfully installed app-1.0 lib-1.0" in result.stdout
        assert f"/app/: 1 files ({page_type}" in result.stderr
        subprocess.run([str(venv / "bin" / "python"), "-c", "import app, lib"], check=True)
    assert len(served.requests) == 0
    missing = run_torrip("install", "--index-url", str(tmp_path / "nowhere"), "--dry-run", "app")
    assert missing.returncode == 2
    assert "is not a URL, nor an existing folder" in missing.stderr


def test_target_and_prefix_folders(local_index, make_venv, isolated_env, tmp_path: Path) -> None:
    """--target DIR: packages at DIR's top level, scripts in DIR/bin bound to the target
    interpreter; only what DIR holds counts as installed (an upgrade replaces it there).
    --prefix DIR: the interpreter's layout under DIR. The environment itself is untouched."""
    directory = tmp_path / "dists"
    wheels = [
        make_wheel(
            directory,
            "tool",
            "1.0",
            requires_dist=["lib"],
            entry_points="[console_scripts]\ntool = tool:main\n",
            files={"tool/__init__.py": b"def main():\n    print('tool ran')\n"},
        ),
        make_wheel(directory, "lib", "1.0"),
        make_wheel(directory, "lib", "2.0"),
    ]
    index = local_index(wheels, torrents=False)
    venv = make_venv()
    (site,) = venv.glob("lib/python*/site-packages")
    install = ("install", "--index-url", index.url, "--python", str(venv))
    into_venv = run_torrip(*install, "lib==1.0", env=isolated_env)  # not the target's
    assert into_venv.returncode == 0, into_venv.stderr
    before = sorted(p.name for p in site.iterdir())
    target = tmp_path / "target"
    first = run_torrip(*install, "--target", str(target), "tool", "lib==1.0", env=isolated_env)
    assert first.returncode == 0, first.stderr
    assert "Successfully installed lib-1.0 tool-1.0" in first.stdout
    assert {"tool", "lib", "tool-1.0.dist-info", "lib-1.0.dist-info", "bin"} <= {
        p.name for p in target.iterdir()
    }
    ran = subprocess.run(
        [str(target / "bin" / "tool")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(target)},
        check=True,
    )
    assert ran.stdout == "tool ran\n"
    assert (target / "bin" / "tool").read_text().startswith(f"#!{venv / 'bin' / 'python'}")
    again = run_torrip(*install, "--target", str(target), "tool", "lib>=2", env=isolated_env)
    assert again.returncode == 0, again.stderr
    assert "Requirement already satisfied: tool==1.0" in again.stdout
    assert "Successfully installed lib-2.0" in again.stdout
    assert not (target / "lib-1.0.dist-info").exists()
    assert (target / "lib-2.0.dist-info").is_dir()

    prefix = tmp_path / "prefix"
    third = run_torrip(*install, "--prefix", str(prefix), "lib", env=isolated_env)
    assert third.returncode == 0, third.stderr
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert (prefix / "lib" / version / "site-packages" / "lib-2.0.dist-info").is_dir()
    assert sorted(p.name for p in site.iterdir()) == before
    not_a_folder = run_torrip(
        *install, "--target", str(directory / "tool-1.0-py3-none-any.whl"), "lib", env=isolated_env
    )
    assert (not_a_folder.returncode, "not a folder" in not_a_folder.stderr) == (1, True)


def test_a_wheel_file_by_its_path_and_what_needs_building(
    make_venv, isolated_env, tmp_path: Path
) -> None:
    """A wheel's path installs with no index (as pip's ``pip install ./x.whl``); a project
    folder, a source distribution or -e gets an error that says torrip does not build."""
    wheel = make_wheel(tmp_path / "dist", "solo", "1.0")
    venv = make_venv()
    installed = run_torrip(
        "install", "--no-index", "--python", str(venv), str(wheel), env=isolated_env
    )
    assert installed.returncode == 0, installed.stderr
    assert "Successfully installed solo-1.0" in installed.stdout
    subprocess.run([str(venv / "bin" / "python"), "-c", "import solo"], check=True)
    sdist = make_sdist(tmp_path / "dist", "sourcey", "0.3")
    vcs = tmp_path / "vcs.txt"
    vcs.write_text("solo @ hg+https://127.0.0.1:9/solo\n")
    for given, system in (
        (["-e", str(tmp_path)], ""),
        ([str(tmp_path)], ""),
        ([str(sdist)], ""),
        (["git+https://127.0.0.1:9/solo.git"], "a Git repository"),
        (["solo @ git+https://127.0.0.1:9/solo.git@main"], "a Git repository"),
        (["-r", str(vcs)], "a Mercurial repository"),
    ):
        refused = run_torrip("install", "--python", str(venv), *given, env=isolated_env)
        assert refused.returncode == 1, given
        assert "does not build" in refused.stderr and system in refused.stderr, refused.stderr


def test_uploaded_prior_to(local_index, target_venv: Path, isolated_env, tmp_path: Path) -> None:
    """As pip's option: only files uploaded before a moment (or P<n>D ago) are candidates,
    and an index that gives no upload time for a file is an error, not a silent pass."""
    dists = tmp_path / "dists"
    wheels = [make_wheel(dists, "lib", "1.0"), make_wheel(dists, "lib", "2.0")]
    now = datetime.now(timezone.utc)
    times = {
        "lib-1.0-py3-none-any.whl": datetime(2024, 1, 1, tzinfo=timezone.utc),
        "lib-2.0-py3-none-any.whl": now - timedelta(hours=1),
    }
    index = local_index(wheels, torrents=False, upload_times=times)
    for cutoff, expected in [
        ("2025-01-01T00:00:00Z", "lib-1.0"),
        ("P3D", "lib-1.0"),
        ((now + timedelta(days=1)).isoformat(), "lib-2.0"),
    ]:
        planned = dry_run(
            index, target_venv, "--uploaded-prior-to", cutoff, "lib", env=isolated_env
        )
        assert planned.returncode == 0, planned.stderr
        assert f"Would install {expected}" in planned.stdout, cutoff
    bad = dry_run(index, target_venv, "--uploaded-prior-to", "last week", "lib", env=isolated_env)
    assert bad.returncode == 2
    assert "bad value 'last week' for uploaded-prior-to" in bad.stderr
    untimed = local_index(wheels, torrents=False)
    refused = dry_run(untimed, target_venv, "--uploaded-prior-to", "P3D", "lib", env=isolated_env)
    assert refused.returncode == 1
    assert "gives no upload time for lib-2.0-py3-none-any.whl" in refused.stderr


def test_a_dependency_group(index, target_venv: Path, isolated_env, tmp_path: Path) -> None:
    """--group alone is something to install: the group's requirements, with those of the
    groups it includes."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[dependency-groups]\ndev = ["app[x]", {include-group = "base"}]\nbase = ["lib<2"]\n'
    )
    planned = dry_run(index, target_venv, "--group", f"{pyproject}:dev", env=isolated_env)
    assert planned.returncode == 0, planned.stderr
    assert "Would install app-1.0 extra-dep-0.1 lib-1.0" in planned.stdout


def test_a_projects_dependencies_and_extras(
    index, target_venv: Path, isolated_env, tmp_path: Path
) -> None:
    """-r pyproject.toml: the [project] dependencies, and the extras chosen with --extra or
    --all-extras (one naming the project itself brings in its extras); the same for lock."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "mine"\nversion = "0.1"\ndependencies = ["app"]\n'
        '[project.optional-dependencies]\nold = ["lib<2"]\nall = ["mine[old]", "modern"]\n'
    )
    plain = dry_run(index, target_venv, "-r", str(pyproject), env=isolated_env)
    assert plain.returncode == 0, plain.stderr
    assert "Would install app-1.0 lib-2.0" in plain.stdout
    old = dry_run(index, target_venv, "-r", str(pyproject), "--extra", "old", env=isolated_env)
    assert "Would install app-1.0 lib-1.0" in old.stdout, old.stderr
    every = dry_run(index, target_venv, "-r", str(pyproject), "--all-extras", env=isolated_env)
    assert "Would install app-1.0 lib-1.0 modern-1.0" in every.stdout, every.stderr
    locked = tmp_path / "pylock.toml"
    lock = run_torrip(
        "lock", "-i", index.url, "--python", str(target_venv), "-o", str(locked),
        "-r", str(pyproject), "--extra", "all", env=isolated_env,
    )  # fmt: skip
    assert lock.returncode == 0, lock.stderr
    assert 'name = "modern"' in locked.read_text() and 'version = "1.0"' in locked.read_text()
    unknown = dry_run(index, target_venv, "-r", str(pyproject), "--extra", "x", env=isolated_env)
    assert unknown.returncode != 0
    assert "has no extra 'x'" in unknown.stderr and "Its extras" in unknown.stderr


def test_offline_installs_from_the_cache_alone(
    index, make_venv, isolated_env, tmp_path: Path
) -> None:
    """--offline: pages (however old), metadata and wheels from the cache, no request at
    all; what the cache lacks is an error naming it."""
    first = run_torrip(
        "install", "--index-url", index.url, "--python", str(make_venv()), "app", env=isolated_env
    )
    assert first.returncode == 0, first.stderr
    pages = list((Path(isolated_env["TORRIP_CACHE_DIR"]) / "http-v1").rglob("*.json"))
    assert pages
    for meta in pages:
        record = json.loads(meta.read_text())
        record["stored_at"] = 0.0  # decades old: online, each page would be asked again
        meta.write_text(json.dumps(record))
    before = len(index.requests)
    venv = make_venv()
    offline = run_torrip(
        "install",
        "--offline",
        "--index-url",
        index.url,
        "--python",
        str(venv),
        "app",
        env=isolated_env,
    )
    assert offline.returncode == 0, offline.stderr
    assert "Successfully installed app-1.0 lib-2.0" in offline.stdout
    assert len(index.requests) == before
    missing = run_torrip(
        "install",
        "--offline",
        "--index-url",
        index.url,
        "--python",
        str(venv),
        "modern",
        env=isolated_env,
    )
    assert missing.returncode == 1
    assert f"{index.url}modern/ is not in torrip's cache" in missing.stderr
    assert len(index.requests) == before


def test_no_binary_in_a_requirements_file_is_named(
    index, target_venv: Path, isolated_env, tmp_path: Path
) -> None:
    """torrip builds nothing: --no-binary is not silently dropped, it is named."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--no-binary lib\n--no-binary :none:\nlib\n")
    planned = dry_run(index, target_venv, "-r", str(requirements), env=isolated_env)
    assert planned.returncode == 0, planned.stderr
    assert "warning: --no-binary lib asks to build from source" in planned.stderr
    assert "Would install lib-2.0" in planned.stdout


def test_much_to_unpack_is_unpacked_by_forked_workers(
    local_index, make_venv, isolated_env, tmp_path: Path
) -> None:
    """Cold, and past FORK_MIN_BYTES: worker processes forked after the resolution unpack
    (where the machine has more than one core); the install is the same."""
    from torrip.install.unpacked import FORK_MIN_BYTES

    blob = os.urandom(FORK_MIN_BYTES)  # does not compress: the wheel is as large
    directory = tmp_path / "dists"
    index = local_index(
        [
            make_wheel(
                directory,
                "big",
                "1.0",
                requires_dist=["lib"],
                files={"big/__init__.py": b"", "big/blob.bin": blob},
            ),
            make_wheel(directory, "lib", "1.0"),
        ]
    )
    venv = make_venv()
    result = run_torrip(
        "install", "-v", "--index-url", index.url, "--python", str(venv), "big", env=isolated_env
    )
    assert result.returncode == 0, result.stderr
    forked = re.search(r"unpacking in \d forked worker processes", result.stderr) is not None
    assert forked == ((os.cpu_count() or 1) > 1), result.stderr
    (site,) = venv.glob("lib/python*/site-packages")
    assert (site / "big" / "blob.bin").read_bytes() == blob
    assert (site / "lib" / "__init__.py").is_file()


def test_a_cold_install_fetches_what_the_resolver_pins_while_it_resolves(
    index, make_venv, isolated_env, tmp_path: Path
) -> None:
    """Cold, on more than one core: each pinned wheel is downloaded and unpacked by forked
    workers while the resolution goes on, and counted as the origin's. Warm (the pages
    fresh), no worker is forked."""
    report = tmp_path / "report.json"
    args = ["install", "-v", "--index-url", index.url, "--report", str(report), "app"]
    cold = run_torrip(*args, "--python", str(make_venv()), env=isolated_env)
    assert cold.returncode == 0, cold.stderr
    early = re.search(r"(\d+) files fetched while resolving", cold.stderr)
    if (os.cpu_count() or 1) > 1:
        assert early is not None and early.group(1) == "2", cold.stderr
    else:
        assert early is None, cold.stderr
    data = json.loads(report.read_text())
    served = sum(r.bytes_sent for r in index.requests if r.path.endswith(".whl"))
    assert data["torrip"]["bytes"]["origin"] == served
    assert {i["torrip"]["source"] for i in data["install"]} == {"origin"}
    venv = make_venv()
    warm = run_torrip(*args, "--python", str(venv), env=isolated_env)
    assert warm.returncode == 0, warm.stderr
    assert "fetched while resolving" not in warm.stderr
    assert "forked worker processes" not in warm.stderr
    subprocess.run([str(venv / "bin" / "python"), "-c", "import app, lib"], check=True)


def test_a_warm_install_loads_no_network_or_process_stack(
    index, make_venv, isolated_env, tmp_path: Path
) -> None:
    """Pages still fresh and every file in the cache: no request, so neither httpx (with
    its TLS stack), libtorrent nor multiprocessing is imported; nor, without a config file
    and with JSON pages, tomllib and html.parser."""
    args = ["install", "--index-url", index.url, "app"]
    first = run_torrip(*args, "--python", str(make_venv()), env=isolated_env)
    assert first.returncode == 0, first.stderr
    before = len(index.requests)
    script = (
        "import sys\n"
        "from torrip.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "unwanted = ('httpx', 'libtorrent', 'multiprocessing', 'tomllib', 'html.parser')\n"
        "print(sorted(m for m in unwanted if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    venv = make_venv()
    warm = subprocess.run(
        [sys.executable, "-c", script, *args, "--python", str(venv)],
        capture_output=True,
        text=True,
        env={**os.environ, **isolated_env},
        timeout=120,
    )
    assert warm.returncode == 0, warm.stderr
    assert "Successfully installed app-1.0 lib-2.0" in warm.stdout
    assert warm.stdout.strip().splitlines()[-1] == "[]"
    assert len(index.requests) == before
    subprocess.run([str(venv / "bin" / "python"), "-c", "import app, lib"], check=True)

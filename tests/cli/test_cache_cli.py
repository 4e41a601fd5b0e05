"""``torrip cache dir|info|clean`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from torrip.cli.cache import format_size
from torrip.cli.main import main
from torrip.config import load_settings


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORRIP_CONFIG_FILE", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("TORRIP_CACHE_DIR", str(tmp_path / "cache"))
    pages = tmp_path / "cache" / "http-v1" / "ab"
    pages.mkdir(parents=True)
    (pages / "page.body").write_bytes(b"x" * 1500)
    (pages / "page.json").write_bytes(b"{}")
    return tmp_path / "cache"


def test_dir_follows_the_settings(cache_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["cache", "dir"]) == 0
    assert capsys.readouterr().out == f"{cache_dir}\n"
    assert main(["cache", "dir", "--cache-dir", str(tmp_path / "elsewhere")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'elsewhere'}\n"


def test_info_lists_each_area(cache_dir: Path, capsys) -> None:
    assert main(["cache", "info"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Cache location: {cache_dir}",
        "Distribution files (dists-v1): 0 files, 0 bytes",
        "Unpacked wheels (unpacked-v1): 0 files, 0 bytes",
        "Package metadata (metadata-v1): 0 files, 0 bytes",
        "Index pages (http-v1): 2 files, 1,502 bytes (1.5 kB)",
        "Interpreters (interpreters-v1): 0 files, 0 bytes",
        "Lockfiles read (lockfiles-v1): 0 files, 0 bytes",
        "Resolutions (resolutions-v1): 0 files, 0 bytes",
        "Total: 2 files, 1,502 bytes (1.5 kB)",
    ]


@pytest.mark.parametrize("command", ["clean", "purge"])  # purge: pip's name for it
def test_clean_does_not_ask_and_says_what_it_freed(command: str, cache_dir: Path, capsys) -> None:
    assert main(["cache", command]) == 0
    assert capsys.readouterr().out == "Files removed: 2, 1,502 bytes (1.5 kB) freed\n"
    assert not any(path.is_file() for path in cache_dir.rglob("*"))
    assert main(["cache", command]) == 0
    assert capsys.readouterr().out == "Nothing to remove: the cache is empty\n"
    assert load_settings({}).cache_dir == cache_dir


def test_cache_without_a_subcommand_shows_help(capsys) -> None:
    assert main(["cache"]) == 2
    assert "dir" in capsys.readouterr().out


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 999, 1000, 1_500_000, 2_000_000_000)] == [
        "0 bytes",
        "999 bytes",
        "1.0 kB",
        "1.5 MB",
        "2.0 GB",
    ]


def test_list_and_remove_by_pattern(cache_dir: Path, tmp_path: Path, capsys) -> None:
    """As pip cache list/remove: a project name or glob (names compared normalized), or a
    pattern with a version matching file names; remove takes the unpacked tree too."""
    from fixtures.wheels import make_wheel
    from torrip.cache import DistributionCache, UnpackedCache, sha256_of
    from torrip.install.unpacked import unpack_wheel

    cache = DistributionCache(cache_dir)
    kept = {}
    for name, version in [("typing-extensions", "4.0"), ("torch", "2.1"), ("torch", "2.2")]:
        wheel = make_wheel(tmp_path / "made", name, version)
        copy = tmp_path / f"copy-{wheel.name}"
        copy.write_bytes(wheel.read_bytes())
        kept[wheel.name] = cache.add_file(copy, sha256_of(wheel), wheel.name)
    torch_22 = kept["torch-2.2-py3-none-any.whl"]
    unpacked = unpack_wheel(UnpackedCache(cache_dir), torch_22, sha256_of(torch_22))

    def listed(*args: str) -> list[str]:
        assert main(["cache", "list", *args]) == 0
        return capsys.readouterr().out.splitlines()

    assert [line.split(" (")[0] for line in listed()[2:]] == [
        " - torch-2.1-py3-none-any.whl",
        " - torch-2.2-py3-none-any.whl",
        " - typing_extensions-4.0-py3-none-any.whl",
    ]
    assert len(listed("Typing_Extensions")) == 3  # the header, a blank line, the file
    assert listed("torch-2.2", "--format", "abspath") == [str(torch_22)]
    assert listed("numpy") == ["No cached files match 'numpy'."]

    assert main(["cache", "remove", "torch*"]) == 0
    assert capsys.readouterr().out.startswith("Files removed: 2 (")
    assert not torch_22.exists() and not unpacked.tree.exists()
    assert [line.split(" (")[0] for line in listed()[2:]] == [
        " - typing_extensions-4.0-py3-none-any.whl"
    ]

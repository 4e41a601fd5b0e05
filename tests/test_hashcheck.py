"""Hash-checking mode (--hash, --require-hashes) as pip has it: all or nothing, dependencies too."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from fixtures.index import RunningIndex
from fixtures.wheels import make_wheel
from install.support import snapshot
from torrip.cli.main import main
from torrip.errors import HashRequirementsError
from torrip.hashcheck import allowed_hashes, may_match
from torrip.index.links import Link
from torrip.requirements import parse_requirement_text

Torrip = Callable[..., tuple[int, str, str]]
MARKERS = {"python_version": "3.11", "sys_platform": "linux"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Path]:
    directory = tmp_path / "dists"
    return {
        "app": make_wheel(directory, "app", "1.0", requires_dist=["lib>=1"]),
        "lib1": make_wheel(directory, "lib", "1.0"),
        "lib2": make_wheel(directory, "lib", "2.0"),
    }


@pytest.fixture
def index(local_index, wheels: dict[str, Path]) -> RunningIndex:
    return local_index(list(wheels.values()))


@pytest.fixture
def torrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Torrip:
    monkeypatch.setenv("TORRIP_CONFIG_FILE", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("TORRIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def requirements(tmp_path: Path, text: str) -> str:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    return str(path)


def test_mode_is_off_without_hashes() -> None:
    parsed = parse_requirement_text("lib>=1\n", "r.txt")
    assert allowed_hashes(parsed, [], MARKERS, require_hashes=False) is None


def test_a_hash_anywhere_turns_it_on_and_every_line_must_be_pinned() -> None:
    parsed = parse_requirement_text(
        f"app==1.0 --hash=sha256:{'a' * 64}\nlib>=1\nwin==1; sys_platform == 'win32'\n", "r.txt"
    )
    with pytest.raises(HashRequirementsError) as caught:
        allowed_hashes(parsed, [Requirement("extra~=2.0")], MARKERS, require_hashes=False)
    assert caught.value.lines == ["lib>=1 (from r.txt:2)", "extra~=2.0 (from the command line)"]
    assert "pinned with ==" in str(caught.value) and "--require-hashes" in str(caught.value.hint)


def test_hashes_of_one_project_on_two_lines_must_both_hold() -> None:
    a, b, c = ("sha256:" + x * 64 for x in "abc")
    parsed = parse_requirement_text(
        f"lib==1.0 --hash={a} --hash={b}\nlib===1.0 --hash={b} --hash={c}\n"
        f"direct @ https://host/direct-1.0-py3-none-any.whl#sha256={'d' * 64}\n",
        "r.txt",
    )
    allowed = allowed_hashes(parsed, [], MARKERS, require_hashes=False)
    assert allowed == {"lib": frozenset({b}), "direct": frozenset({"sha256:" + "d" * 64})}


def test_a_file_is_a_candidate_unless_its_index_hash_proves_otherwise() -> None:
    allowed = frozenset({"sha256:" + "a" * 64, "sha512:" + "b" * 128})
    assert may_match(Link("x-1-py3-none-any.whl", "u", {"sha256": "A" * 64}), allowed)
    assert not may_match(Link("x-1-py3-none-any.whl", "u", {"sha256": "c" * 64}), allowed)
    assert may_match(Link("x-1-py3-none-any.whl", "u", {}), allowed)  # checked once fetched
    assert may_match(Link("x-1-py3-none-any.whl", "u", {"md5": "0" * 32}), allowed)


def test_hashed_and_pinned_requirements_install(
    torrip: Torrip, index: RunningIndex, wheels, tmp_path: Path, make_venv
) -> None:
    text = (
        f"app==1.0 --hash=sha256:{sha256(wheels['app'])}\n"
        f"lib==1.0 --hash=sha256:{'0' * 64} --hash=sha256:{sha256(wheels['lib1'])}\n"
    )
    venv = make_venv()
    code, out, err = torrip(
        "install", "-i", index.url, "--python", str(venv), "-r", requirements(tmp_path, text)
    )
    assert code == 0, err
    assert "Successfully installed app-1.0 lib-1.0" in out


def test_only_files_with_a_given_hash_are_candidates(
    torrip: Torrip, index: RunningIndex, wheels, tmp_path: Path, target_venv: Path
) -> None:
    # lib 2.0 is the newest, but only lib 1.0's file has the hash: with ===, pip's rule of
    # "pinned" holds, and the resolver may pick only a file that matches.
    text = f"lib===1.0 --hash=sha256:{sha256(wheels['lib1'])}\n"
    code, out, err = torrip(
        "install",
        "--dry-run",
        "-i",
        index.url,
        "--python",
        str(target_venv),
        "-r",
        requirements(tmp_path, text),
    )
    assert code == 0, err
    assert "Would install lib-1.0" in out
    wrong = f"lib==2.0 --hash=sha256:{sha256(wheels['lib1'])}\n"
    code, _, err = torrip(
        "install",
        "--dry-run",
        "-i",
        index.url,
        "--python",
        str(target_venv),
        "-r",
        requirements(tmp_path, wrong),
    )
    assert code == 1
    assert "no matching distribution found for lib==2.0" in err
    assert "no file of lib has one of the 1 hashes given" in err


def test_a_dependency_without_a_hash_is_refused_with_the_line_to_add(
    torrip: Torrip, index: RunningIndex, wheels, tmp_path: Path, target_venv: Path
) -> None:
    text = f"app==1.0 --hash=sha256:{sha256(wheels['app'])}\n"
    code, _, err = torrip(
        "install",
        "--dry-run",
        "-i",
        index.url,
        "--python",
        str(target_venv),
        "-r",
        requirements(tmp_path, text),
    )
    assert code == 1
    assert "hash-checking mode needs hashes for every distribution" in err
    assert f"lib==2.0 --hash=sha256:{sha256(wheels['lib2'])}  # a dependency" in err


@pytest.mark.parametrize("where", ["flag", "file"])
def test_require_hashes_without_any_hash(
    where: str, torrip: Torrip, index: RunningIndex, wheels, tmp_path: Path, target_venv: Path
) -> None:
    text = ("--require-hashes\n" if where == "file" else "") + "lib==1.0\n"
    flags = ["--require-hashes"] if where == "flag" else []
    code, _, err = torrip(
        "install",
        "--dry-run",
        *flags,
        "-i",
        index.url,
        "--python",
        str(target_venv),
        "-r",
        requirements(tmp_path, text),
    )
    assert code == 1
    assert f"lib==1.0 --hash=sha256:{sha256(wheels['lib1'])}" in err
    unpinned = torrip(
        "install",
        "--dry-run",
        "--require-hashes",
        "-i",
        index.url,
        "--python",
        str(target_venv),
        "lib",
    )
    assert unpinned[0] == 1 and "lib (from the command line)" in unpinned[2]


def test_a_fetched_file_without_an_allowed_hash_is_refused(
    torrip: Torrip, wheels, tmp_path: Path, make_venv
) -> None:
    """A --find-links folder gives no hashes: the file is fetched, then checked."""
    folder = wheels["lib1"].parent
    venv = make_venv()
    before = snapshot(venv)
    bad = f"lib==1.0 --hash=sha256:{'0' * 64}\n"
    code, _, err = torrip(
        "install",
        "--no-index",
        "-f",
        str(folder),
        "--python",
        str(venv),
        "-r",
        requirements(tmp_path, bad),
    )
    assert code == 1
    assert "hash of lib-1.0-py3-none-any.whl is not one of those allowed" in err
    assert f"got      sha256:{sha256(wheels['lib1'])}" in err
    assert snapshot(venv) == before
    sha512 = hashlib.sha512(wheels["lib1"].read_bytes()).hexdigest()
    good = f"lib==1.0 --hash=sha512:{sha512}\n"
    code, out, err = torrip(
        "install",
        "--no-index",
        "-f",
        str(folder),
        "--python",
        str(venv),
        "-r",
        requirements(tmp_path, good),
    )
    assert code == 0, err
    assert "Successfully installed lib-1.0" in out

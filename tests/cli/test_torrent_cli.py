"""``torrip torrent make|check|show``, in process and as ``python -m torrip``."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from torrip.cli.main import main
from torrip.transport.recipe import make_torrent, parse_torrent

SRC = Path(__file__).resolve().parents[2] / "src"
WHEEL = "demo-1.0-py3-none-any.whl"


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / WHEEL
    path.write_bytes(random.Random(7).randbytes(100_000))
    return path


def run_torrip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "torrip", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_writes_next_to_the_file_and_prints_the_magnet(
    wheel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "torrent",
            "make",
            str(wheel),
            "--web-seed",
            "http://127.0.0.1:8000/demo.whl",
            "--tracker",
            "http://127.0.0.1:6969/announce",
        ]
    )
    assert code == 0
    written = wheel.with_name(WHEEL + ".torrent").read_bytes()
    expected = make_torrent(
        wheel,
        web_seeds=["http://127.0.0.1:8000/demo.whl"],
        trackers=["http://127.0.0.1:6969/announce"],
    )
    assert written == expected.data
    assert capsys.readouterr().out == expected.magnet() + "\n"


def test_make_output_option_and_name(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t" / "x.torrent"
    out.parent.mkdir()
    assert main(["torrent", "make", str(wheel), "-o", str(out), "--name", "other.whl"]) == 0
    torrent = parse_torrent(out.read_bytes())
    assert torrent.name == "other.whl"
    assert "dn=other.whl" in capsys.readouterr().out
    assert not wheel.with_name(WHEEL + ".torrent").exists()


def test_make_refuses_an_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.whl"
    empty.write_bytes(b"")
    assert main(["torrent", "make", str(empty)]) == 1
    assert "0 bytes has no torrent" in capsys.readouterr().err
    assert not (tmp_path / "empty.whl.torrent").exists()


def test_make_refuses_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["torrent", "make", str(tmp_path / "missing.whl")]) == 1
    assert "is not a file" in capsys.readouterr().err


def test_check_accepts_the_right_file(wheel: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["torrent", "make", str(wheel)]) == 0
    capsys.readouterr()
    assert main(["torrent", "check", str(wheel) + ".torrent", str(wheel)]) == 0
    out = capsys.readouterr().out
    assert "valid for" in out
    assert "7 pieces checked" in out
    assert "recipe 1: yes" in out


def test_check_names_a_bad_piece(wheel: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torrent_path = wheel.with_name(WHEEL + ".torrent")
    torrent_path.write_bytes(make_torrent(wheel).data)
    data = bytearray(wheel.read_bytes())
    data[-1] ^= 0xFF
    wheel.write_bytes(bytes(data))
    assert main(["torrent", "check", str(torrent_path), str(wheel)]) == 1
    err = capsys.readouterr().err
    assert "not a valid torrent of" in err
    assert "piece index 6 of 7 pieces does not match the file" in err


def test_check_name_and_size(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torrent_path = tmp_path / "demo.torrent"
    torrent_path.write_bytes(make_torrent(wheel).data)
    copy = tmp_path / "sha256-named"
    copy.write_bytes(wheel.read_bytes())
    assert main(["torrent", "check", str(torrent_path), str(copy)]) == 1
    assert f"names the file '{WHEEL}', expected 'sha256-named'" in capsys.readouterr().err
    assert main(["torrent", "check", str(torrent_path), str(copy), "--name", WHEEL]) == 0
    capsys.readouterr()
    copy.write_bytes(wheel.read_bytes()[:-1])
    assert main(["torrent", "check", str(torrent_path), str(copy), "--name", WHEEL]) == 1
    assert "100000 bytes, expected 99999" in capsys.readouterr().err


def test_check_refuses_garbage(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"<html>404</html>")
    assert main(["torrent", "check", str(bad), str(wheel)]) == 1
    err = capsys.readouterr().err
    assert "bad.torrent: malformed bencoding at byte 0" in err


def test_check_reports_another_piece_length(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lt = pytest.importorskip("libtorrent")
    flags = lt.create_torrent.no_attributes
    creator = lt.create_torrent(lt.list_files(str(wheel), flags=flags), 64 * 1024, flags)
    lt.set_piece_hashes(creator, str(wheel.parent))
    torrent_path = tmp_path / "lt.torrent"
    torrent_path.write_bytes(lt.bencode(creator.generate()))
    assert main(["torrent", "check", str(torrent_path), str(wheel)]) == 0
    assert "recipe 1: no (piece length 64 KiB, recipe 1 uses 16 KiB)" in capsys.readouterr().out


def test_show(wheel: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torrent = make_torrent(wheel, web_seeds=["http://127.0.0.1:8000/a.whl"])
    path = wheel.with_name(WHEEL + ".torrent")
    path.write_bytes(torrent.data)
    assert main(["torrent", "show", str(path)]) == 0
    out = capsys.readouterr().out
    for line in [
        f"name:         {WHEEL}",
        "size:         100000 bytes",
        "piece length: 16 KiB (7 pieces)",
        f"infohash v1:  {torrent.btih}",
        f"infohash v2:  {torrent.infohash_v2}",
        "web seeds:    http://127.0.0.1:8000/a.whl",
        "trackers:     none",
        f"magnet:       {torrent.magnet()}",
    ]:
        assert line in out.splitlines()


def test_show_json(wheel: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torrent = make_torrent(wheel, trackers=["udp://127.0.0.1:6969"])
    path = wheel.with_name(WHEEL + ".torrent")
    path.write_bytes(torrent.data)
    assert main(["torrent", "show", str(path), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts == {
        "name": WHEEL,
        "size": 100_000,
        "piece_length": 16384,
        "pieces": 7,
        "recipe": 1,
        "infohash_v1": torrent.btih,
        "infohash_v2": torrent.infohash_v2,
        "btih": torrent.btih,
        "btmh": torrent.btmh,
        "web_seeds": [],
        "trackers": ["udp://127.0.0.1:6969"],
        "magnet": torrent.magnet(),
        "torrent_sha256": torrent.sha256,
    }


def test_show_refuses_a_multi_file_torrent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "multi.torrent"
    path.write_bytes(b"d4:infod5:filesleee")
    assert main(["torrent", "show", str(path)]) == 1
    assert "several files" in capsys.readouterr().err


def test_torrent_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["torrent"]) == 2
    assert "make" in capsys.readouterr().out


def test_python_dash_m(wheel: Path) -> None:
    made = run_torrip("torrent", "make", WHEEL, cwd=wheel.parent)
    assert made.returncode == 0, made.stderr
    torrent = make_torrent(wheel)
    assert made.stdout.strip() == torrent.magnet()
    checked = run_torrip("torrent", "check", WHEEL + ".torrent", WHEEL, cwd=wheel.parent)
    assert checked.returncode == 0, checked.stderr
    wheel.write_bytes(wheel.read_bytes()[:-1] + b"\0")
    failed = run_torrip("torrent", "check", WHEEL + ".torrent", WHEEL, cwd=wheel.parent)
    assert failed.returncode == 1
    assert "does not match the file" in failed.stderr
    shown = run_torrip("torrent", "show", "--json", WHEEL + ".torrent", cwd=wheel.parent)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["btmh"] == torrent.btmh

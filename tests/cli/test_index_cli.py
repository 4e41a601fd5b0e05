"""``torrip index build|serve`` from the command line."""

from __future__ import annotations

import gc
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fixtures.wheels import make_wheel
from torrip.cli.main import main


@pytest.fixture
def dists(tmp_path: Path) -> Path:
    folder = tmp_path / "dists"
    make_wheel(folder, "demo", "1.0")
    make_wheel(folder, "demo", "2.0")
    return folder


def test_build(dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "public"
    assert main(["index", "build", str(dists), str(out)]) == 0
    captured = capsys.readouterr()
    assert "Indexed 2 files of 1 project in" in captured.out
    assert "2 read, 2 torrents made" in captured.out
    assert captured.err == ""
    assert (out / "simple" / "demo" / "index.json").is_file()

    assert main(["index", "build", str(dists), str(out)]) == 0
    assert "0 read, 0 torrents made, 2 unchanged" in capsys.readouterr().out


def test_build_options(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    base_url = "http://h.example/x/"
    code = main(["index", "build", str(dists), str(out), "--base-url", base_url, "--no-torrents"])
    assert code == 0
    page = json.loads((out / "simple" / "demo" / "index.json").read_text())
    assert page["files"][0]["url"] == "http://h.example/x/files/demo-1.0-py3-none-any.whl"
    assert "_torrent" not in page["files"][0]
    assert not list(out.rglob("*.torrent"))


def test_build_reports_bad_files_and_exits_1(
    dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (dists / "broken-1.0-py3-none-any.whl").write_bytes(b"nope")
    (dists / "README.md").write_text("hi")
    out = tmp_path / "public"
    assert main(["index", "build", str(dists), str(out)]) == 1
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())  # the console may wrap long lines
    assert f"warning: skipped {dists / 'broken-1.0-py3-none-any.whl'}: not a readable zip" in err
    assert f"warning: skipped {dists / 'README.md'}: not a distribution file" in err
    assert "error: 2 file(s) could not be indexed; the index was written without them" in err
    assert "Indexed 2 files" in captured.out
    assert (out / "simple" / "demo" / "index.json").is_file()


def test_build_errors(tmp_path: Path, dists: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "build", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    code = main(["index", "build", str(dists), str(tmp_path / "out"), "--base-url", "nope"])
    assert code == 2
    assert "--base-url must be an absolute http(s) URL" in capsys.readouterr().err


def test_index_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index"]) == 2
    assert "build" in capsys.readouterr().out


def test_serve_needs_a_built_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "serve", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "holds no built index" in err
    assert "torrip index build" in err


def test_the_server_runs_with_the_cyclic_collector_on(
    dists: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short commands run without it; a server running for days would leak every cycle."""
    from torrip.indexserver import IndexServer

    out = tmp_path / "public"
    assert main(["index", "build", str(dists), str(out), "-q"]) == 0
    seen: list[bool] = []
    monkeypatch.setattr(IndexServer, "serve_forever", lambda self: seen.append(gc.isenabled()))
    gc.disable()  # as `torrip` (the entry point) leaves it
    try:
        assert main(["index", "serve", str(out), "--port", "0", "-q"]) == 0
    finally:
        gc.enable()
    assert seen == [True]


def test_serve_reports_a_busy_port(
    dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "public"
    assert main(["index", "build", str(dists), str(out), "-q"]) == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["index", "serve", str(out), "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serve(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    assert main(["index", "build", str(dists), str(out), "-q"]) == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "torrip", "index", "serve", str(out), "--port", "0", "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/simple/", line)
        assert match, line
        url = match.group(0)
        response = httpx.get(
            url + "demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        assert response.json()["versions"] == ["1.0", "2.0"]
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "GET /simple/demo/ 200" in stderr  # -v logs each request


def test_cli_formats_match_the_servers() -> None:
    from torrip.cli import index as cli_index
    from torrip.indexserver import FORMATS

    assert cli_index.FORMATS == FORMATS

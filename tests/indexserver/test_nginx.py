"""The nginx configuration in docs/torrent-index.md serves a built index that pip installs from.

Skipped where nginx is not installed.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.index import clean_installer_env
from fixtures.wheels import make_wheel
from torrip.indexserver import build_index

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
DOC = Path(__file__).resolve().parents[2] / "docs" / "torrent-index.md"
JSON = "application/vnd.pypi.simple.v1+json"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _documented_server_block(root: Path, port: int) -> str:
    match = re.search(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert match, "docs/torrent-index.md has no nginx block"
    block = match.group(1)
    assert "listen 80;" in block and "root /srv/pkgs/public;" in block
    return block.replace("listen 80;", f"listen 127.0.0.1:{port};").replace(
        "root /srv/pkgs/public;", f"root {root};"
    )


@pytest.fixture
def nginx_index(tmp_path: Path) -> Iterator[str]:
    dists = tmp_path / "dists"
    make_wheel(dists, "Demo_Pkg", "1.0")
    make_wheel(dists, "Demo_Pkg", "2.0")
    root = tmp_path / "public"
    assert build_index(dists, root).ok
    port = _free_port()
    state = tmp_path / "nginx"
    state.mkdir()
    temp_paths = "".join(
        f"    {kind}_temp_path {state / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = state / "nginx.conf"
    config.write_text(
        "daemon off;\nmaster_process off;\n"
        f"pid {state / 'nginx.pid'};\nerror_log {state / 'error.log'};\n"
        "events {}\nhttp {\n    access_log off;\n"
        f"{temp_paths}{_documented_server_block(root, port)}}}\n"
    )
    assert NGINX is not None
    process = subprocess.Popen(
        [NGINX, "-c", str(config), "-p", str(state), "-e", str(state / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (state / "error.log").read_text() if (state / "error.log").exists() else ""
                    )
                    pytest.fail(f"nginx did not start: {log}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/simple/"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_nginx_negotiates_like_the_server(nginx_index: str) -> None:
    with httpx.Client() as client:
        page = client.get(nginx_index + "demo-pkg/", headers={"Accept": JSON})
        assert page.headers["content-type"] == JSON
        assert page.headers["vary"] == "Accept"
        assert page.json()["versions"] == ["1.0", "2.0"]
        html = client.get(nginx_index + "demo-pkg/", headers={"Accept": "text/html"})
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert "data-torrent=" in html.text
        root = client.get(nginx_index, headers={"Accept": JSON})
        assert root.json()["projects"] == [{"name": "Demo_Pkg"}]
        (entry, _) = page.json()["files"]
        url = nginx_index + "demo-pkg/" + entry["url"]
        assert client.get(url + ".torrent").headers["content-type"] == "application/x-bittorrent"
        assert client.get(url, headers={"Range": "bytes=0-1"}).content == b"PK"
        manifest = client.get(nginx_index.replace("/simple/", "/.torrip-index.json"))
        assert manifest.status_code == 404


def test_pip_installs_through_nginx(nginx_index: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
         "--index-url", nginx_index, "demo-pkg"],
        env=clean_installer_env(tmp_path), check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert (target / "demo_pkg-2.0.dist-info").is_dir()

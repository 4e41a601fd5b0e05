"""A private index behind HTTP basic auth, as Artifactory, Nexus or devpi serve one: its
pages link to the files by absolute URLs without credentials, and every request needs them.

Credentials come from the index URL or from the netrc file, as pip and uv take them, and
are never printed, nor written into lockfiles, reports or the environment.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fixtures.wheels import make_wheel
from torrip.credentials import redact, without_credentials
from torrip.indexserver.build import build_index

USER, SECRET = "alice", "s3cret-t0ken"


class _PrivateIndex:
    def __init__(self, root: Path) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
        self.seen: list[tuple[str, bool]] = []  # (path, authorized)
        seen = self.seen

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                authorized = self.headers.get("Authorization") == expected
                seen.append((self.path, authorized))
                if not authorized:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="private"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def private_index(tmp_path: Path) -> Iterator[_PrivateIndex]:
    dists = tmp_path / "dists"
    make_wheel(dists, "app", "1.0", requires_dist=["lib>=1"])
    make_wheel(dists, "lib", "1.0")
    root = tmp_path / "public"
    index = _PrivateIndex(root)
    result = build_index(dists, root, base_url=index.base, torrents=False)  # absolute links
    assert not result.rejected
    yield index
    index.server.shutdown()


def _torrip(*args: str, home: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORRIP_", "NETRC"))}
    env.update(
        HOME=str(home),
        TORRIP_CACHE_DIR=str(cache),
        TORRIP_CONFIG_FILE=str(home / "none.toml"),
        TORRIP_WARM_START="0",
    )
    return subprocess.run(
        [sys.executable, "-m", "torrip", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def test_credentials_in_the_index_url(private_index: _PrivateIndex, tmp_path: Path) -> None:
    url = private_index.base.replace("http://", f"http://{USER}:{SECRET}@") + "simple/"
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    venv = _venv(tmp_path / "venv")
    report = tmp_path / "report.json"
    common = ("--index-url", url, "--python", str(venv), "-v")
    installed = _torrip("install", *common, "--report", str(report), "app", home=home, cache=cache)
    assert installed.returncode == 0, installed.stderr
    assert "Successfully installed app-1.0 lib-1.0" in installed.stdout
    # Pages, metadata and both wheels, each asked for once with the index URL's credentials.
    assert any(path.endswith(".whl") for path, _ in private_index.seen)
    assert all(authorized for _, authorized in private_index.seen), private_index.seen
    lock = tmp_path / "pylock.toml"
    locked = _torrip("lock", *common, "-o", str(lock), "app", home=home, cache=cache)
    assert locked.returncode == 0, locked.stderr
    for text in (installed.stdout, installed.stderr, locked.stdout, locked.stderr):
        assert SECRET not in text
    assert f"http://{USER}:****@127.0.0.1" in installed.stderr  # -v names the pages, redacted
    for written in (lock.read_text(), report.read_text()):
        assert SECRET not in written and f"{USER}@" not in written
    assert json.loads(report.read_text())["install"][0]["download_info"]["url"].startswith(
        private_index.base
    )


def test_credentials_from_netrc(private_index: _PrivateIndex, tmp_path: Path) -> None:
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {USER}\npassword {SECRET}\n")
    netrc.chmod(0o600)
    venv = _venv(tmp_path / "venv")
    url = private_index.base + "simple/"
    installed = _torrip(
        "install", "--index-url", url, "--python", str(venv), "app", home=home, cache=cache
    )
    assert installed.returncode == 0, installed.stderr
    assert all(authorized for _, authorized in private_index.seen)

    netrc.write_text(f"machine 127.0.0.1\nlogin {USER}\npassword wrong\n")
    refused = _torrip(
        "install",
        "--index-url",
        url,
        "--python",
        str(_venv(tmp_path / "other")),
        "app",
        home=home,
        cache=tmp_path / "cold",
    )
    assert refused.returncode != 0
    assert "401" in refused.stderr and "credentials" in refused.stderr


def test_secrets_are_redacted_and_stripped() -> None:
    text = "could not fetch https://bob:hunter2@pkgs.example/simple/x/ and https://tok@h/simple/"
    assert redact(text) == (
        "could not fetch https://bob:****@pkgs.example/simple/x/ and https://****@h/simple/"
    )
    assert redact("see https://pypi.org/simple/ or user@example.com") == (
        "see https://pypi.org/simple/ or user@example.com"
    )
    assert without_credentials("https://bob:hunter2@pkgs.example:8443/f.whl#sha256=1") == (
        "https://pkgs.example:8443/f.whl#sha256=1"
    )
    assert without_credentials("https://pypi.org/simple/") == "https://pypi.org/simple/"


def test_credentials_are_kept_by_origin() -> None:
    from torrip.credentials import credentials_by_origin

    found = credentials_by_origin(
        [
            "https://bob:p%40ss@pkgs.example:443/simple/",  # the default port: no port
            "http://tok@10.0.0.1:8080/simple/",
            "https://pypi.org/simple/",
            "https://eve:x@bad.example:port/simple/",  # unreadable: left to the request
        ]
    )
    assert found == {
        ("https", "pkgs.example", None): ("bob", "p@ss"),
        ("http", "10.0.0.1", 8080): ("tok", ""),
    }


def test_credentials_from_the_keyring_command(private_index: _PrivateIndex, tmp_path: Path) -> None:
    """--keyring-provider subprocess, as pip's: after a 401 the keyring command on PATH is
    asked once for the user's password, and every request then carries it."""
    home, cache, bin_dir = tmp_path / "home", tmp_path / "cache", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    asked = tmp_path / "asked.txt"
    keyring = bin_dir / "keyring"
    keyring.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {asked}\n'
        f'[ "$1" = get ] && [ "$3" = {USER} ] && echo {SECRET} && exit 0\n'
        "exit 1\n"
    )
    keyring.chmod(0o755)
    url = private_index.base.replace("http://", f"http://{USER}@") + "simple/"
    venv = _venv(tmp_path / "venv")
    env_path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    args = ("install", "--index-url", url, "--python", str(venv), "app")
    os.environ["PATH"], saved = env_path, os.environ["PATH"]
    try:
        refused = _torrip(*args, home=home, cache=cache)
        installed = _torrip(*args, "--keyring-provider", "subprocess", home=home, cache=cache)
    finally:
        os.environ["PATH"] = saved
    assert refused.returncode != 0 and "401" in refused.stderr
    assert installed.returncode == 0, installed.stderr
    assert asked.read_text().splitlines() == [f"get {private_index.base}simple/app/ {USER}"]
    assert SECRET not in installed.stdout + installed.stderr

"""The test fixtures themselves: real wheels and sdists, a real served index."""

from __future__ import annotations

import hashlib
import json
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest
from installer.sources import WheelFile
from packaging.metadata import Metadata

from fixtures.index import LocalIndex
from fixtures.wheels import make_sdist, make_wheel

JSON = "application/vnd.pypi.simple.v1+json"


def test_make_wheel_is_a_valid_wheel(tmp_path: Path) -> None:
    path = make_wheel(
        tmp_path,
        "My.Pkg",
        "1.0",
        requires_dist=["idna>=3", 'rich; extra == "cli"'],
        requires_python=">=3.8",
        provides_extra=["cli"],
        entry_points="[console_scripts]\nmy-pkg = my_pkg:main\n",
    )
    assert path.name == "my_pkg-1.0-py3-none-any.whl"
    with WheelFile.open(path) as source:
        source.validate_record()
        assert source.distribution == "my_pkg"
        assert source.version == "1.0"
        metadata = Metadata.from_email(source.read_dist_info("METADATA"))
        assert source.read_dist_info("entry_points.txt").startswith("[console_scripts]")
        wheel_text = source.read_dist_info("WHEEL")
    assert metadata.name == "My.Pkg"
    assert [str(r) for r in metadata.requires_dist or []] == ["idna>=3", 'rich; extra == "cli"']
    assert str(metadata.requires_python) == ">=3.8"
    assert metadata.provides_extra == ["cli"]
    assert "Root-Is-Purelib: true" in wheel_text
    with zipfile.ZipFile(path) as archive:
        assert archive.read("my_pkg/__init__.py") == b'__version__ = "1.0"\n'


def test_make_wheel_options(tmp_path: Path) -> None:
    path = make_wheel(
        tmp_path,
        "native",
        "2.0.post1",
        tag="cp311-cp311-manylinux_2_17_x86_64",
        build="1",
        files={"native/__init__.py": b"", "native/data.bin": b"\x00" * 10},
    )
    assert path.name == "native-2.0.post1-1-cp311-cp311-manylinux_2_17_x86_64.whl"
    with WheelFile.open(path) as source:
        source.validate_record()
        wheel_text = source.read_dist_info("WHEEL")
    assert "Root-Is-Purelib: false" in wheel_text
    assert "Build: 1" in wheel_text


def test_make_wheel_is_reproducible(tmp_path: Path) -> None:
    first = make_wheel(tmp_path / "a", "demo", "1.0", requires_dist=["x"])
    second = make_wheel(tmp_path / "b", "demo", "1.0", requires_dist=["x"])
    assert first.read_bytes() == second.read_bytes()


def test_make_sdist(tmp_path: Path) -> None:
    path = make_sdist(tmp_path, "My-Pkg", "1.0")
    assert path.name == "my_pkg-1.0.tar.gz"
    with tarfile.open(path) as archive:
        member = archive.extractfile("my_pkg-1.0/PKG-INFO")
        assert member is not None
        metadata = Metadata.from_email(member.read())
    assert metadata.name == "My-Pkg"
    assert str(metadata.version) == "1.0"
    assert make_sdist(tmp_path / "again", "My-Pkg", "1.0").read_bytes() == path.read_bytes()


def test_local_index_serves_pages_files_and_metadata(
    local_index: LocalIndex, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", requires_python=">=3.8")
    index = local_index([wheel])
    assert index.url.startswith("http://127.0.0.1:") and index.url.endswith("/simple/")
    with httpx.Client() as client:
        page = client.get(index.url + "demo/", headers={"Accept": JSON})
        assert page.headers["content-type"] == JSON
        (entry,) = page.json()["files"]
        assert entry["hashes"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert entry["requires-python"] == ">=3.8"
        assert entry["_torrent"]["btmh"].startswith("1220")
        body = client.get(entry["url"]).content
        assert body == wheel.read_bytes()
        metadata = client.get(entry["url"] + ".metadata").content
        assert hashlib.sha256(metadata).hexdigest() == entry["core-metadata"]["sha256"]
        html = client.get(index.url + "demo/", headers={"Accept": "text/html"})
        assert "data-core-metadata" in html.text
    assert index.count("/files/demo-1.0-py3-none-any.whl") == 1
    assert index.count(".metadata") == 1
    record = next(r for r in index.requests if r.path.endswith(".whl"))
    assert (record.method, record.status, record.bytes_sent, record.range) == (
        "GET",
        200,
        wheel.stat().st_size,
        None,
    )


@pytest.mark.parametrize(
    ("variant", "offered", "file_status"),
    [
        ("missing", None, 404),
        ("no-file", "hash", 404),
        ("wrong-hash", "wrong", 200),
        ("unhashed", True, 200),
    ],
)
def test_local_index_metadata_variants(
    local_index: LocalIndex,
    tmp_path: Path,
    variant: str,
    offered: object,
    file_status: int,
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    index = local_index([wheel], metadata=variant)
    with httpx.Client() as client:
        (entry,) = client.get(index.url + "demo/", headers={"Accept": JSON}).json()["files"]
        html = client.get(index.url + "demo/", headers={"Accept": "text/html"}).text
        response = client.get(index.file_url(wheel.name) + ".metadata")
    assert response.status_code == file_status
    if offered is None:
        assert "core-metadata" not in entry and "dist-info-metadata" not in entry
        assert "data-core-metadata" not in html
    elif offered is True:
        assert entry["core-metadata"] is True and entry["dist-info-metadata"] is True
        assert 'data-core-metadata="true"' in html
    else:
        claimed = entry["core-metadata"]["sha256"]
        assert f'data-core-metadata="sha256={claimed}"' in html
        with zipfile.ZipFile(wheel) as archive:
            real = hashlib.sha256(archive.read("demo-1.0.dist-info/METADATA")).hexdigest()
        assert (claimed == real) is (offered == "hash")


def test_local_index_formats_yanked_and_no_torrents(
    local_index: LocalIndex, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    old = local_index([wheel], formats=("html",), yanked={wheel.name: "broken"}, torrents=False)
    with httpx.Client() as client:
        page = client.get(old.url + "demo/", headers={"Accept": JSON})
        assert page.headers["content-type"].startswith("text/html")
        assert 'data-yanked="broken"' in page.text
        assert "data-torrent" not in page.text
        assert client.get(old.url + "demo/index.json").status_code == 404
        assert client.get(old.file_url(wheel.name) + ".torrent").status_code == 404

    new = local_index([wheel], formats=("json",))
    with httpx.Client() as client:
        page = client.get(new.url + "demo/", headers={"Accept": "text/html"})
        assert page.status_code == 406
        files = client.get(new.url + "demo/").json()["files"]
        assert files[0]["yanked"] is False
    assert new.url != old.url


def test_local_index_stops_at_teardown(local_index: LocalIndex, tmp_path: Path) -> None:
    index = local_index([make_wheel(tmp_path, "demo", "1.0")])
    index.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(index.url, timeout=2)


def test_local_index_rejects_bad_input(local_index: LocalIndex, tmp_path: Path) -> None:
    bad = tmp_path / "bad-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable zip"):
        local_index([bad])


def test_local_index_root_holds_the_built_tree(local_index: LocalIndex, tmp_path: Path) -> None:
    index = local_index([make_wheel(tmp_path, "demo", "1.0"), make_sdist(tmp_path, "demo", "1.0")])
    project = json.loads((index.root / "simple" / "demo" / "index.json").read_text())
    assert [f["filename"] for f in project["files"]] == [
        "demo-1.0-py3-none-any.whl",
        "demo-1.0.tar.gz",
    ]
    assert (index.root / "files" / "demo-1.0.tar.gz.torrent").is_file()
    assert not (index.root / "files" / "demo-1.0.tar.gz.metadata").exists()


def test_local_index_relative_urls(local_index: LocalIndex, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    index = local_index([wheel], absolute_urls=False)
    with httpx.Client() as client:
        page = client.get(index.url + "demo/", headers={"Accept": JSON})
        (entry,) = page.json()["files"]
        assert entry["url"] == f"../../files/{wheel.name}"
        assert client.get(str(page.url.join(entry["url"]))).content == wheel.read_bytes()
    assert index.count(wheel.name) == 1
    assert index.count("/simple/demo/", method=None) == 1

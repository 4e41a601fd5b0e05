"""Building a static index: layout, page contents, bad input, incremental rebuilds."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from fixtures.wheels import make_sdist, make_wheel
from torrip.errors import ConfigError, IndexBuildError
from torrip.indexserver import MANIFEST_NAME, BuildResult, build_index
from torrip.indexserver.pages import parse_data_torrent
from torrip.transport.recipe import parse_torrent, verify_file

WHEEL = "demo-1.0-py3-none-any.whl"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


def html_links(path: Path) -> list[dict[str, str | None]]:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.links


def project_json(out: Path, project: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "simple" / project / "index.json").read_text())
    return document


def snapshot(out: Path) -> dict[str, int]:
    """Every output file and its modification time."""
    return {
        str(path.relative_to(out)): path.stat().st_mtime_ns
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def dists(tmp_path: Path) -> Path:
    folder = tmp_path / "dists"
    make_wheel(folder, "demo", "1.0", requires_python=">=3.8,<4", requires_dist=["idna"])
    make_wheel(folder, "demo", "0.9")
    make_sdist(folder, "demo", "1.0", requires_python=">=3.8,<4")
    make_wheel(folder, "Other.Project", "2.0rc1")
    return folder


def test_layout(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    result = build_index(dists, out)
    assert result.ok
    assert result.projects == ("demo", "other-project")
    assert result.files_read == 4 and result.torrents_made == 4
    names = [path.name for path in dists.iterdir()]
    assert set(snapshot(out)) == {
        MANIFEST_NAME,
        "simple/index.html",
        "simple/index.json",
        "simple/demo/index.html",
        "simple/demo/index.json",
        "simple/other-project/index.html",
        "simple/other-project/index.json",
        *(f"files/{name}" for name in names),
        *(f"files/{name}.torrent" for name in names),
        *(f"files/{name}.metadata" for name in names if name.endswith(".whl")),
        *(f"torrents/{file.sha256[:2]}/{file.sha256}.torrent" for file in result.files),
    }
    for name in names:
        assert (out / "files" / name).read_bytes() == (dists / name).read_bytes()


def test_root_pages(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    root = json.loads((out / "simple" / "index.json").read_text())
    assert root == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": "demo"}, {"name": "Other.Project"}],
    }
    links = html_links(out / "simple" / "index.html")
    assert [link["href"] for link in links] == ["demo/", "other-project/"]


def test_project_json(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    page = project_json(out, "demo")
    assert page["meta"] == {"api-version": "1.1"}
    assert page["name"] == "demo"
    assert page["versions"] == ["0.9", "1.0"]
    names = [entry["filename"] for entry in page["files"]]
    assert names == ["demo-0.9-py3-none-any.whl", WHEEL, "demo-1.0.tar.gz"]
    wheel, sdist = page["files"][1], page["files"][2]
    data = (dists / WHEEL).read_bytes()
    with zipfile.ZipFile(dists / WHEEL) as archive:
        metadata = archive.read("demo-1.0.dist-info/METADATA")
    assert wheel["url"] == f"../../files/{WHEEL}"
    assert wheel["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert wheel["size"] == len(data)
    assert wheel["requires-python"] == ">=3.8,<4"
    assert wheel["yanked"] is False
    assert "upload-time" not in wheel  # a file's mtime is not its upload time
    assert wheel["core-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
    assert wheel["dist-info-metadata"] == wheel["core-metadata"]
    assert (out / "files" / f"{WHEEL}.metadata").read_bytes() == metadata
    assert "core-metadata" not in sdist and "dist-info-metadata" not in sdist
    assert sdist["requires-python"] == ">=3.8,<4"


def test_torrents(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    for entry in project_json(out, "demo")["files"]:
        data = (out / "files" / f"{entry['filename']}.torrent").read_bytes()
        sha256 = entry["hashes"]["sha256"]
        assert (out / "torrents" / sha256[:2] / f"{sha256}.torrent").read_bytes() == data
        torrent = parse_torrent(data)
        assert entry["_torrent"] == {
            "btih": torrent.btih,
            "btmh": torrent.btmh,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        assert torrent.btmh.startswith("1220") and len(torrent.btmh) == 68
        assert torrent.web_seeds == ()  # no --base-url, no absolute URL to seed from
        verify_file(torrent, out / "files" / entry["filename"])


def test_base_url(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out, base_url="https://pkgs.example.com/team")
    (entry, *_) = project_json(out, "demo")["files"]
    url = "https://pkgs.example.com/team/files/demo-0.9-py3-none-any.whl"
    assert entry["url"] == url
    torrent = parse_torrent((out / "files" / f"{entry['filename']}.torrent").read_bytes())
    assert torrent.web_seeds == (url,)
    (link, *_) = html_links(out / "simple" / "demo" / "index.html")
    assert link["href"] == f"{url}#sha256={entry['hashes']['sha256']}"


@pytest.mark.parametrize("base_url", ["pkgs.example.com", "ftp://x/", "/relative/", "http://"])
def test_bad_base_url(dists: Path, tmp_path: Path, base_url: str) -> None:
    with pytest.raises(ConfigError, match="base-url"):
        build_index(dists, tmp_path / "public", base_url=base_url)


def test_project_html_matches_json(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(
        dists,
        out,
        yanked={WHEEL: 'broken "quotes" & <tags>', "demo-0.9-py3-none-any.whl": ""},
        upload_times={WHEEL: datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)},
    )
    entries = project_json(out, "demo")["files"]
    links = html_links(out / "simple" / "demo" / "index.html")
    assert len(links) == len(entries)
    for entry, link in zip(entries, links, strict=True):
        assert link["href"] == f"{entry['url']}#sha256={entry['hashes']['sha256']}"
        assert link.get("data-requires-python") == entry.get("requires-python")
        if "core-metadata" in entry:
            expected = f"sha256={entry['core-metadata']['sha256']}"
            assert link["data-core-metadata"] == link["data-dist-info-metadata"] == expected
        else:
            assert "data-core-metadata" not in link
        torrent = parse_data_torrent(link["data-torrent"] or "")
        assert torrent == entry["_torrent"]
    old, wheel, sdist = entries
    assert old["yanked"] is True and links[0]["data-yanked"] == ""
    assert wheel["yanked"] == 'broken "quotes" & <tags>'
    assert links[1]["data-yanked"] == 'broken "quotes" & <tags>'
    assert sdist["yanked"] is False and "data-yanked" not in links[2]
    assert wheel["upload-time"] == "2024-05-06T07:08:09.000000Z"
    raw = (out / "simple" / "demo" / "index.html").read_text()
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in raw


def test_no_torrents(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    result = build_index(dists, out, torrents=False)
    assert result.torrents_made == 0 and result.files_read == 0
    assert not list(out.rglob("*.torrent"))
    assert not (out / "torrents").exists() or not list((out / "torrents").iterdir())
    assert all("_torrent" not in entry for entry in project_json(out, "demo")["files"])
    assert "data-torrent" not in (out / "simple" / "demo" / "index.html").read_text()
    again = build_index(dists, out)
    assert again.torrents_made == 4 and again.files_read == 0


def test_rebuild_does_no_new_work(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    before = snapshot(out)
    result = build_index(dists, out)
    assert (result.files_read, result.torrents_made) == (0, 0)
    assert all(file.reused for file in result.files)
    assert snapshot(out) == before


def test_rebuild_after_adding_reads_only_the_new_file(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    before = snapshot(out)
    make_wheel(dists, "demo", "1.1")
    result = build_index(dists, out)
    assert (result.files_read, result.torrents_made) == (1, 1)
    after = snapshot(out)
    changed = {name for name in before if after[name] != before[name]}
    # Only the pages that list the new file, and the manifest.
    assert changed == {MANIFEST_NAME, "simple/demo/index.html", "simple/demo/index.json"}
    assert project_json(out, "demo")["versions"] == ["0.9", "1.0", "1.1"]


def test_changed_file_is_read_again(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    make_wheel(dists, "demo", "1.0", requires_python=">=3.10")  # same name, new bytes
    stat = (dists / WHEEL).stat()
    os.utime(dists / WHEEL, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    result = build_index(dists, out)
    assert (result.files_read, result.torrents_made) == (1, 1)
    wheel = next(e for e in project_json(out, "demo")["files"] if e["filename"] == WHEEL)
    assert wheel["requires-python"] == ">=3.10"
    assert wheel["hashes"]["sha256"] == hashlib.sha256((dists / WHEEL).read_bytes()).hexdigest()


def test_damaged_output_is_repaired(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    (out / "files" / f"{WHEEL}.torrent").write_bytes(b"garbage")
    (out / "files" / f"{WHEEL}.metadata").unlink()
    result = build_index(dists, out)
    assert (result.files_read, result.torrents_made) == (1, 1)
    assert parse_torrent((out / "files" / f"{WHEEL}.torrent").read_bytes()).name == WHEEL
    assert (out / "files" / f"{WHEEL}.metadata").is_file()


def test_unreadable_manifest_means_a_full_rebuild(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    build_index(dists, out)
    (out / MANIFEST_NAME).write_text("{not json")
    result = build_index(dists, out)
    assert result.files_read == 4
    assert any(MANIFEST_NAME in warning for warning in result.warnings)


def test_removed_files_leave_the_index(dists: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    first = build_index(dists, out)
    other = next(file for file in first.files if file.project == "other-project")
    (dists / other.filename).unlink()
    (dists / "demo-0.9-py3-none-any.whl").unlink()
    result = build_index(dists, out)
    assert set(result.removed) == {other.filename, "demo-0.9-py3-none-any.whl"}
    assert result.projects == ("demo",)
    assert not (out / "simple" / "other-project").exists()
    assert not (out / "files" / other.filename).exists()
    assert not list((out / "files").glob("demo-0.9*"))
    assert not (out / "torrents" / other.sha256[:2] / f"{other.sha256}.torrent").exists()
    root = json.loads((out / "simple" / "index.json").read_text())
    assert root["projects"] == [{"name": "demo"}]
    assert project_json(out, "demo")["versions"] == ["1.0"]


def _write_bad_inputs(folder: Path) -> dict[str, str]:
    """Bad files, each with the words its rejection must contain."""
    (folder / "garbage-1.0-py3-none-any.whl").write_bytes(b"this is not a zip file")
    (folder / "empty-1.0.tar.gz").write_bytes(b"")
    good = make_wheel(folder, "crc", "1.0", files={"crc/__init__.py": b"x" * 5000})
    data = bytearray(good.read_bytes())
    offset = data.index(b"crc/__init__.py") + 100  # inside the member's compressed data
    data[offset] ^= 0xFF
    good.write_bytes(bytes(data))
    truncated = make_wheel(folder, "truncated", "1.0")
    truncated.write_bytes(truncated.read_bytes()[:-30])
    make_wheel(folder / "x", "liar", "1.0").rename(folder / "honest-1.0-py3-none-any.whl")
    with zipfile.ZipFile(folder / "nometa-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr("nometa/__init__.py", "")
    (folder / "notes.txt").write_text("hello")
    (folder / "not_a-valid-wheel-name.whl").write_bytes(b"")
    make_wheel(folder, "demo", "1.0")
    # The same wheel to an installer, spelled differently: one is refused.
    (folder / "Demo-1.0-py3-none-any.whl").write_bytes((folder / WHEEL).read_bytes())
    return {
        "garbage-1.0-py3-none-any.whl": "not a readable zip",
        "empty-1.0.tar.gz": "not a readable archive",
        "crc-1.0-py3-none-any.whl": "zip",
        "truncated-1.0-py3-none-any.whl": "not a readable zip",
        "honest-1.0-py3-none-any.whl": "expected one honest-1.0.dist-info/METADATA",
        "nometa-1.0-py3-none-any.whl": "found: none",
        "notes.txt": "not a distribution file",
        "not_a-valid-wheel-name.whl": "invalid wheel file name",
        WHEEL: "same project, version and tags as Demo-1.0-py3-none-any.whl",
    }


def test_bad_input_is_reported_and_the_rest_indexed(tmp_path: Path) -> None:
    dists = tmp_path / "dists"
    dists.mkdir()
    expected = _write_bad_inputs(dists)
    make_wheel(dists, "fine", "1.0")
    (dists / ".hidden.whl").write_bytes(b"")  # dotfiles are not looked at
    (dists / "subfolder").mkdir()
    out = tmp_path / "public"
    result: BuildResult = build_index(dists, out)
    assert not result.ok
    reasons = {Path(error.path).name: error.message for error in result.rejected}
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name], reasons[name]
        assert str(dists / name) in reasons[name]
    assert sorted(file.filename for file in result.files) == [
        "Demo-1.0-py3-none-any.whl",
        "fine-1.0-py3-none-any.whl",
    ]
    assert result.projects == ("demo", "fine")
    assert (out / "simple" / "fine" / "index.json").is_file()
    assert not any(path.name in expected for path in (out / "files").iterdir())


def test_metadata_must_match_the_file_name(tmp_path: Path) -> None:
    dists = tmp_path / "dists"
    dists.mkdir()
    # A wheel of demo 2.0 renamed to 1.0: its .dist-info says 2.0.
    make_wheel(tmp_path / "x", "demo", "2.0").rename(dists / WHEEL)
    result = build_index(dists, tmp_path / "public")
    (error,) = result.rejected
    assert "expected one demo-1.0.dist-info/METADATA" in error.message
    assert "demo-2.0.dist-info/METADATA" in error.message


def test_missing_input_folder(tmp_path: Path) -> None:
    with pytest.raises(IndexBuildError, match="not a folder"):
        build_index(tmp_path / "nope", tmp_path / "public")


def test_build_in_place_keeps_the_input_files(tmp_path: Path) -> None:
    out = tmp_path / "public"
    files = out / "files"
    make_wheel(files, "demo", "1.0")
    make_wheel(files, "demo", "2.0")
    result = build_index(files, out)
    assert len(result.files) == 2
    (files / "demo-2.0-py3-none-any.whl").unlink()
    result = build_index(files, out)
    assert [file.filename for file in result.files] == [WHEEL]
    assert (files / WHEEL).is_file()
    assert project_json(out, "demo")["versions"] == ["1.0"]

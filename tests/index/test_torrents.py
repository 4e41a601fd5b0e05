"""Torrents learned from torrent indexes, for files whose index announces none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fixtures.wheels import make_wheel
from torrip.cli.main import main
from torrip.transport.recipe import parse_torrent


def _plan(index_url: str, torrent_index: str, venv: Path, report: Path, tmp_path: Path) -> dict:
    code = main(
        [
            "install",
            "--dry-run",
            "-q",
            "--isolated",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--index-url",
            index_url,
            "--torrent-index",
            torrent_index,
            "--python",
            str(venv),
            "--report",
            str(report),
            "app",
        ]
    )
    assert code == 0
    return json.loads(report.read_text())


def test_torrent_from_a_torrent_index(tmp_path: Path, local_index, target_venv: Path) -> None:
    dists = [
        make_wheel(tmp_path / "d", "app", "1.0", requires_dist=["lib"]),
        make_wheel(tmp_path / "d", "lib", "2.0"),
    ]
    plain = local_index(dists, torrents=False)  # an index that knows nothing of torrents
    published = local_index(dists)  # someone published torrents for the same files
    report = _plan(
        plain.url, published.base_url + "torrents/", target_venv, tmp_path / "r.json", tmp_path
    )
    for item in report["install"]:
        torrent = item["torrip"]["torrent"]
        sha256 = item["download_info"]["archive_info"]["hashes"]["sha256"]
        expected = parse_torrent(
            (published.root / "torrents" / sha256[:2] / f"{sha256}.torrent").read_bytes()
        )
        assert (torrent["btih"], torrent["btmh"]) == (expected.btih, expected.btmh)
        assert torrent["url"].endswith(f"/torrents/{sha256[:2]}/{sha256}.torrent")


def test_wrong_or_missing_torrents_are_not_used(
    tmp_path: Path, local_index, target_venv: Path, capsys
) -> None:
    app = make_wheel(tmp_path / "d", "app", "1.0")
    other = make_wheel(tmp_path / "o", "other", "1.0")
    plain = local_index([app], torrents=False)
    published = local_index([app, other])
    # Replace app's torrent by the torrent of another file, under app's sha256.
    (app_torrent,) = [
        p
        for p in (published.root / "torrents").rglob("*.torrent")
        if parse_torrent(p.read_bytes()).name == app.name
    ]
    (other_torrent,) = [
        p for p in (published.root / "torrents").rglob("*.torrent") if p != app_torrent
    ]
    shutil.copyfile(other_torrent, app_torrent)
    code = main(
        [
            "install",
            "--dry-run",
            "-v",
            "--isolated",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--index-url",
            plain.url,
            "--torrent-index",
            published.base_url + "torrents/",
            "--torrent-index",
            plain.base_url + "nothing-here/",
            "--python",
            str(target_venv),
            "--report",
            str(tmp_path / "r.json"),
            "app",
        ]
    )
    assert code == 0
    (item,) = json.loads((tmp_path / "r.json").read_text())["install"]
    assert "torrent" not in item["torrip"]
    assert "discarded the torrent" in capsys.readouterr().err

"""Parsing PEP 691 JSON and PEP 503 HTML project pages."""

from __future__ import annotations

import json

import pytest

from torrip.errors import IndexPageError
from torrip.index.pages import parse_html_page, parse_json_page, parse_page

PAGE = "https://index.example/simple/demo/"


def test_json_page_fields() -> None:
    body = json.dumps(
        {
            "meta": {"api-version": "1.1"},
            "name": "demo",
            "files": [
                {
                    "filename": "demo-1.0-py3-none-any.whl",
                    "url": "../../files/demo-1.0-py3-none-any.whl",
                    "hashes": {"sha256": "ABC"},
                    "requires-python": ">=3.8",
                    "core-metadata": {"sha256": "def"},
                    "dist-info-metadata": {"sha256": "old"},
                    "yanked": "bad",
                    "size": 10,
                    "upload-time": "2024-01-01T00:00:00Z",
                    "_torrent": {"btih": "AA", "btmh": "1220bb", "sha256": "cc"},
                },
                {
                    "filename": "demo-0.9.tar.gz",
                    "url": "demo-0.9.tar.gz",
                    "hashes": {},
                    "dist-info-metadata": True,
                    "yanked": True,
                },
                {"filename": "broken"},
            ],
        }
    ).encode()
    wheel, sdist = parse_json_page(body, PAGE)
    assert wheel.url == "https://index.example/files/demo-1.0-py3-none-any.whl"
    assert wheel.sha256 == "abc"
    assert wheel.metadata_hashes == {"sha256": "def"}  # core-metadata wins (PEP 714)
    assert wheel.yanked == "bad"
    assert (wheel.size, wheel.upload_time) == (10, "2024-01-01T00:00:00Z")
    assert wheel.torrent is not None and wheel.torrent.btih == "aa"
    assert wheel.metadata_url == wheel.url + ".metadata"
    assert sdist.metadata_hashes == {}
    assert sdist.yanked == ""


def test_json_page_rejects_unknown_major_version() -> None:
    body = json.dumps({"meta": {"api-version": "2.0"}, "files": []}).encode()
    with pytest.raises(IndexPageError) as caught:
        parse_json_page(body, PAGE)
    assert "2.0" in str(caught.value)


def test_html_page_fields() -> None:
    html = """<!DOCTYPE html><html><body>
    <a href="/files/demo-1.0-py3-none-any.whl#sha256=ABC" data-requires-python="&gt;=3.8"
       data-core-metadata="sha256=def" data-yanked="" data-torrent="btih=aa;btmh=1220bb;sha256=cc"
       >demo-1.0-py3-none-any.whl</a>
    <a href="demo%2B1-0.9.tar.gz" data-dist-info-metadata="true">x</a>
    <a>no href</a>
    </body></html>"""
    wheel, sdist = parse_html_page(html, PAGE)
    assert wheel.url == "https://index.example/files/demo-1.0-py3-none-any.whl"
    assert wheel.hashes == {"sha256": "abc"}
    assert wheel.requires_python == ">=3.8"
    assert wheel.metadata_hashes == {"sha256": "def"}
    assert wheel.yanked == ""
    assert wheel.torrent is not None and (wheel.torrent.btih, wheel.torrent.sha256) == ("aa", "cc")
    assert sdist.filename == "demo+1-0.9.tar.gz"
    assert sdist.metadata_hashes == {}
    assert sdist.yanked is None


def test_html_base_href() -> None:
    html = '<base href="https://cdn.example/x/"><a href="demo-1.0.tar.gz">d</a>'
    (link,) = parse_html_page(html, PAGE)
    assert link.url == "https://cdn.example/x/demo-1.0.tar.gz"


def test_unknown_content_type() -> None:
    with pytest.raises(IndexPageError) as caught:
        parse_page(b"{}", "application/pdf", PAGE)
    assert "not a Simple API page" in str(caught.value)

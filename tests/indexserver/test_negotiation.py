"""Accept header parsing and the PEP 691 format choice, without a server."""

from __future__ import annotations

import pytest

from torrip.indexserver.negotiation import PageFormat, choose_format, parse_accept
from torrip.ranges import UNSATISFIABLE, ByteRange, parse_range

JSON, HTML_V1, HTML = PageFormat.JSON, PageFormat.HTML_V1, PageFormat.HTML
BOTH = ("json", "html")


@pytest.mark.parametrize(
    ("accept", "families", "expected"),
    [
        (None, BOTH, HTML),
        ("", BOTH, HTML),
        ("application/vnd.pypi.simple.v1+json", BOTH, JSON),
        ("application/vnd.pypi.simple.latest+html", BOTH, HTML_V1),
        ("Application/VND.PyPI.Simple.V1+JSON", BOTH, JSON),
        ("text/html;q=0.9, application/vnd.pypi.simple.v1+json;q=0.8", BOTH, HTML),
        ("application/vnd.pypi.simple.v1+json, text/html", BOTH, JSON),
        ("application/*", BOTH, JSON),
        ("text/*", BOTH, HTML),
        ("*/*", BOTH, HTML),
        ("*/*;q=0.1, application/vnd.pypi.simple.v1+json;q=0", BOTH, HTML),
        ("application/vnd.pypi.simple.v1+json;q=0", BOTH, None),
        ("image/png", BOTH, None),
        ("garbage", BOTH, None),
        ("text/html;q=abc, application/vnd.pypi.simple.v1+json", BOTH, JSON),
        ("application/vnd.pypi.simple.v1+json", ("html",), HTML),
        ("image/png", ("html",), HTML),
        (None, ("json",), JSON),
        ("*/*", ("json",), JSON),
        ("text/html", ("json",), None),
    ],
)
def test_choose_format(
    accept: str | None, families: tuple[str, ...], expected: PageFormat | None
) -> None:
    assert choose_format(accept, families) is expected


def test_parse_accept() -> None:
    ranges = parse_accept("a/b;q=0.5;level=1, c/*, nonsense, */*;q=2")
    assert [(r.media_type, r.q, r.specificity) for r in ranges] == [
        ("a/b", 0.5, 2),
        ("c/*", 1.0, 1),
        ("*/*", 1.0, 0),
    ]


def test_content_types() -> None:
    assert JSON.content_type == "application/vnd.pypi.simple.v1+json"
    assert HTML_V1.content_type == "application/vnd.pypi.simple.v1+html"
    assert HTML.content_type == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, ByteRange(0, 0)),
        ("bytes=2-5", 10, ByteRange(2, 5)),
        ("bytes=2-", 10, ByteRange(2, 9)),
        ("bytes=8-100", 10, ByteRange(8, 9)),
        ("bytes=-3", 10, ByteRange(7, 9)),
        ("bytes=-30", 10, ByteRange(0, 9)),
        (" Bytes = 1 - 2 ", 10, ByteRange(1, 2)),
        ("bytes=10-", 10, UNSATISFIABLE),
        ("bytes=10-20", 10, UNSATISFIABLE),
        ("bytes=-0", 10, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=5-2", 10, None),
        ("bytes=0-1,3-4", 10, None),
        ("bytes=-", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=+1-2", 10, None),
        ("lines=0-1", 10, None),
        ("bytes", 10, None),
    ],
)
def test_parse_range(header: str, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected
    if isinstance(expected, ByteRange):
        assert expected.content_range(size) == f"bytes {expected.start}-{expected.end}/{size}"

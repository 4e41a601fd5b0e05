"""The anchors of a PEP 503 HTML page, with the stdlib's HTML parser.

A module of its own so that `html.parser` (6 ms of imports) loads only when an index
serves HTML: PyPI and most indexes answer with PEP 691 JSON.
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["collect_anchors"]

Attributes = dict[str, "str | None"]


class _AnchorCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[Attributes] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.anchors.append(dict(attrs))


def collect_anchors(text: str) -> tuple[str | None, list[Attributes]]:
    """The page's first ``<base href>`` (None without one) and the attributes of each ``<a>``."""
    collector = _AnchorCollector()
    collector.feed(text)
    collector.close()
    return collector.base, collector.anchors

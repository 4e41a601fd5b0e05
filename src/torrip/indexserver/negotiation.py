"""PEP 691 content negotiation: which page format answers a request's Accept header.

    choose_format("application/vnd.pypi.simple.v1+json, text/html;q=0.01", ("json", "html"))
    # -> PageFormat.JSON

Formats are picked by q-value; among equal q-values a media type the client
named beats one matched by a wildcard. Named in a tie, JSON wins; matched only
by a wildcard (``*/*``, a browser, curl), plain ``text/html`` wins, as old
clients that send ``*/*`` expect HTML. No Accept header means ``text/html``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["PageFormat", "choose_format", "parse_accept"]


class PageFormat(enum.Enum):
    """A representation of a Simple API page, with the content type it is served as."""

    JSON = "application/vnd.pypi.simple.v1+json"
    HTML_V1 = "application/vnd.pypi.simple.v1+html"
    HTML = "text/html"

    @property
    def family(self) -> str:
        """``json`` or ``html``: the file the page is read from."""
        return "json" if self is PageFormat.JSON else "html"

    @property
    def content_type(self) -> str:
        return "text/html; charset=utf-8" if self is PageFormat.HTML else self.value

    @property
    def aliases(self) -> tuple[str, ...]:
        if self is PageFormat.JSON:
            return (self.value, "application/vnd.pypi.simple.latest+json")
        if self is PageFormat.HTML_V1:
            return (self.value, "application/vnd.pypi.simple.latest+html")
        return (self.value,)


@dataclass(frozen=True)
class MediaRange:
    media_type: str  # lower case, e.g. "text/html", "text/*", "*/*"
    q: float

    @property
    def specificity(self) -> int:
        if self.media_type == "*/*":
            return 0
        return 1 if self.media_type.endswith("/*") else 2

    def matches(self, media_type: str) -> bool:
        if self.media_type == "*/*":
            return True
        if self.media_type.endswith("/*"):
            return media_type.startswith(self.media_type[:-1])
        return self.media_type == media_type


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header; malformed parts are skipped."""
    ranges = []
    for part in header.split(","):
        media_type, *params = (item.strip() for item in part.split(";"))
        if "/" not in media_type:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append(MediaRange(media_type.lower(), q))
    return ranges


def _preference(page_format: PageFormat, explicit: bool) -> int:
    if explicit:
        return {PageFormat.JSON: 2, PageFormat.HTML_V1: 1, PageFormat.HTML: 0}[page_format]
    return {PageFormat.HTML: 2, PageFormat.JSON: 1, PageFormat.HTML_V1: 0}[page_format]


def choose_format(accept: str | None, families: Collection[str]) -> PageFormat | None:
    """The format to answer with, among ``families`` ("json", "html"); None means 406.

    With only "html" available the Accept header is ignored, as an old index does.
    """
    available = [f for f in PageFormat if f.family in families]
    if not available:
        return None
    if families == ("html",) or set(families) == {"html"}:
        return PageFormat.HTML
    if not accept or not accept.strip():
        return PageFormat.HTML if PageFormat.HTML in available else available[0]
    ranges = parse_accept(accept)
    best: tuple[float, int, int] | None = None
    chosen: PageFormat | None = None
    for page_format in available:
        matching = [r for alias in page_format.aliases for r in ranges if r.matches(alias)]
        if not matching:
            continue
        # The most specific range decides the q-value (RFC 9110, section 12.5.1).
        top = max(matching, key=lambda r: (r.specificity, r.q))
        if top.q <= 0:
            continue
        explicit = top.specificity == 2
        key = (top.q, int(explicit), _preference(page_format, explicit))
        if best is None or key > best:
            best, chosen = key, page_format
    return chosen

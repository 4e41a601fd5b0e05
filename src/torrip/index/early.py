"""The index asked for what the command line names before the resolver is loaded.

Loading the resolver, the planner and httpx takes 60-90 ms of a cold start, and nothing
was asked of the index until they were loaded. The pages of the requirements named on
the command line are what any resolve needs first: an ``EarlyIndex`` made as soon as the
settings are known asks for them at once, and the planner takes it over
(``plan_install(early=...)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from torrip.closing import Closing
from torrip.config import Settings
from torrip.http import make_client
from torrip.index.client import IndexClient

if TYPE_CHECKING:
    import httpx

__all__ = ["EarlyIndex", "early_index", "plain_names"]

# The project a requirement names, if it is written plainly ("rich[jupyter]>=13"; not a
# path, a wheel file or "name @ URL"). A wrong guess costs one unused page request: the
# planner parses every requirement properly.
_PLAIN_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:$|[\[(<>=!~;,])")


class EarlyIndex(Closing):
    """An HTTP client and the index client on it, closed together."""

    def __init__(self, settings: Settings, log: Callable[[str], None]) -> None:
        self.http: httpx.Client = make_client(settings)
        # Its first requests run beside the planner's imports, which would make the index
        # look nearer than it is: the planner starts the measuring (``Width.arm``).
        self.index = IndexClient(settings, self.http, log=log, measure_now=False)

    def close(self) -> None:
        self.index.close()
        self.http.close()


def early_index(
    settings: Settings,
    requirements: Sequence[str],
    *,
    requirement_files: Sequence[str] = (),
    constraint_files: Sequence[str] = (),
    log: Callable[[str], None],
) -> EarlyIndex | None:
    """An index client already fetching the pages of ``requirements``; None when there is
    nothing to ask, or when the settings may still change (the options lines of -r and -c
    files, such as --index-url, apply to the resolve)."""
    if requirement_files or constraint_files or not settings.index_urls:
        return None
    names = plain_names(requirements)
    if not names:
        return None
    early = EarlyIndex(settings, log)
    for name in names:
        early.index.prefetch_project(name)
    return early


def plain_names(requirements: Sequence[str]) -> list[str]:
    """The projects of the requirements written plainly, in order (a guess: see
    ``_PLAIN_NAME``)."""
    names = []
    for text in requirements:
        match = _PLAIN_NAME.match(text)
        if match is not None and not _names_a_file(text):
            names.append(match[1])
    return names


def _names_a_file(text: str) -> bool:
    """ "name @ URL", a path, or a wheel's or an archive's filename."""
    return any(sign in text for sign in "@/\\") or text.lower().endswith(_FILE_SUFFIXES)


_FILE_SUFFIXES = (".whl", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".tar")

"""Judge each Link for a target environment: accepted with a rank, or rejected with a reason."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import NamedTuple

from packaging.tags import Tag
from packaging.utils import NormalizedName
from packaging.version import Version

from torrip.errors import IndexPageError
from torrip.index.links import Link, parse_upload_time

__all__ = ["SDIST_REJECTED", "Evaluation", "LinkEvaluator"]

# Why an sdist that fits the target is no candidate.
SDIST_REJECTED = "source distribution (torrip installs wheels only, for now)"


class Evaluation(NamedTuple):
    link: Link
    version: Version | None
    # Lower is better: the best tag the wheel offers for the target.
    tag_rank: int | None = None
    rejected: str | None = None  # the reason, None when acceptable
    is_sdist: bool = False

    @property
    def ok(self) -> bool:
        return self.rejected is None


class LinkEvaluator:
    """Knows the target's tags and Python version; says which files it can install."""

    def __init__(
        self,
        tag_priority: Mapping[Tag, int],
        python_version: tuple[int, int, int],
        *,
        uploaded_before: datetime | None = None,
    ):
        self.tag_priority = tag_priority
        self.python_version = Version(".".join(map(str, python_version)))
        self.uploaded_before = uploaded_before
        self._platforms = {tag.platform for tag in tag_priority}

    def _platform_unsupported(self, filename: str) -> bool:
        """Cheap string test that rejects most wheels of big projects without parsing them."""
        platforms = filename[:-4].rsplit("-", 1)[-1]
        return not any(p in self._platforms for p in platforms.split("."))

    def evaluate(self, link: Link, project: NormalizedName) -> Evaluation:
        if link.is_wheel and self._platform_unsupported(link.filename):
            platforms = link.filename[:-4].rsplit("-", 1)[-1]
            return Evaluation(link, None, rejected=f"no wheel for this platform ({platforms})")
        parsed = link.parsed
        if parsed is None:
            return Evaluation(link, None, rejected="not a wheel or source distribution")
        name, version, tags = parsed
        if name != project:
            return Evaluation(link, version, rejected=f"belongs to project {name}")
        if self.uploaded_before is not None and not link.url.startswith("file:"):
            uploaded = parse_upload_time(link.upload_time)
            if uploaded is not None and uploaded.tzinfo is None:
                uploaded = uploaded.replace(tzinfo=timezone.utc)  # PEP 700 times are UTC
            if uploaded is None:  # as pip: the filter cannot be honoured, so say so
                raise IndexPageError(
                    f"{link.index_url or link.url} gives no upload time for "
                    f"{link.filename}, which --uploaded-prior-to needs",
                    hint="Use an index that serves the JSON Simple API with upload times "
                    "(PEP 700; PyPI does), or drop --uploaded-prior-to.",
                )
            if uploaded >= self.uploaded_before:
                return Evaluation(
                    link,
                    version,
                    rejected=f"uploaded {link.upload_time}, not before "
                    f"{self.uploaded_before.isoformat(timespec='seconds')} (uploaded-prior-to)",
                    is_sdist=not link.is_wheel,
                )
        specifier = link.requires_python_specifier
        if specifier is not None and not specifier.contains(self.python_version, prereleases=True):
            return Evaluation(
                link,
                version,
                rejected=(
                    f"requires Python {link.requires_python} (target is {self.python_version})"
                ),
                is_sdist=not link.is_wheel,
            )
        if not link.is_wheel:
            return Evaluation(
                link,
                version,
                rejected=SDIST_REJECTED,
                is_sdist=True,
            )
        ranks = [self.tag_priority[tag] for tag in tags if tag in self.tag_priority]
        if not ranks:
            shown = ", ".join(sorted(str(tag) for tag in tags))
            return Evaluation(link, version, rejected=f"no tag for the target ({shown})")
        return Evaluation(link, version, tag_rank=min(ranks))

"""Resolutions kept, and reused while every index page they read is unchanged.

A resolution is a function of what was asked (the requirements, the options, the
settings), the target (its markers, tags and installed distributions) and the index
pages read: the metadata files are the index's, named by the sha256 the pages give. So
when a later install asks the same of the same target, and every page the resolution
read is in the cache, fresh and byte for byte the same, resolving again would give the
same answer; it is read back instead (jupyterlab's 91 packages: 90 ms to resolve, 7 ms
to read back). The CI fleet that installs one set of requirements a hundred times a day
resolves it once per page change.

Not kept: what read find-links folders or a page the cache cannot hold (a 404, no-store),
and resolutions with direct URLs (a URL's file may change with no page to tell).

The entries are pickles, in the cache (``resolutions-v1/``), which holds the unpacked
files installs link into environments already: whoever can write there can already
change what is installed.
"""

from __future__ import annotations

import contextlib
import copyreg
import hashlib
import io
import json
import pickle
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import packaging
from packaging.markers import Marker
from packaging.requirements import Requirement as PEP508Requirement

from torrip import __version__
from torrip.config import Settings
from torrip.fsutil import atomic_write
from torrip.index.httpcache import PageCache
from torrip.index.pages import PAGE_ACCEPT

if TYPE_CHECKING:
    from torrip.environment import TargetEnvironment
    from torrip.resolver.models import Requirement
    from torrip.resolver.provider import ProviderOptions
    from torrip.resolver.resolve import Resolution

__all__ = ["AREA", "ResolutionMemo"]

AREA = "resolutions-v1"
_FORMAT = 1


class ResolutionMemo:
    """The kept resolution of one request (``load``), and keeping a new one (``keep``)."""

    def __init__(
        self,
        settings: Settings,
        requirements: Sequence[Requirement],
        options: ProviderOptions,
        environment: TargetEnvironment,
    ) -> None:
        self.settings = settings
        key = hashlib.sha256(
            json.dumps(_what_decides(settings, requirements, options, environment)).encode()
        ).hexdigest()
        self.path = settings.cache_dir / AREA / key[:2] / f"{key}.pickle"

    @staticmethod
    def applies(settings: Settings, requirements: Sequence[Requirement]) -> bool:
        """Whether a resolution of ``requirements`` can be kept at all."""
        return not (settings.no_cache or settings.find_links or any(r.url for r in requirements))

    def load(self) -> Resolution | None:
        """The kept resolution, if every page it read is in the cache, fresh and the same."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        try:
            kept_format, digests, resolution = pickle.loads(data)
        except Exception:  # a torn or foreign file: resolve again (and keep anew)
            return None
        if kept_format != _FORMAT:
            return None
        pages = PageCache(self.settings.http_cache_dir, offline=self.settings.offline)
        for url, digest in digests:
            if pages.digest(url, PAGE_ACCEPT, fresh=True) != digest:
                return None
        result: Resolution = resolution
        return result

    def keep(self, resolution: Resolution, digests: list[tuple[str, str]] | None) -> None:
        """Keep ``resolution``, which read the pages ``digests`` (None: some page is not in
        the cache, so it is not kept)."""
        if digests is None or any(d.candidate.source == "url" for d in resolution.distributions):
            return
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = {**copyreg.dispatch_table, **_UNPARSED}
        pickler.dump((_FORMAT, digests, resolution))
        with contextlib.suppress(OSError):  # a read-only cache must not fail an install
            atomic_write(self.path, buffer.getvalue())


# packaging pickles a requirement or a marker as its text, parsed again when read back:
# 16 of the 22 ms jupyterlab's kept resolution took to load (671 requirements). Its
# objects also load from their fields, the form packaging before 26.2 wrote (kept for
# reading those): 6.8 ms. A packaging that no longer reads it fails the load, a miss;
# its version is part of the key in any case.
_Reduced = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _new(cls: type[object]) -> object:
    return object.__new__(cls)


def _requirement_fields(requirement: PEP508Requirement) -> _Reduced:
    fields = {name: getattr(requirement, name) for name in _REQUIREMENT_FIELDS}
    return (_new, (type(requirement),), fields)


def _marker_fields(marker: Marker) -> _Reduced:
    return (_new, (type(marker),), {"_markers": marker._markers})


_REQUIREMENT_FIELDS = ("name", "url", "extras", "specifier", "marker")
_UNPARSED: dict[type, Callable[[Any], _Reduced]] = {
    PEP508Requirement: _requirement_fields,
    Marker: _marker_fields,
}


def _what_decides(
    settings: Settings,
    requirements: Sequence[Requirement],
    options: ProviderOptions,
    environment: TargetEnvironment,
) -> dict[str, object]:
    """Everything a resolution depends on but the pages, as plain JSON data (sets sorted:
    their order changes from one process to the next)."""
    # Not where the target is: a fresh venv anywhere resolves as any other of its Python.
    installed = sorted(
        (name, str(dist.version), list(dist.requires_dist), dist.requires_python, dist.editable)
        for name, dist in environment.installed.items()
    )
    return {
        "format": _FORMAT,
        "torrip": __version__,
        "packaging": packaging.__version__,  # its objects are pickled (_UNPARSED)
        # Those the index client and the provider read (the others say how to fetch).
        "settings": [
            settings.index_url,
            list(settings.extra_index_url),
            settings.index_strategy,
            list(settings.find_links),
            settings.pre,
            settings.uploaded_prior_to,
        ],
        "requirements": [
            [r.name, str(r.specifier), sorted(r.extras), r.url, r.text] for r in requirements
        ],
        "options": [
            options.pre,
            options.no_deps,
            sorted(options.upgrade),
            options.upgrade_all,
            sorted((name, str(spec)) for name, spec in options.constraints.items()),
            sorted(options.requested_order.items()),
            sorted((name, sorted(hashes)) for name, hashes in options.hashes.items()),
            str(options.uploaded_before),
        ],
        "markers": sorted(environment.markers.items()),
        "tags": [str(tag) for tag in environment.tags],
        "installed": installed,
    }

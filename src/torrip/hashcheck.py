"""Hash-checking mode: ``--hash`` options and ``--require-hashes``, with pip's semantics.

The mode is all or nothing. It is on when ``--require-hashes`` is given (on the command
line or in a requirements file) or when any requirement has a ``--hash``. Then every
requirement must be pinned (``==`` without a wildcard, or ``===``, or a URL), and every
distribution to install, dependencies included, must have hashes in the files. Only files
that can match one of a project's hashes are candidates, and a fetched file that does not
match one is refused before anything is installed.

Usage::

    allowed = allowed_hashes(parsed, command_line, markers, require_hashes=False)
    if allowed is not None:                       # hash-checking mode is on
        ProviderOptions(..., hashes=allowed)      # candidates filtered with may_match()
        check_resolution_hashed(resolution, allowed)
    ...
    check_file_allowed(fetch_result, allowed.get(name))
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from torrip.errors import HashNotAllowedError, HashRequirementsError
from torrip.index.links import Link
from torrip.requirements import ParsedRequirements

if TYPE_CHECKING:  # the resolver imports this module: no cycle at run time
    from torrip.resolver.resolve import Resolution
    from torrip.transport.fetch import FetchResult

__all__ = [
    "AllowedHashes",
    "allowed_hashes",
    "check_file_allowed",
    "check_resolution_hashed",
    "file_hashes",
    "may_match",
]

# Project -> "algorithm:hexdigest" values any one of which its file must match.
AllowedHashes = Mapping[NormalizedName, frozenset[str]]

_ENABLED_BY = (
    "(Hash-checking mode is on because of --require-hashes, or because a requirement "
    "has a --hash: then every requirement needs both.)"
)


def _is_pinned(requirement: Requirement) -> bool:
    if requirement.url:
        return True
    specifiers = list(requirement.specifier)
    if len(specifiers) != 1:
        return False
    (spec,) = specifiers
    return spec.operator == "===" or (spec.operator == "==" and not spec.version.endswith(".*"))


def _url_hash(requirement: Requirement) -> str | None:
    """The ``#sha256=...`` of a ``name @ URL`` requirement, as ``sha256:...``."""
    if not requirement.url or "#" not in requirement.url:
        return None
    algorithm, sep, digest = requirement.url.rsplit("#", 1)[1].partition("=")
    if sep and algorithm.lower() in hashlib.algorithms_guaranteed and digest:
        return f"{algorithm.lower()}:{digest.lower()}"
    return None


def allowed_hashes(
    parsed: ParsedRequirements,
    command_line: Sequence[Requirement],
    markers: Mapping[str, str],
    *,
    require_hashes: bool,
) -> dict[NormalizedName, frozenset[str]] | None:
    """The hashes each requested project's file must match; None when the mode is off.

    Raises HashRequirementsError when a requirement is not pinned. Requirements whose
    markers do not hold for the target are left out, as they are from the install.
    """
    lines = [
        (line.requirement, line.hashes, line.source)
        for line in parsed.requirements
        if line.requirement.marker is None or line.requirement.marker.evaluate(dict(markers))
    ]
    lines += [
        (req, (), "the command line")
        for req in command_line
        if req.marker is None or req.marker.evaluate(dict(markers))
    ]
    with_hashes = [(req, (*hashes, *filter(None, [_url_hash(req)]))) for req, hashes, _ in lines]
    if not (require_hashes or parsed.options.require_hashes or any(h for _, h in with_hashes)):
        return None
    unpinned = [f"{req} (from {source})" for req, _, source in lines if not _is_pinned(req)]
    if unpinned:
        raise HashRequirementsError(
            "in hash-checking mode every requirement must be pinned with == (or ===); "
            "these are not:",
            unpinned,
            hint="Pin each one to the exact version to install, e.g. lib==1.2.3, and give "
            f"its --hash. {_ENABLED_BY}",
        )
    allowed: dict[NormalizedName, frozenset[str]] = {}
    for req, hashes in with_hashes:
        if not hashes:
            continue  # reported after resolution, with the hash of the file it chose
        name = canonicalize_name(req.name)
        given = frozenset(hashes)
        # The same project twice: its file must satisfy both lines.
        allowed[name] = allowed[name] & given if name in allowed else given
    return allowed


def may_match(link: Link, allowed: frozenset[str]) -> bool:
    """False only when the index's own hash of ``link`` proves it matches none of ``allowed``.

    A file whose index gives no hash of an allowed algorithm stays a candidate; its
    bytes are checked once fetched (``check_file_allowed``).
    """
    algorithms = {value.split(":", 1)[0] for value in allowed}
    known = {
        f"{algorithm}:{digest.lower()}"
        for algorithm, digest in link.hashes.items()
        if algorithm.lower() in algorithms
    }
    return not known or not known.isdisjoint(allowed)


def check_resolution_hashed(resolution: Resolution, allowed: AllowedHashes) -> None:
    """Every distribution to be fetched must have hashes: dependencies too, as in pip."""
    missing = []
    for dist in resolution.distributions:
        link = dist.candidate.link
        if link is None or dist.candidate.name in allowed:
            continue  # already installed (nothing is fetched), or hashed
        pin = f"{dist.candidate.name}=={dist.candidate.version}"
        if dist.candidate.source == "url":
            pin = f"{dist.candidate.name} @ {link.url}"
        line = f"{pin} --hash=sha256:{link.sha256}" if link.sha256 else pin
        if not dist.requested:
            line += f"  # a dependency; the index's file is {link.filename}"
        elif not link.sha256:  # a --find-links file or a bare URL: no hash known yet
            line += f"  # no sha256 is known for {link.filename}: hash the file you trust"
        missing.append(line)
    if missing:
        raise HashRequirementsError(
            "hash-checking mode needs hashes for every distribution it installs, and these "
            "have none (the lines give the hash the index lists for the file chosen):",
            missing,
            hint="Check the hashes, then add the lines to your requirements file. " + _ENABLED_BY,
        )


def file_hashes(path: Path, algorithms: Iterable[str], known_sha256: str) -> dict[str, str]:
    """``algorithm -> "algorithm:hexdigest"`` of the file, reusing the sha256 already known."""
    found = {"sha256": f"sha256:{known_sha256}"}
    others = sorted(set(algorithms) - {"sha256"})
    if others:
        digests = {name: hashlib.new(name) for name in others}
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                for digest in digests.values():
                    digest.update(chunk)
        found.update({name: f"{name}:{d.hexdigest()}" for name, d in digests.items()})
    return found


def check_file_allowed(result: FetchResult, allowed: frozenset[str] | None) -> None:
    """Refuse a fetched file that matches none of ``allowed`` (None: nothing to check)."""
    if allowed is None:
        return
    algorithms = {value.split(":", 1)[0] for value in allowed}
    actual = file_hashes(result.path, algorithms, result.sha256)
    if allowed.isdisjoint(actual.values()):
        shown = [actual[name] for name in sorted(algorithms) if name in actual]
        raise HashNotAllowedError(
            result.request.filename, result.request.url, sorted(allowed), shown
        )

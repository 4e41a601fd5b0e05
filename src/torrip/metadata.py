"""Core metadata of a distribution: parsed once, checked, and rendered as pip's report JSON."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from typing import Any, NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from torrip.errors import MetadataError

__all__ = ["DistMetadata", "header_items", "name_and_version", "parse_metadata"]

# Core metadata fields that may appear more than once (PEP 566 JSON: lists).
_MULTIPLE_USE = {
    "dynamic",
    "platform",
    "supported_platform",
    "classifier",
    "requires_dist",
    "requires_external",
    "project_url",
    "provides_extra",
    "provides_dist",
    "obsoletes_dist",
    "license_file",
    "import_name",
    "import_namespace",
    # Deprecated but seen in the wild:
    "requires",
    "provides",
    "obsoletes",
}


class DistMetadata(NamedTuple):
    name: NormalizedName
    display_name: str
    version: Version
    requires_dist: tuple[Requirement, ...]
    requires_python: SpecifierSet | None
    provides_extra: frozenset[NormalizedName]
    raw: bytes

    def as_json(self) -> dict[str, Any]:
        """The PEP 566 JSON form, as pip writes it in its installation report.

        pip reads METADATA as UTF-8 text through importlib.metadata, which unfolds values
        continued over several lines; single-use fields take their first value, and the
        body is the description. Only the header block goes through the email parser:
        the body (often a long README) is taken as it is, which is what the parser gives.
        """
        text = self.raw.decode("utf-8", errors="replace")
        head, body = _split_body(text)
        items = _items_of_head(head)
        result: dict[str, Any] = {}
        for key, value in items:
            field = key.lower().replace("-", "_")
            text = _unfold(value)
            if field in _MULTIPLE_USE:
                result.setdefault(field, []).append(text)
            elif field in result:
                continue
            elif field == "keywords":  # comma-separated, or else space-separated (as pip)
                result[field] = (
                    [word.strip() for word in text.split(",")] if "," in text else text.split()
                )
            else:
                result[field] = text
        if body:
            result["description"] = body
        return result


def header_items(text: str) -> list[tuple[str, str]]:
    """The (name, value) headers of an RFC 822 style file (METADATA, WHEEL) as the email
    parser (compat32) reads them, up to the first empty line; in one pass where the text
    is plain (``_header_items``), else by that parser."""
    return _items_of_head(_split_body(text)[0])


def _items_of_head(head: str) -> list[tuple[str, str]]:
    items = _header_items(head)
    if items is None:  # anything unusual: the email parser decides
        import email.parser  # only here: resolving needs neither it nor parse_email
        import email.policy

        parser = email.parser.Parser(policy=email.policy.compat32)
        message = parser.parsestr(head, headersonly=True)
        items = [(key, str(value)) for key, value in message.items()]
    return items


def _header_items(head: str) -> list[tuple[str, str]] | None:
    """The headers of ``head`` as the email parser (compat32) gives them, in one pass:
    the value after the colon without its leading blanks, continuation lines kept with
    their line breaks. 0.025 ms a file against 0.11 ms. None for anything it might read
    otherwise (a carriage return, a line at which the parser would end the headers)."""
    if "\r" in head:
        return None
    names: list[str] = []
    values: list[list[str]] = []
    header_line = _HEADER_LINE.match
    for line in head.split("\n"):
        if not line:
            continue
        if line[0] in " \t":
            if not values:
                return None
            values[-1].append(line)
            continue
        if not header_line(line):
            return None
        name, _, value = line.partition(":")
        names.append(name)
        values.append([value.lstrip(" \t")])
    return [(name, "\n".join(parts)) for name, parts in zip(names, values, strict=True)]


def _split_body(text: str) -> tuple[str, str]:
    """(header block, body) at the first empty line, as the email parser splits them."""
    ends = [at for at in (text.find("\n\n"), text.find("\r\n\r\n")) if at >= 0]
    if not ends:
        return text, ""
    end = min(ends)
    separator = "\r\n\r\n" if text.startswith("\r\n\r\n", end) else "\n\n"
    return text[: end + len(separator) // 2], text[end + len(separator) :]


def _unfold(value: str) -> str:
    """A value continued over several lines without its continuation indent, as
    importlib.metadata reads it (RFC 822 folding)."""
    if "\n" not in value:
        return value
    return textwrap.dedent(" " * 8 + value)


# The fields resolution reads, by their names in METADATA (lowercased).
_RESOLUTION_FIELDS = {
    "name": "name",
    "version": "version",
    "requires-python": "requires_python",
    "requires-dist": "requires_dist",
    "provides-extra": "provides_extra",
}
_SINGLE_USE = frozenset({"name", "version", "requires_python"})
# A header line as the email parser takes one; any other line ends the headers there.
_HEADER_LINE = re.compile(r"[\041-\071\073-\176]*:")


def _resolution_fields(block: bytes) -> dict[str, Any] | None:
    """Name, Version, Requires-Python, Requires-Dist and Provides-Extra from a METADATA
    header block, as packaging's ``parse_email`` reads them, in one pass over its lines.

    ``parse_email`` goes through the email package: 0.25 ms a file, and installing
    jupyterlab cold reads 182 (the resolver's and the install's check). None where the block
    has anything this might read otherwise (one of these fields folded, repeated, encoded
    or not ASCII; a line at which the email parser would end the headers): the caller then
    asks ``parse_email``.
    """
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields: dict[str, Any] = {}
    wanted_before = False  # whether the header before is one of these fields
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line:
            break  # the end of the headers
        if line[0] in " \t":
            if wanted_before:
                return None  # folded: the email parser keeps the line break in the value
            continue
        if not _HEADER_LINE.match(line):
            return None
        name, _, value = line.partition(":")
        key = _RESOLUTION_FIELDS.get(name.lower())
        wanted_before = key is not None
        if key is None:
            continue
        value = value.lstrip(" \t")
        if not value.isascii() or "=?" in value:  # the email parser decodes these
            return None
        if key in _SINGLE_USE:
            if key in fields:
                return None  # repeated: parse_email leaves it out, as unparsed
            fields[key] = value
        else:
            fields.setdefault(key, []).append(value)
    return fields


def parse_metadata(data: bytes, origin: str) -> DistMetadata:
    """Parse METADATA bytes; ``origin`` (URL or filename) goes into error messages."""
    # Resolution needs only the headers; the body (often a long README) is left to
    # as_json(), which reads ``raw`` again when a report is written.
    end = data.find(b"\n\n")
    block = data if end < 0 else data[: end + 1]
    raw: Mapping[str, Any] | None = _resolution_fields(block)
    if raw is None:
        from packaging.metadata import parse_email

        raw, _unparsed = parse_email(block)
    name = raw.get("name")
    version_text = raw.get("version")
    if not name or not version_text:
        raise MetadataError(f"metadata of {origin} has no Name or Version")
    try:
        version = Version(version_text)
    except InvalidVersion:
        raise MetadataError(
            f"metadata of {origin} has an invalid version {version_text!r}"
        ) from None
    requirements = []
    for text in raw.get("requires_dist", []):
        try:
            requirements.append(Requirement(text))
        except InvalidRequirement as exc:
            raise MetadataError(
                f"metadata of {origin} has an invalid requirement {text!r}: {exc}"
            ) from None
    requires_python = None
    if raw.get("requires_python"):
        try:
            requires_python = SpecifierSet(raw["requires_python"])
        except InvalidSpecifier:
            requires_python = None  # pip ignores an invalid Requires-Python too
    return DistMetadata(
        name=canonicalize_name(name),
        display_name=name,
        version=version,
        requires_dist=tuple(requirements),
        requires_python=requires_python,
        provides_extra=frozenset(canonicalize_name(e) for e in raw.get("provides_extra", [])),
        raw=data,
    )


def name_and_version(data: bytes, origin: str) -> tuple[NormalizedName, Version]:
    """Only Name and Version of METADATA bytes: a line scan, a tenth of ``parse_metadata``'s
    cost, for checks that need no more (a lock pins name and version only)."""
    found: dict[bytes, str] = {}
    for line in data.split(b"\n\n", 1)[0].splitlines():
        key, colon, value = line.partition(b":")
        key = key.strip().lower()
        if colon and key in (b"name", b"version") and key not in found and line[:1] not in b" \t":
            found[key] = value.strip().decode("utf-8", "replace")
    if not found.get(b"name") or not found.get(b"version"):
        raise MetadataError(f"metadata of {origin} has no Name or Version")
    try:
        return canonicalize_name(found[b"name"]), Version(found[b"version"])
    except InvalidVersion:
        raise MetadataError(
            f"metadata of {origin} has an invalid version {found[b'version']!r}"
        ) from None

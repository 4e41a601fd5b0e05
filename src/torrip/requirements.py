"""Read pip requirements and constraints files.

Follows pip's documented format: ``#`` comments, ``\\`` line continuations,
``${VAR}`` environment variables, nested ``-r``/``-c`` files (local, or by URL through
``read_url``), global options on lines of their own and ``--hash`` after a
requirement. Anything torrip cannot
install (editables, local paths, unnamed URLs) is rejected with the file and
line, rather than silently skipped.

Example::

    parsed = parse_requirement_files(["requirements.txt"], ["constraints.txt"])
    for line in parsed.requirements:
        print(line.source, line.requirement, line.hashes)
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin

from packaging.requirements import InvalidRequirement, Requirement

from torrip.errors import (
    ConfigError,
    HTTPStatusError,
    NetworkError,
    RequirementsFileError,
    TorripError,
)

__all__ = [
    "FileOptions",
    "ParsedRequirements",
    "RequirementLine",
    "merge_options",
    "parse_requirement_files",
    "parse_requirement_text",
    "vcs_error",
    "wheel_reference",
]


# Reads a requirements file given by URL: its bytes, or a TorripError saying why not.
ReadUrl = Callable[[str], bytes]


class RequirementLine(NamedTuple):
    """One requirement and where it came from."""

    requirement: Requirement
    # "algo:hexdigest", both lowercased, from the line's --hash options.
    hashes: tuple[str, ...]
    # "path:line" of the first physical line, for messages.
    source: str
    # True when read from a -c file, or from a file included by one.
    constraint: bool


class FileOptions(NamedTuple):
    """pip's global options as found in requirements files."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    pre: bool = False
    require_hashes: bool = False
    prefer_binary: bool = False
    # Recorded for completeness: torrip installs wheels only.
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedRequirements:
    """Every requirement and constraint of a set of files, and their options."""

    requirements: tuple[RequirementLine, ...] = ()
    constraints: tuple[RequirementLine, ...] = ()
    options: FileOptions = field(default_factory=FileOptions)


def merge_options(*options: FileOptions) -> FileOptions:
    """Combine options in reading order: the last index URL wins, lists append."""
    merged = FileOptions()
    for item in options:
        merged = FileOptions(
            index_url=item.index_url if item.index_url is not None else merged.index_url,
            extra_index_urls=merged.extra_index_urls + item.extra_index_urls,
            find_links=merged.find_links + item.find_links,
            no_index=merged.no_index or item.no_index,
            pre=merged.pre or item.pre,
            require_hashes=merged.require_hashes or item.require_hashes,
            prefer_binary=merged.prefer_binary or item.prefer_binary,
            only_binary=merged.only_binary + item.only_binary,
            no_binary=merged.no_binary + item.no_binary,
            trusted_hosts=merged.trusted_hosts + item.trusted_hosts,
        )
    return merged


def parse_requirement_files(
    requirement_files: Sequence[str | Path] = (),
    constraint_files: Sequence[str | Path] = (),
    environ: Mapping[str, str] | None = None,
    *,
    read_url: ReadUrl | None = None,
) -> ParsedRequirements:
    """Parse the files given by ``-r`` and ``-c``; relative paths are from the cwd.

    A file may be a URL (as pip allows: Airflow's constraints are published that way),
    read with ``read_url``; the files it includes by relative names are read from
    beside it. Raises ``ConfigError`` when a named file cannot be read and
    ``RequirementsFileError`` for a bad line in any file.
    """
    env = os.environ if environ is None else environ
    parts = [
        *(_parse_top_level(str(path), False, env, read_url) for path in requirement_files),
        *(_parse_top_level(str(path), True, env, read_url) for path in constraint_files),
    ]
    return _combine(parts)


def parse_requirement_text(
    text: str,
    source: str,
    *,
    constraint: bool = False,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ParsedRequirements:
    """Parse requirements-file text; ``source`` names it in messages.

    Nested ``-r``/``-c`` paths and ``--find-links`` directories are relative to
    ``base_dir`` (default: the current directory).
    """
    env = os.environ if environ is None else environ
    context = _Context(source, base_dir or Path(), constraint, env, chain=(), read_url=None)
    return _parse_text(text, context)


_VCS_RE = re.compile(r"^(git|hg|svn|bzr)\+", re.IGNORECASE)
_VCS_NAMES = {"git": "Git", "hg": "Mercurial", "svn": "Subversion", "bzr": "Bazaar"}


def vcs_error(reference: str) -> TorripError | None:
    """The error for a version-control URL (``git+https://…``, alone or after ``name @``):
    pip builds those; torrip builds nothing. None for anything else."""
    match = _VCS_RE.match(reference.strip())
    if match is None:
        return None
    system = _VCS_NAMES[match.group(1).lower()]
    return TorripError(
        f"{reference} is a {system} repository: torrip installs wheels and does not build projects",
        hint="Build a wheel from it (pip wheel --no-deps -w dist URL) and install that file, "
        "or install it with pip install or uv pip install.",
    )


# -- Reading files -------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# PEP 263: a "coding:" comment on one of the first two lines.
_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


class _Context(NamedTuple):
    """Where a text is being read from and how."""

    display: str
    base_dir: Path
    constraint: bool
    environ: Mapping[str, str]
    # Resolved paths (or URLs) and display names of the files being read, outermost first.
    chain: tuple[tuple[str, str], ...]
    read_url: ReadUrl | None
    # The URL of the file being read, when it came from one: what its -r/-c names are
    # relative to.
    base_url: str | None = None


def _parse_top_level(
    location: str, constraint: bool, environ: Mapping[str, str], read_url: ReadUrl | None
) -> ParsedRequirements:
    kind = "constraints" if constraint else "requirements"
    if _URL_RE.match(location):
        data = _read_url(location, read_url)
        context = _Context(
            location, Path(), constraint, environ, ((location, location),), read_url, location
        )
        return _parse_text(_decode(data, location), context)
    path = Path(location)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"could not open {kind} file {path}: {error.strerror or error}",
            hint="Check the path given to -r/-c; it is relative to the current directory.",
        ) from error
    chain = ((str(path.resolve()), str(path)),)
    context = _Context(str(path), path.parent, constraint, environ, chain, read_url)
    return _parse_text(_decode(data, str(path)), context)


def _read_url(url: str, read_url: ReadUrl | None) -> bytes:
    if read_url is None:
        raise ConfigError(
            f"cannot read {url}: requirements files are read from local paths here",
            hint="Download the file and give its path.",
        )
    try:
        return read_url(url)
    except (HTTPStatusError, NetworkError) as error:  # their hints speak of indexes
        reason = f"HTTP {error.status}" if isinstance(error, HTTPStatusError) else error.reason
        raise ConfigError(
            f"could not read {url}: {reason}",
            hint="Check the URL given to -r or -c (and the network).",
        ) from None


def _decode(data: bytes, display: str) -> str:
    encoding = "utf-8"
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            encoding = bom_encoding
            break
    else:
        for line in data.split(b"\n", 2)[:2]:
            match = _CODING_RE.match(line)
            if match:
                encoding = match.group(1).decode("ascii")
                break
    try:
        return data.decode(encoding)
    except LookupError as error:
        raise RequirementsFileError(
            display, 1, "", f"unknown encoding {encoding!r} in the coding comment"
        ) from error
    except UnicodeDecodeError as error:
        line_number = data[: error.start].count(b"\n") + 1
        bad_line = data.splitlines()[line_number - 1].decode(encoding, errors="replace")
        raise RequirementsFileError(
            display,
            line_number,
            bad_line,
            f"not valid {encoding} text; save the file as UTF-8 "
            "or declare its encoding with a '# -*- coding: <name> -*-' comment",
        ) from error


# -- Lines ---------------------------------------------------------------------

# pip's rule: '#' starts a comment at the line's start or after whitespace, so
# URL fragments such as "…whl#sha256=…" survive.
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
# Only ${NAME} with POSIX-style upper-case names, so a stray '$' is never touched.
_ENV_VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)\}")
# Options start at the first whitespace-separated token beginning with '-'.
_OPTIONS_START_RE = re.compile(r"(?:^|\s)-")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".tar")
_STRONG_HASHES = ("sha256", "sha384", "sha512")
_WHEELS_ONLY = (
    "torrip installs wheels (editable installs, project folders and source "
    "distributions need building, which torrip does not do)"
)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Join continuation lines and strip comments; yield (first line number, text)."""
    parts: list[str] = []
    start = 1
    for number, line in enumerate(text.splitlines(), start=1):
        if not parts:
            start = number
        # A comment line ends a continued line, as in pip.
        if line.endswith("\\") and not _COMMENT_RE.match(line):
            parts.append(line[:-1])
            continue
        parts.append(" " + line if _COMMENT_RE.match(line) else line)
        yield start, _COMMENT_RE.sub("", "".join(parts)).strip()
        parts = []
    if parts:  # a trailing backslash on the last line
        yield start, _COMMENT_RE.sub("", "".join(parts)).strip()


def _expand_env(line: str, environ: Mapping[str, str]) -> str:
    # Unset or empty variables stay as written, as in pip.
    return _ENV_VAR_RE.sub(lambda match: environ.get(match.group(1)) or match.group(0), line)


# -- Options -------------------------------------------------------------------


class _Kind(Enum):
    GLOBAL = "global"  # recorded in FileOptions
    INCLUDE = "include"  # -r / -c
    HASH = "hash"  # per requirement
    UNSUPPORTED = "unsupported"  # pip accepts it, torrip cannot honour it


class _Option(NamedTuple):
    names: tuple[str, ...]
    kind: _Kind
    takes_value: bool

    @property
    def display(self) -> str:
        return "/".join(self.names)


_OPTIONS = (
    _Option(("-i", "--index-url"), _Kind.GLOBAL, True),
    _Option(("--extra-index-url",), _Kind.GLOBAL, True),
    _Option(("-f", "--find-links"), _Kind.GLOBAL, True),
    _Option(("--no-index",), _Kind.GLOBAL, False),
    _Option(("--pre",), _Kind.GLOBAL, False),
    _Option(("--require-hashes",), _Kind.GLOBAL, False),
    _Option(("--prefer-binary",), _Kind.GLOBAL, False),
    _Option(("--only-binary",), _Kind.GLOBAL, True),
    _Option(("--no-binary",), _Kind.GLOBAL, True),
    _Option(("--trusted-host",), _Kind.GLOBAL, True),
    _Option(("-r", "--requirement"), _Kind.INCLUDE, True),
    _Option(("-c", "--constraint"), _Kind.INCLUDE, True),
    _Option(("--hash",), _Kind.HASH, True),
    _Option(("-e", "--editable"), _Kind.UNSUPPORTED, True),
    _Option(("-C", "--config-settings"), _Kind.UNSUPPORTED, True),
    _Option(("--global-option",), _Kind.UNSUPPORTED, True),
    _Option(("--install-option",), _Kind.UNSUPPORTED, True),
    _Option(("--use-feature",), _Kind.UNSUPPORTED, True),
)
_OPTIONS_BY_NAME = {name: option for option in _OPTIONS for name in option.names}


class _LineError(Exception):
    """A reason a line is bad; turned into RequirementsFileError with its location."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _split_options(text: str) -> list[tuple[_Option, str | None]]:
    """Parse ``--opt=value``, ``--opt value``, ``-o value`` and ``-ovalue`` forms."""
    try:
        tokens = shlex.split(text)
    except ValueError as error:
        raise _LineError(f"cannot split the options: {error}") from error
    parsed: list[tuple[_Option, str | None]] = []
    tokens.reverse()
    while tokens:
        token = tokens.pop()
        if token.startswith("--"):
            name, has_value, attached = token.partition("=")
            value = attached if has_value else None
        elif token.startswith("-") and len(token) > 1:
            name, attached = token[:2], token[2:]
            value = attached or None
        else:
            raise _LineError(f"unexpected argument {token!r} after the options")
        option = _OPTIONS_BY_NAME.get(name)
        if option is None:
            raise _LineError(f"unknown option {name}")
        if option.takes_value and value is None:
            if not tokens:
                raise _LineError(f"option {option.display} needs a value")
            value = tokens.pop()
        elif not option.takes_value and value is not None:
            raise _LineError(f"option {option.display} takes no value")
        parsed.append((option, value))
    return parsed


def _unsupported_reason(option: _Option) -> str:
    if option.names[-1] == "--editable":
        return f"editable installs (-e/--editable) are not supported: {_WHEELS_ONLY}"
    return f"option {option.display} is not supported: {_WHEELS_ONLY}"


def _parse_hash(value: str) -> str:
    algorithm, sep, digest = value.partition(":")
    algorithm = algorithm.lower()
    if not sep or not digest:
        raise _LineError(f"--hash={value} must be an algorithm and a digest, like sha256:abc…")
    if algorithm not in _STRONG_HASHES:
        raise _LineError(
            f"--hash algorithm {algorithm!r} is not allowed; use one of "
            + ", ".join(_STRONG_HASHES)
        )
    length = hashlib.new(algorithm).digest_size * 2
    if len(digest) != length or not re.fullmatch(r"[0-9a-fA-F]+", digest):
        raise _LineError(f"--hash={value}: a {algorithm} digest is {length} hex digits")
    # Hex digests compare case-insensitively; one spelling keeps set lookups simple.
    return f"{algorithm}:{digest.lower()}"


def _apply_global(option: _Option, value: str | None, base_dir: Path) -> FileOptions:
    text = str(value)
    name = option.names[-1]
    if name == "--index-url":
        return FileOptions(index_url=text)
    if name == "--extra-index-url":
        return FileOptions(extra_index_urls=(text,))
    if name == "--find-links":
        return FileOptions(find_links=(_find_links_location(text, base_dir),))
    if name == "--only-binary":
        return FileOptions(only_binary=_comma_list(text))
    if name == "--no-binary":
        return FileOptions(no_binary=_comma_list(text))
    if name == "--trusted-host":
        return FileOptions(trusted_hosts=(text,))
    if name == "--no-index":
        return FileOptions(no_index=True)
    if name == "--pre":
        return FileOptions(pre=True)
    if name == "--require-hashes":
        return FileOptions(require_hashes=True)
    if name == "--prefer-binary":
        return FileOptions(prefer_binary=True)
    raise AssertionError(f"unhandled global option {name}")


def _find_links_location(value: str, base_dir: Path) -> str:
    # pip reads a relative --find-links path from the file's directory when it exists there.
    if _URL_RE.match(value):
        return value
    relative = base_dir / value
    return str(relative.resolve()) if relative.exists() else value


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


# -- Requirements --------------------------------------------------------------


def _looks_like_location(text: str) -> bool:
    """True for a local path or a URL given instead of a project name."""
    first = text.split(";", 1)[0].strip()
    return bool(
        _URL_RE.match(first)
        or first.startswith((".", "/", "\\", "~"))
        or "/" in first
        or "\\" in first
        or re.match(r"^[A-Za-z]:", first)
    )


def wheel_reference(text: str) -> Requirement | None:
    """``name @ URL`` for a wheel given by its path or URL alone, as pip takes
    ``./dist/x-1.0-py3-none-any.whl`` or ``https://host/x-1.0-py3-none-any.whl`` (a
    ``#sha256=`` fragment and a ``; marker`` kept); None for anything else. A relative
    path is relative to the current folder, as in pip."""
    from urllib.parse import unquote, urlsplit

    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    location, has_marker, marker = text.partition(";")
    location = location.strip()
    path_part, has_fragment, fragment = location.partition("#")
    if not path_part.lower().endswith(".whl"):
        return None
    if _URL_RE.match(location):
        url = location
    else:
        path = Path(path_part).expanduser()
        if not path.is_file():
            return None
        url = path.absolute().as_uri() + (f"#{fragment}" if has_fragment else "")
    filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    try:
        name = parse_wheel_filename(filename)[0]
    except InvalidWheelFilename:
        return None
    return Requirement(f"{name} @ {url}" + (f" ; {marker.strip()}" if has_marker else ""))


def _parse_requirement(text: str) -> Requirement:
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        wheel = wheel_reference(text)
        if wheel is not None:
            return wheel
        if _looks_like_location(text):
            raise _LineError(
                f"{text.split(';', 1)[0].strip()} is no wheel file or URL: {_WHEELS_ONLY}"
            ) from error
        raise _LineError(str(error)) from error
    if requirement.url is None and requirement.name.lower().endswith(_ARCHIVE_SUFFIXES):
        raise _LineError(
            f"{requirement.name} looks like a file name; local archives are not supported: "
            f"{_WHEELS_ONLY}"
        )
    return requirement


# -- Files ---------------------------------------------------------------------


def _combine(parts: Sequence[ParsedRequirements]) -> ParsedRequirements:
    return ParsedRequirements(
        requirements=tuple(line for part in parts for line in part.requirements),
        constraints=tuple(line for part in parts for line in part.constraints),
        options=merge_options(*(part.options for part in parts)),
    )


def _parse_text(text: str, context: _Context) -> ParsedRequirements:
    parts: list[ParsedRequirements] = []
    for line_number, line in _logical_lines(text):
        if not line:
            continue
        try:
            parts.append(_parse_line(line, line_number, context))
        except _LineError as error:
            raise RequirementsFileError(context.display, line_number, line, error.reason) from error
    return _combine(parts)


def _parse_line(line: str, line_number: int, context: _Context) -> ParsedRequirements:
    expanded = _expand_env(line, context.environ)
    match = _OPTIONS_START_RE.search(expanded)
    split_at = match.start() if match else len(expanded)
    requirement_text = expanded[:split_at].strip()
    options = _split_options(expanded[split_at:])
    for option, _value in options:
        if option.kind is _Kind.UNSUPPORTED:
            raise _LineError(_unsupported_reason(option))

    if requirement_text:
        return _requirement_line(requirement_text, options, line_number, context)

    parts: list[ParsedRequirements] = []
    for option, value in options:
        if option.kind is _Kind.HASH:
            raise _LineError("--hash must follow a requirement on the same line")
        if option.kind is _Kind.INCLUDE:
            parts.append(_include(option, str(value), context))
        else:
            parts.append(ParsedRequirements(options=_apply_global(option, value, context.base_dir)))
    return _combine(parts)


def _requirement_line(
    text: str, options: list[tuple[_Option, str | None]], line_number: int, context: _Context
) -> ParsedRequirements:
    hashes: list[str] = []
    for option, value in options:
        if option.kind is not _Kind.HASH:
            raise _LineError(
                f"option {option.display} applies to the whole install; put it on a line of its own"
            )
        hashes.append(_parse_hash(str(value)))
    requirement = _parse_requirement(text)
    if context.constraint and requirement.extras:
        raise _LineError(
            "constraints cannot have extras; constrain the project without them "
            f"(write {requirement.name}{requirement.specifier} here)"
        )
    entry = RequirementLine(
        requirement=requirement,
        hashes=tuple(hashes),
        source=f"{context.display}:{line_number}",
        constraint=context.constraint,
    )
    if context.constraint:
        return ParsedRequirements(constraints=(entry,))
    return ParsedRequirements(requirements=(entry,))


def _include(option: _Option, value: str, context: _Context) -> ParsedRequirements:
    """Read a nested -r/-c file, relative to the including file's directory (or URL)."""
    url = value if _URL_RE.match(value) else None
    if url is None and context.base_url is not None:
        url = urljoin(context.base_url, value)
    if url is not None:
        display, key, base_dir = url, url, Path()
    else:
        path = context.base_dir / value
        display, key, base_dir = str(path), str(path.resolve()), path.parent
    for seen, _display in context.chain:
        if seen == key:
            cycle = " -> ".join([*(name for _key, name in context.chain), display])
            raise _LineError(f"requirements files include each other in a cycle: {cycle}")
    if url is not None:
        try:
            data = _read_url(url, context.read_url)
        except TorripError as error:
            raise _LineError(error.message) from error
    else:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise _LineError(f"could not open {display}: {error.strerror or error}") from error
    nested = _Context(
        display=display,
        base_dir=base_dir,
        # A file read through -c, and everything it includes, only constrains.
        constraint=context.constraint or option.names[-1] == "--constraint",
        environ=context.environ,
        chain=(*context.chain, (key, display)),
        read_url=context.read_url,
        base_url=url,
    )
    return _parse_text(_decode(data, display), nested)

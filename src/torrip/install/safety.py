"""Refuse unsafe wheels before anything is written.

A wheel is refused when it would write outside its scheme (``..``, absolute
paths, ``.data/<unknown>/``, script names with a path separator), when its
RECORD does not list each of its files with its size and a sha256-or-stronger
hash, or when its zip is ambiguous (duplicate names, a local header that
disagrees with the central directory, overlapping members). Tools read zips
differently; refusing the ambiguous ones means what was checked is what gets
installed.

Two steps. ``read_layout`` (or ``open_checked_wheel``, which keeps the zip open for
unpacking) checks the archive itself, whatever the environment: only the zip's directory
and headers are read, nothing is inflated; the contents are compared with RECORD's
hashes while they are unpacked (``unpacked.py``), still before the environment is
touched. ``place_wheel`` then maps the files into a scheme and checks each stays inside it.

Usage::

    check_wheel(path, environment.scheme)          # raises UnsafeWheelError
    verified = verify_wheel(path, environment.scheme)
    verified.destinations                          # every file it will write
    layout = read_layout(path)                     # the same checks, scheme-free
    verified = place_wheel(layout, environment.scheme)
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import csv
import hashlib
import io
import os
import posixpath
import re
import stat
import struct
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from pathlib import Path
from typing import IO, BinaryIO, NamedTuple, NoReturn

from installer.utils import SCHEME_NAMES, parse_entrypoints, parse_wheel_filename
from packaging.utils import canonicalize_name

from torrip.errors import UnsafeWheelError
from torrip.install.centraldir import ZipEntry, read_entries
from torrip.install.inflate import INFLATE_ERRORS, raw_inflater
from torrip.metadata import header_items

__all__ = [
    "CheckedWheel",
    "EntryPointScript",
    "ExpectedFile",
    "LayoutFile",
    "VerifiedWheel",
    "WheelLayout",
    "check_wheel",
    "member_scheme",
    "open_checked_wheel",
    "place_wheel",
    "read_layout",
    "verify_wheel",
]

# PEP 427: RECORD hashes are sha256 or stronger; md5 and sha1 are not allowed.
_RECORD_ALGORITHMS = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s"}
)
_SIGNATURE_FILES = frozenset({"RECORD.jws", "RECORD.p7s"})
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
# A path component that is empty, "." or "..": one search instead of a split per name.
_BAD_COMPONENT = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")
# What those find, in the names of a zip joined a line each between line breaks
# (``check_names``): an absolute path, then empty, "." and ".." components.
_DRIVE_LINE = re.compile(r"\n[A-Za-z]:")
_SUSPECT = (
    *("\\", "\x00", "\n/"),
    *("//", "/\n", "\n\n"),
    *("/./", "\n./", "/.\n", "\n.\n"),
    *("/../", "\n../", "/..\n", "\n..\n"),
)
# Read and inflated directly (``CheckedWheel.read``); others (bzip2, lzma) through zipfile.
_SIMPLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_pread = getattr(os, "pread", None)  # not on Windows: zipfile's reader there
# Wheels up to this size are read whole, once: their headers and members come from memory
# (no system call per member), and what was checked is exactly what is inflated.
_IN_MEMORY_LIMIT = 64 << 20
_READ_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    EOFError,
    ValueError,
    OSError,
    *INFLATE_ERRORS,
)


class ExpectedFile(NamedTuple):
    """What RECORD promises for one archive file; checked while the file is unpacked."""

    digest: str
    """RECORD's ``algo=value`` (sha256 computed here for the signature files RECORD omits)."""
    size: int
    member: str
    """The archive member's name, for messages."""


class LayoutFile(NamedTuple):
    """One file the wheel installs: where it is in the archive, where it goes, what it holds."""

    member: str
    scheme: str
    path: str
    """Its path inside the scheme's directory (``/``-separated)."""
    digest: str
    """``algo=value``: RECORD's for a wheel just checked; the sha256 of the bytes written for
    an unpacked wheel (after they matched RECORD), which is what the installed RECORD lists."""
    size: int
    executable: bool
    """The zip says so (installer's rule): the installed file gets the x bits."""


class EntryPointScript(NamedTuple):
    """A ``console_scripts`` or ``gui_scripts`` entry: a launcher the install generates."""

    name: str
    module: str
    attr: str
    section: str
    """``console`` or ``gui``."""


class WheelLayout(NamedTuple):
    """What a checked wheel holds and where each file goes, whatever the environment."""

    path: Path
    """The wheel file (for messages)."""
    name: str
    """The project name from METADATA, as its authors spell it."""
    version: str
    """The version from the file name, as the .dist-info is named."""
    dist_info: str
    root_scheme: str
    """``purelib`` or ``platlib``: where the archive root (and the .dist-info) goes."""
    data_dir: str
    """``{distribution}-{version}.data``, whose subfolders go to other schemes."""
    files: tuple[LayoutFile, ...]
    """Every file to install, in archive order; not RECORD (written anew), not bytecode."""
    scripts: tuple[EntryPointScript, ...]


class CheckedWheel(NamedTuple):
    """A wheel whose archive passed the checks, still open: what was checked is what is read.

    ``read`` inflates a member from where its checked local header says its data starts;
    the caller compares the bytes with RECORD (``unpacked.py``).
    """

    layout: WheelLayout
    archive: _Archive
    path: Path
    source: _WheelBytes
    data_offsets: Mapping[str, int]
    """Member -> where its (compressed) data starts, past the local header checked."""

    def read(self, member: str) -> bytes:
        """The member's bytes, inflated; UnsafeWheelError if they are not what the zip says.

        One ``pread`` and one inflate: zipfile's reader costs more than the inflating
        for the small files most wheels hold. Memory is bounded by the member's size.
        """
        return _read_member(self.archive, self.data_offsets, self.path, member)

    def stream(self, member: str) -> Iterator[bytes]:
        """The member's bytes in chunks of at most 1 MiB, for members too large to hold.

        UnsafeWheelError if the member is corrupt or inflates to more than the zip says;
        the caller checks the total size and hash (RECORD).
        """
        info = self.archive.by_name[member]
        size = 0
        try:
            for chunk in self._chunks(info):
                size += len(chunk)
                if size > info.file_size:
                    raise ValueError(f"inflates to more than the {info.file_size} bytes it should")
                yield chunk
        except _READ_ERRORS as error:
            raise UnsafeWheelError(self.path, member, f"corrupt zip member: {error}") from None

    def _chunks(self, info: ZipEntry) -> Iterator[bytes]:
        if not self.source.direct or info.compress_type not in _SIMPLE_METHODS:
            with self.archive.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    yield chunk
            return
        inflater = None if info.compress_type == zipfile.ZIP_STORED else raw_inflater()
        offset, remaining = self.data_offsets[info.filename], info.compress_size
        while remaining:
            data = self.source.at(offset, min(_CHUNK, remaining))
            if not data:
                raise EOFError("the wheel ends inside this member")
            offset += len(data)
            remaining -= len(data)
            if inflater is None:
                yield bytes(data)
                continue
            while data:  # bounded output: whatever does not fit waits in unconsumed_tail
                if out := inflater.decompress(data, _CHUNK):
                    yield out
                data = inflater.unconsumed_tail
        while inflater is not None and not inflater.eof:  # output still held inside
            if not (out := inflater.decompress(b"", _CHUNK)):
                break
            yield out


def _read_member(
    archive: _Archive, data_offsets: Mapping[str, int], path: Path, member: str
) -> bytes:
    """``member``'s bytes, inflated from where its checked local header says they start
    (``data_offsets``); through zipfile for other methods than stored and deflated."""
    info = archive.by_name[member]
    try:
        if not archive.source.direct or info.compress_type not in _SIMPLE_METHODS:
            with archive.open(info) as stream:
                data = stream.read(info.file_size + 1)
        else:
            compressed = archive.source.at(data_offsets[member], info.compress_size)
            if info.compress_type == zipfile.ZIP_STORED:
                data = bytes(compressed)
            else:
                data = raw_inflater().decompress(compressed, info.file_size + 1)
    except _READ_ERRORS as error:
        raise UnsafeWheelError(path, member, f"corrupt zip member: {error}") from None
    if len(data) != info.file_size:
        raise UnsafeWheelError(
            path,
            member,
            f"corrupt zip member: {len(data)} bytes inflated, the zip says {info.file_size}",
        )
    return data


@dataclass(frozen=True)
class VerifiedWheel:
    """A wheel placed into a scheme: every file it writes, each checked to stay inside."""

    layout: WheelLayout
    roots: Mapping[str, str]
    """Scheme -> its absolute directory."""
    targets: tuple[str, ...]
    """The absolute destination of each of ``layout.files``, in the same order."""
    destinations: frozenset[str]
    """Absolute paths (``os.path.join(abspath(scheme dir), path in scheme)``) of every file
    the install writes, scripts and metadata included."""
    tree: Path | None = None
    """Where the files were unpacked (and checked against RECORD), if they were; the install
    links or copies them from there (``unpacked.py``)."""

    @property
    def path(self) -> Path:
        return self.layout.path

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def version(self) -> str:
        return self.layout.version

    @property
    def dist_info(self) -> str:
        return self.layout.dist_info

    @property
    def root_scheme(self) -> str:
        return self.layout.root_scheme

    @cached_property
    def expected(self) -> Mapping[tuple[str, str], ExpectedFile]:
        """(scheme, path in scheme) -> what RECORD says of each archive file to install."""
        return {
            (file.scheme, file.path): ExpectedFile(file.digest, file.size, file.member)
            for file in self.layout.files
        }


def check_wheel(path: Path, scheme: Mapping[str, Path]) -> None:
    """Raise UnsafeWheelError unless ``path`` is safe to install into ``scheme``."""
    verify_wheel(path, scheme)


def verify_wheel(path: Path, scheme: Mapping[str, Path]) -> VerifiedWheel:
    """Check the wheel at ``path`` against ``scheme`` and describe what it will write.

    ``scheme`` maps purelib, platlib, headers, scripts and data to directories; the
    headers directory is the one this distribution's headers go into. Hashes are not
    computed here (except of signature files): unpacking compares them.
    """
    return place_wheel(read_layout(path), scheme)


def read_layout(path: Path) -> WheelLayout:
    """The archive checks of ``verify_wheel``, without a scheme; raises UnsafeWheelError."""
    with open_checked_wheel(path) as checked:
        return checked.layout


@contextlib.contextmanager
def open_checked_wheel(path: Path) -> Iterator[CheckedWheel]:
    """Open and check the wheel at ``path``; its zip stays open for reading in the block.

    Raises UnsafeWheelError for an unsafe or unreadable wheel (also from the block, for a
    member that cannot be read).
    """
    with contextlib.ExitStack() as stack:
        try:
            raw = stack.enter_context(path.open("rb"))
            source = _WheelBytes(raw)
            archive = stack.enter_context(_Archive(source))
            verifier = _Verifier(path, archive, source)
            layout = verifier.run()
        except UnsafeWheelError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            raise UnsafeWheelError(path, None, f"unreadable wheel: {error}") from None
        # Errors of the block are the caller's.
        yield CheckedWheel(layout, archive, path, source, verifier.data_offsets)


class _WheelBytes:
    """Byte ranges of an open wheel: from memory for a wheel read whole (up to
    ``_IN_MEMORY_LIMIT``), else by ``pread``. ``direct`` is False where neither can be
    done (no pread: zipfile reads the members then)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._fileno = raw.fileno()
        self._view: memoryview | None = None
        self.file: BinaryIO = raw
        self.size = os.fstat(self._fileno).st_size
        if self.size <= _IN_MEMORY_LIMIT:
            data = raw.read()
            self._view = memoryview(data)
            self.file = io.BytesIO(data)  # shares the bytes: zipfile reads them from here
        self.direct = self._view is not None or _pread is not None

    def at(self, offset: int, size: int) -> bytes | memoryview:
        """Up to ``size`` bytes from ``offset`` (fewer at the end of the file)."""
        if self._view is not None:
            return self._view[offset : offset + size]
        if _pread is not None:  # one system call, not a seek and a buffered read
            data: bytes = _pread(self._fileno, size, offset)
            return data
        self.file.seek(offset)
        return self.file.read(size)


class _Archive(contextlib.AbstractContextManager["_Archive"]):
    """A wheel's members, as its central directory lists them (``centraldir``; zipfile's
    ``ZipInfo`` where that leaves the zip to zipfile), and zipfile's reader, made at the
    first member that needs it (bzip2, lzma; no pread)."""

    def __init__(self, source: _WheelBytes) -> None:
        self.source = source
        self._zip: zipfile.ZipFile | None = None
        entries: Sequence[ZipEntry] | None = None
        if source.direct:
            entries = read_entries(source.at, source.size)
        if entries is None:
            self._zip = zipfile.ZipFile(source.file)
            entries = self._zip.infolist()
        self.entries = entries
        # As zipfile's NameToInfo: the last of two alike (which the checks refuse).
        self.by_name = {entry.filename: entry for entry in entries}

    def open(self, entry: ZipEntry) -> IO[bytes]:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.source.file)
        return self._zip.open(entry.filename)

    def __exit__(self, *exc_info: object) -> None:
        if self._zip is not None:
            self._zip.close()


def place_wheel(
    layout: WheelLayout, scheme: Mapping[str, Path | str], tree: Path | None = None
) -> VerifiedWheel:
    """Map ``layout`` into ``scheme``; raises UnsafeWheelError for a path that would leave it.

    ``tree`` is where the files were unpacked, if they were.
    """
    roots = {key: os.path.abspath(value) for key, value in scheme.items()}
    prefixes = {key: root.rstrip(os.sep) + os.sep for key, root in roots.items()}
    files = layout.files
    # Checked again (a layout may come from the unpacked cache's manifest), all paths in
    # one string: a path that would leave its scheme has an empty, '.' or '..' component
    # (which read_layout refused), a backslash or a NUL. Joined and enclosed by "/", every
    # component of every path lies between two slashes, and only bad paths make "//",
    # "/./" or "/../" (a regular expression takes ten times as long).
    paths = "/" + "/".join([file.path for file in files]) + "/"
    if files and any(bad in paths for bad in ("//", "/./", "/../", "\\", "\x00")):
        _refuse_outside(layout, roots)
    # What os.path.join gives for those relative names, at a tenth of the cost.
    root_scheme = layout.root_scheme
    root_prefix = prefixes[root_scheme]
    targets = [
        root_prefix + file.path if file.scheme == root_scheme else prefixes[file.scheme] + file.path
        for file in files
    ]
    generated = [os.path.join(roots["scripts"], script.name) for script in layout.scripts]
    for extra in ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD"):
        generated.append(os.path.join(roots[root_scheme], layout.dist_info, extra))
    return VerifiedWheel(layout, roots, tuple(targets), frozenset(targets + generated), tree)


def _refuse_outside(layout: WheelLayout, roots: Mapping[str, str]) -> NoReturn:
    for file in layout.files:
        path = file.path
        if _BAD_COMPONENT.search(path) or "\\" in path or "\x00" in path:
            raise UnsafeWheelError(
                layout.path, file.member, f"would be written outside {roots[file.scheme]}"
            )
    raise AssertionError("no path of the layout leaves its scheme")


def member_scheme(member: str, data_dir: str, root_scheme: str) -> tuple[str, str] | None:
    """(scheme, path in scheme) as ``installer`` maps an archive member; None for a
    ``.data/<name>/`` whose name is not a scheme."""
    if member.startswith(data_dir + "/"):
        scheme, _, relative = member[len(data_dir) + 1 :].partition("/")
        if scheme not in SCHEME_NAMES or not relative:
            return None
        return scheme, relative
    return root_scheme, member


class _Verifier:
    def __init__(self, path: Path, archive: _Archive, source: _WheelBytes) -> None:
        self.path = path
        self.archive = archive
        self.source = source
        self.data_offsets: dict[str, int] = {}

    def refuse(self, entry: str | None, reason: str) -> UnsafeWheelError:
        return UnsafeWheelError(self.path, entry, reason)

    def run(self) -> WheelLayout:
        infos = self.archive.entries
        self.check_zip_structure(infos)
        self.check_names([info.filename for info in infos])
        try:
            parsed = parse_wheel_filename(self.path.name)
        except ValueError:
            raise self.refuse(None, "not a wheel file name") from None
        dist_info = self.find_dist_info(infos, parsed.distribution)
        data_dir = f"{parsed.distribution}-{parsed.version}.data"
        root_scheme = self.read_wheel_file(dist_info)
        name = self.read_metadata_name(dist_info)
        records = self.read_record(dist_info)

        files = []
        for info in infos:
            if info.is_dir():
                continue
            member = info.filename
            expected = self.check_against_record(info, dist_info, records)
            if "__pycache__/" in member and "__pycache__" in member.split("/")[:-1]:
                continue  # installer skips these; they are still checked against RECORD
            placed = member_scheme(member, data_dir, root_scheme)
            if placed is None:
                scheme = member[len(data_dir) + 1 :].partition("/")[0]
                raise self.refuse(
                    member, f".data/{scheme}/ is not a scheme (one of {', '.join(SCHEME_NAMES)})"
                )
            if expected is None:
                continue  # RECORD itself: the install writes its own
            mode = info.external_attr >> 16
            executable = bool(mode and stat.S_ISREG(mode) and mode & 0o111)
            files.append(LayoutFile(member, *placed, expected.digest, expected.size, executable))
        return WheelLayout(
            path=self.path,
            name=name,
            version=parsed.version,
            dist_info=dist_info,
            root_scheme=root_scheme,
            data_dir=data_dir,
            files=tuple(files),
            scripts=tuple(self.scripts(dist_info)),
        )

    # -- the zip itself ----------------------------------------------------

    def check_zip_structure(self, infos: Sequence[ZipEntry]) -> None:
        if len(self.archive.by_name) != len(infos):  # two members of the same name
            counts = Counter(info.filename for info in infos)
            duplicate = next(name for name, count in counts.items() if count > 1)
            raise self.refuse(duplicate, "the zip holds two members with the same name")
        end_of_previous = 0
        previous = None
        for info in sorted(infos, key=attrgetter("header_offset")):
            if info.header_offset < end_of_previous:
                raise self.refuse(info.filename, f"zip member overlaps {previous!r}")
            name = info.orig_filename
            if name.isascii():  # nearly always; the same bytes in either encoding
                expected_name = name.encode("ascii")
            else:
                expected_name = name.encode("utf-8" if info.flag_bits & _FLAG_UTF8 else "cp437")
            # The header and the name it should hold, in one read.
            block = self.source.at(info.header_offset, _LOCAL_HEADER.size + len(expected_name))
            header = block[: _LOCAL_HEADER.size]
            if len(header) != _LOCAL_HEADER.size:
                raise self.refuse(info.filename, "zip member's local header is truncated")
            fields = _LOCAL_HEADER.unpack(header)
            signature, flags, method = fields[0], fields[3], fields[4]
            name_length, extra_length = fields[10], fields[11]
            if signature != _LOCAL_SIGNATURE:
                raise self.refuse(info.filename, "zip member has no local header")
            if info.flag_bits & _FLAG_ENCRYPTED or flags & _FLAG_ENCRYPTED:
                raise self.refuse(info.filename, "zip member is encrypted")
            local_name = block[_LOCAL_HEADER.size :]
            if name_length != len(expected_name):
                local_name = self.source.at(info.header_offset + _LOCAL_HEADER.size, name_length)
            if local_name != expected_name:
                encoding = "utf-8" if flags & _FLAG_UTF8 else "cp437"
                shown = bytes(local_name).decode(encoding, "replace")
                raise self.refuse(
                    info.filename,
                    f"zip member's local header names it {shown!r}, the central directory "
                    "names it differently",
                )
            if method != info.compress_type:
                raise self.refuse(
                    info.filename, "zip member's local header and central directory disagree"
                )
            data_offset = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
            self.data_offsets[info.filename] = data_offset
            end_of_previous = data_offset + info.compress_size
            previous = info.filename

    def check_names(self, members: list[str]) -> None:
        """``check_name`` for each of ``members``: a few substring searches over them all,
        joined a line each (1.3 us a member one by one), then one by one only if one finds
        anything (a line break in a name makes it look suspect, no more)."""
        lines = "\n".join(member[:-1] if member.endswith("/") else member for member in members)
        lines = f"\n{lines}\n"
        if any(sign in lines for sign in _SUSPECT) or _DRIVE_LINE.search(lines):
            for member in members:
                self.check_name(member)

    def check_name(self, member: str) -> None:
        if "\\" in member or "\x00" in member:
            raise self.refuse(member, "member name contains a backslash or NUL")
        if member.startswith("/") or _DRIVE.match(member):
            raise self.refuse(member, "member has an absolute path")
        if _BAD_COMPONENT.search(member[:-1] if member.endswith("/") else member):
            raise self.refuse(member, "member path has an empty, '.' or '..' component")

    # -- .dist-info --------------------------------------------------------

    def find_dist_info(self, infos: Sequence[ZipEntry], distribution: str) -> str:
        tops = {info.filename.split("/", 1)[0] for info in infos}
        found = sorted(top for top in tops if top.endswith(".dist-info"))
        if len(found) != 1:
            raise self.refuse(None, f"expected one .dist-info directory, found {found}")
        dist_info = found[0]
        if canonicalize_name(dist_info.rsplit("-", 2)[0]) != canonicalize_name(distribution):
            raise self.refuse(dist_info, "the .dist-info directory does not match the file name")
        return dist_info

    def read_member(self, member: str) -> bytes:
        """A member read as it is unpacked (after ``check_zip_structure``)."""
        if member not in self.archive.by_name:
            raise self.refuse(member, "missing from the wheel")
        return _read_member(self.archive, self.data_offsets, self.path, member)

    def read_wheel_file(self, dist_info: str) -> str:
        headers = self.read_headers(f"{dist_info}/WHEEL")
        version = headers.get("wheel-version") or ""
        if not version.startswith("1."):
            raise self.refuse(f"{dist_info}/WHEEL", f"unsupported Wheel-Version {version!r}")
        return "purelib" if headers.get("root-is-purelib") == "true" else "platlib"

    def read_metadata_name(self, dist_info: str) -> str:
        name = self.read_headers(f"{dist_info}/METADATA").get("name")
        if not name:
            raise self.refuse(f"{dist_info}/METADATA", "METADATA has no Name")
        return str(name).strip()

    def read_headers(self, member: str) -> dict[str, str]:
        """The first value of each header of ``member`` (WHEEL, METADATA), by lowercased
        name, as the email parser reads them."""
        headers: dict[str, str] = {}
        for name, value in header_items(self.read_member(member).decode("utf-8", "replace")):
            headers.setdefault(name.lower(), value)
        return headers

    def read_record(self, dist_info: str) -> dict[str, tuple[str, str, str]]:
        member = f"{dist_info}/RECORD"
        text = self.read_member(member).decode("utf-8", "replace")
        records: dict[str, tuple[str, str, str]] = {}
        for row in csv.reader(text.splitlines()):
            if not row:
                continue
            if len(row) != 3:
                raise self.refuse(member, f"RECORD row {row!r} does not have 3 fields")
            path, digest, size = row
            if path in records and records[path] != (path, digest, size):
                raise self.refuse(path, "listed twice in RECORD, differently")
            records[path] = (path, digest, size)
        return records

    def check_against_record(
        self, info: ZipEntry, dist_info: str, records: Mapping[str, tuple[str, str, str]]
    ) -> ExpectedFile | None:
        """Check ``info``'s RECORD row (listed, hash algorithm, size); what the write must find.

        The hash itself is compared when the file is written. None for RECORD itself (never
        installed as is); signature files, which RECORD cannot list, get their sha256 here
        so the install can check them too.
        """
        member = info.filename
        directory, _, file_name = member.rpartition("/")
        if directory == dist_info and file_name == "RECORD":
            return None
        if directory == dist_info and file_name in _SIGNATURE_FILES:
            if member in records:
                raise self.refuse(member, "a signature file must not be listed in RECORD")
            digest, size = self.hash_member(info, "sha256")
            return ExpectedFile(f"sha256={digest}", size, member)
        row = records.get(member)
        if row is None:
            raise self.refuse(member, "not listed in RECORD")
        _, digest, size_text = row
        algorithm, _, expected = digest.partition("=")
        if algorithm not in _RECORD_ALGORITHMS or not expected:
            raise self.refuse(member, f"RECORD hash {digest!r} is not sha256 or stronger")
        if not size_text.isdigit() or int(size_text) != info.file_size:
            raise self.refuse(
                member, f"size is {info.file_size} bytes, RECORD says {size_text or 'nothing'}"
            )
        return ExpectedFile(digest, info.file_size, member)

    def hash_member(self, info: ZipEntry, algorithm: str) -> tuple[str, int]:
        """(urlsafe-base64 digest without padding, size) of the member's uncompressed bytes."""
        hasher = hashlib.new(algorithm)
        size = 0
        try:
            with self.archive.open(info) as stream:
                while chunk := stream.read(_CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise self.refuse(info.filename, f"corrupt zip member: {error}") from None
        return base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode("ascii"), size

    # -- destinations ------------------------------------------------------

    def scripts(self, dist_info: str) -> list[EntryPointScript]:
        member = f"{dist_info}/entry_points.txt"
        if member not in self.archive.by_name:
            return []
        text = self.read_member(member).decode("utf-8", "replace")
        try:
            entries = list(parse_entrypoints(text))
        except (configparser.Error, AssertionError) as error:
            raise self.refuse(member, f"invalid entry_points.txt: {error}") from None
        scripts = []
        for name, module, attr, section in entries:
            if (
                not name
                or name in (".", "..")
                or any(char in name for char in "/\\\x00")
                or posixpath.isabs(name)
            ):
                raise self.refuse(member, f"script name {name!r} is not a plain file name")
            scripts.append(EntryPointScript(name, module, attr, section))
        return scripts

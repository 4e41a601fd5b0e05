"""A wheel's METADATA without its PEP 658 file: read with range requests, else downloaded.

A wheel is a zip, and a zip is read from its end: the end of central directory
record points at the central directory, which lists every member with the
offset of its local header. So two small range requests usually suffice: one
for the tail of the file (EOCD and central directory), one for the local header
and compressed bytes of ``{name}-{version}.dist-info/METADATA``. When the
server cannot serve ranges, or the zip is one this reader does not handle,
the whole wheel is downloaded (hash-checked) and read with :mod:`zipfile`.

Example::

    result = fetch_wheel_metadata(client, link.url, link.filename,
                                  expected_sha256=link.sha256, size_hint=link.size)
    output.detail(f"metadata of {link.filename}: {result.method}, "
                  f"{result.bytes_fetched} bytes in {result.requests} requests")
"""

from __future__ import annotations

import hashlib
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Literal, NamedTuple

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from torrip.errors import HashMismatchError, HTTPStatusError, MetadataError
from torrip.http import http_errors, raise_for_status

if TYPE_CHECKING:
    import httpx

__all__ = ["TAIL_SIZE", "WheelMetadataResult", "fetch_wheel_metadata"]

# Covers the EOCD and central directory of all but the largest wheels in one request.
TAIL_SIZE = 64 * 1024
# Local headers may carry extra fields the central directory does not repeat.
_LOCAL_EXTRA_SLACK = 512
# A full download stays in memory up to this size, then spills to a temporary file.
_SPOOL_SIZE = 16 * 1024 * 1024

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
_CENTRAL_HEADER = struct.Struct("<4s6H3L5H2L")
_CENTRAL_HEADER_SIGNATURE = b"PK\x01\x02"
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_ZIP64_EXTRA_ID = 0x0001

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


class WheelMetadataResult(NamedTuple):
    """The METADATA bytes of a wheel, and what it cost to get them."""

    metadata: bytes
    method: Literal["range", "full"]  # how it was obtained, shown in -v output by the caller
    bytes_fetched: int
    requests: int
    # Why the range path was given up ("server ignored Range", ...); None on the range path.
    fallback_reason: str | None = None


def fetch_wheel_metadata(
    client: httpx.Client,
    url: str,
    filename: str,
    *,
    expected_sha256: str | None = None,
    size_hint: int | None = None,
) -> WheelMetadataResult:
    """Read ``*.dist-info/METADATA`` of the wheel at ``url``, by ranges if the server allows.

    ``expected_sha256`` is checked only when the whole wheel is downloaded; metadata read
    by ranges is not hash-checked here (see :func:`_read_metadata_by_ranges`).
    ``size_hint`` (the size the index gave) lets a wheel no bigger than one tail request
    be downloaded whole at once, which costs the same and is hash-checked.

    Raises MetadataError if the wheel is malformed, HashMismatchError if a full download
    does not match ``expected_sha256``, and NetworkError/HTTPStatusError for HTTP trouble.
    """
    name, version = _parse_filename(url, filename)
    wheel = _RemoteWheel(client, url, filename, expected_sha256)
    if size_hint is not None and size_hint <= TAIL_SIZE:
        reason = f"the wheel is small ({size_hint} bytes)"
        return _from_full_download(wheel, wheel.download(), name, version, reason)
    try:
        metadata = _read_metadata_by_ranges(wheel, name, version)
    except _RangesUnusable as exc:
        downloaded = exc.downloaded if exc.downloaded is not None else wheel.download()
        return _from_full_download(wheel, downloaded, name, version, exc.reason)
    return WheelMetadataResult(
        metadata=metadata,
        method="range",
        bytes_fetched=wheel.bytes_fetched,
        requests=wheel.requests,
    )


class _RangesUnusable(Exception):
    """The range path cannot go on; the whole wheel must be read instead.

    ``downloaded`` holds the whole, hash-checked wheel when the server already sent it
    (it answered a range request with 200), so it is not requested a second time.
    """

    def __init__(self, reason: str, downloaded: IO[bytes] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.downloaded = downloaded


class _Member(NamedTuple):
    """One entry of the central directory (a tuple: a wheel may have tens of thousands)."""

    raw_name: bytes
    name: str
    flags: int
    method: int
    crc32: int
    compressed_size: int
    size: int
    header_offset: int
    extra_length: int


class _RemoteWheel:
    """The wheel at a URL, read piece by piece with range requests; keeps what it fetched."""

    def __init__(
        self, client: httpx.Client, url: str, filename: str, expected_sha256: str | None
    ) -> None:
        self.client = client
        self.url = url
        self.filename = filename
        self.expected_sha256 = expected_sha256.lower() if expected_sha256 else None
        self.size = 0  # known after read_tail()
        self.requests = 0
        self.bytes_fetched = 0
        self._etag: str | None = None
        self._chunks: list[tuple[int, bytes]] = []  # (offset, bytes), in fetch order

    def read_tail(self, length: int) -> tuple[int, bytes]:
        """Fetch the last ``length`` bytes (fewer if the file is smaller): (offset, bytes)."""
        start, data = self._get_range(f"-{length}", None)
        self._chunks.append((start, data))
        return start, data

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, fetching only the part not already held."""
        if start < 0 or end > self.size or start > end:
            raise _RangesUnusable(f"the zip points outside the file (bytes {start}-{end})")
        if start == end:
            return b""
        for offset, data in self._chunks:
            if offset <= start and end <= offset + len(data):
                return data[start - offset : end - offset]
        for index, (offset, data) in enumerate(self._chunks):
            chunk_end = offset + len(data)
            if offset <= start < chunk_end:  # the head is held: fetch the rest
                _, rest = self._get_range(f"{chunk_end}-{end - 1}", (chunk_end, end - 1))
                self._chunks[index] = (offset, data + rest)
                return (data + rest)[start - offset :]
            if start < offset < end <= chunk_end:  # the tail is held: fetch the head
                _, head = self._get_range(f"{start}-{offset - 1}", (start, offset - 1))
                self._chunks[index] = (start, head + data)
                return (head + data)[: end - start]
        _, data = self._get_range(f"{start}-{end - 1}", (start, end - 1))
        self._chunks.append((start, data))
        return data

    def download(self) -> IO[bytes]:
        """GET the whole wheel and return it, rewound, after checking its hash."""
        with http_errors(self.url), self.client.stream("GET", self.url) as response:
            self.requests += 1
            try:
                raise_for_status(response)
                if response.status_code != 200:
                    raise HTTPStatusError(str(response.request.url), response.status_code)
                return self._receive_whole(response)
            finally:
                self.bytes_fetched += response.num_bytes_downloaded

    def _get_range(self, spec: str, wanted: tuple[int, int] | None) -> tuple[int, bytes]:
        """One request for ``bytes={spec}``: (offset, bytes).

        ``wanted`` is the (first, last) byte the answer must span; None for a suffix range,
        whose answer must end at the end of the file.
        """
        # identity: a range of a gzip-encoded body would be a range of the gzip stream.
        headers = {"Range": f"bytes={spec}", "Accept-Encoding": "identity"}
        if self._etag is not None:
            # If the file changed since the first request, the server sends all of it (200).
            headers["If-Range"] = self._etag
        with (
            http_errors(self.url),
            self.client.stream("GET", self.url, headers=headers) as response,
        ):
            self.requests += 1
            try:
                return self._accept_range(response, spec, wanted)
            finally:
                self.bytes_fetched += response.num_bytes_downloaded

    def _accept_range(
        self, response: httpx.Response, spec: str, wanted: tuple[int, int] | None
    ) -> tuple[int, bytes]:
        status = response.status_code
        if status == 200:
            if self._chunks:  # an earlier range was served: If-Range found the file changed
                reason = "the file changed between range requests"
            else:
                reason = "the server ignored the Range header"
            raise _RangesUnusable(reason, self._receive_whole(response))
        if status in (416, 501):
            raise _RangesUnusable(f"the server answered HTTP {status} to a range request")
        raise_for_status(response)
        if status != 206:
            raise _RangesUnusable(f"the server answered HTTP {status} to a range request")
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is None or match[3] == "*":
            raise _RangesUnusable("the server sent no usable Content-Range")
        first, last, total = int(match[1]), int(match[2]), int(match[3])
        if self._chunks and total != self.size:
            raise _RangesUnusable("the file changed between range requests")
        if last < first or (first, last) != (wanted or (first, total - 1)):
            raise _RangesUnusable(f"the server sent bytes {first}-{last} for bytes={spec}")
        etag = response.headers.get("ETag")
        if not self._chunks and etag and not etag.startswith("W/"):  # If-Range needs strong
            self._etag = etag
        self.size = total
        return first, self._read_exactly(response, last - first + 1)

    @staticmethod
    def _read_exactly(response: httpx.Response, length: int) -> bytes:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > length:
                raise _RangesUnusable("the server sent more bytes than the range it announced")
        if len(body) != length:
            raise _RangesUnusable("the server sent fewer bytes than the range it announced")
        return bytes(body)

    def _receive_whole(self, response: httpx.Response) -> IO[bytes]:
        sink: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_SIZE)  # noqa: SIM115
        try:
            digest = hashlib.sha256()
            for chunk in response.iter_bytes():
                digest.update(chunk)
                sink.write(chunk)
            actual = digest.hexdigest()
            if self.expected_sha256 is not None and actual != self.expected_sha256:
                raise HashMismatchError(
                    f"wheel {self.filename}", self.url, "sha256", self.expected_sha256, actual
                )
            sink.seek(0)
        except BaseException:
            sink.close()
            raise
        return sink


def _read_metadata_by_ranges(wheel: _RemoteWheel, name: str, version: Version) -> bytes:
    """METADATA from the tail request plus (usually) one request for the member.

    The bytes are NOT checked against the wheel's sha256: that hash covers the whole
    file, which this path never has. That is acceptable because the metadata only
    guides resolution; at install time the full wheel is hash-checked and its own
    METADATA is compared with what the resolver used.
    """
    tail_start, tail = wheel.read_tail(TAIL_SIZE)
    cd_start, cd_end, count = _locate_central_directory(wheel, tail_start, tail)
    members = _parse_central_directory(wheel.read(cd_start, cd_end), count)
    # The central directory is authoritative: a wheel it shows to be malformed is
    # reported now, without downloading the whole file to find the same thing.
    wanted = _metadata_member_name([m.name for m in members], wheel.url, name, version)
    member = next(m for m in members if m.name == wanted)
    later = [m.header_offset for m in members if m.header_offset > member.header_offset]
    return _read_member(wheel, member, min(later, default=cd_start))


def _locate_central_directory(
    wheel: _RemoteWheel, tail_start: int, tail: bytes
) -> tuple[int, int, int]:
    """(start, end, number of entries) of the central directory, from the EOCD records."""
    eocd_at = _find_eocd(tail)
    if eocd_at is None:
        raise _RangesUnusable("no end of central directory record in the tail of the file")
    eocd_offset = tail_start + eocd_at
    (_, disk, cd_disk, _, count, cd_size, cd_start, _) = _EOCD.unpack_from(tail, eocd_at)
    directory_end = eocd_offset
    if eocd_offset >= _ZIP64_LOCATOR.size:
        locator = wheel.read(eocd_offset - _ZIP64_LOCATOR.size, eocd_offset)
        signature, record_disk, record_offset, disks = _ZIP64_LOCATOR.unpack(locator)
        if signature == _ZIP64_LOCATOR_SIGNATURE:
            if record_disk != 0 or disks > 1:
                raise _RangesUnusable("a multi-disk zip")
            if record_offset + _ZIP64_EOCD.size > eocd_offset - _ZIP64_LOCATOR.size:
                raise _RangesUnusable("the zip64 locator points past itself")
            record = wheel.read(record_offset, record_offset + _ZIP64_EOCD.size)
            (signature, _, _, _, disk, cd_disk, _, count, cd_size, cd_start) = _ZIP64_EOCD.unpack(
                record
            )
            if signature != _ZIP64_EOCD_SIGNATURE:
                raise _RangesUnusable("no zip64 end of central directory record")
            directory_end = record_offset
    if disk != 0 or cd_disk != 0:
        raise _RangesUnusable("a multi-disk zip")
    if cd_start + cd_size != directory_end:
        # Data before the zip (a self-extractor) shifts every offset; zipfile copes.
        raise _RangesUnusable("the central directory is not where the EOCD says")
    return cd_start, directory_end, count


def _find_eocd(tail: bytes) -> int | None:
    """Offset in ``tail`` of the EOCD record whose comment ends exactly at the end of file."""
    end = len(tail)
    while (at := tail.rfind(_EOCD_SIGNATURE, 0, end)) != -1:
        if len(tail) - at >= _EOCD.size:
            comment_length = _EOCD.unpack_from(tail, at)[-1]
            if at + _EOCD.size + comment_length == len(tail):
                return at
        end = at
    return None


def _parse_central_directory(directory: bytes, count: int) -> list[_Member]:
    members = []
    at = 0
    while at < len(directory):
        if len(directory) - at < _CENTRAL_HEADER.size:
            raise _RangesUnusable("a truncated central directory")
        (
            signature,
            _,
            _,
            flags,
            method,
            _,
            _,
            crc32,
            compressed_size,
            size,
            name_length,
            extra_length,
            comment_length,
            _,
            _,
            _,
            header_offset,
        ) = _CENTRAL_HEADER.unpack_from(directory, at)
        if signature != _CENTRAL_HEADER_SIGNATURE:
            raise _RangesUnusable("a bad central directory entry")
        at += _CENTRAL_HEADER.size
        raw_name = directory[at : at + name_length]
        extra_at = at + name_length
        at += name_length + extra_length + comment_length
        if at > len(directory):
            raise _RangesUnusable("a truncated central directory")
        if 0xFFFFFFFF in (size, compressed_size, header_offset):  # else nothing to apply
            extra = directory[extra_at : extra_at + extra_length]
            size, compressed_size, header_offset = _apply_zip64_extra(
                extra, size, compressed_size, header_offset
            )
        try:
            # Like zipfile: UTF-8 when flag bit 11 says so, else the historical cp437.
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        except UnicodeDecodeError:
            raise _RangesUnusable("a member name that is not valid UTF-8") from None
        members.append(
            _Member(
                raw_name,
                name,
                flags,
                method,
                crc32,
                compressed_size,
                size,
                header_offset,
                extra_length,
            )
        )
    if len(members) != count:
        raise _RangesUnusable(f"the EOCD counts {count} entries, the directory has {len(members)}")
    return members


def _apply_zip64_extra(
    extra: bytes, size: int, compressed_size: int, header_offset: int
) -> tuple[int, int, int]:
    """Replace the 0xFFFFFFFF fields by the 64-bit values of the zip64 extra field."""
    at = 0
    while at + 4 <= len(extra):
        field_id, length = struct.unpack_from("<2H", extra, at)
        body = extra[at + 4 : at + 4 + length]
        at += 4 + length
        if field_id != _ZIP64_EXTRA_ID:
            continue
        # The 64-bit values appear in this order, each only if its 32-bit field is saturated.
        values = iter(struct.unpack_from(f"<{len(body) // 8}Q", body))
        try:
            if size == 0xFFFFFFFF:
                size = next(values)
            if compressed_size == 0xFFFFFFFF:
                compressed_size = next(values)
            if header_offset == 0xFFFFFFFF:
                header_offset = next(values)
        except StopIteration:
            raise _RangesUnusable("a truncated zip64 extra field") from None
        break
    return size, compressed_size, header_offset


def _read_member(wheel: _RemoteWheel, member: _Member, limit: int) -> bytes:
    """Decompress ``member``, whose local header, data and descriptor end before ``limit``."""
    if member.flags & 0x1:
        raise _RangesUnusable(f"{member.name} is encrypted")
    if member.method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _RangesUnusable(f"{member.name} uses compression method {member.method}")
    start = member.header_offset
    # Guess the local extra field from the central one so that one request usually suffices.
    guess = (
        _LOCAL_HEADER.size
        + len(member.raw_name)
        + member.extra_length
        + _LOCAL_EXTRA_SLACK
        + member.compressed_size
    )
    header = wheel.read(start, min(start + guess, max(limit, start + _LOCAL_HEADER.size)))
    signature, *_, name_length, extra_length = _LOCAL_HEADER.unpack_from(header)
    if signature != _LOCAL_HEADER_SIGNATURE:
        raise _RangesUnusable(f"no local header for {member.name}")
    data_start = start + _LOCAL_HEADER.size + name_length + extra_length
    data_end = data_start + member.compressed_size
    if data_end > limit:
        raise _RangesUnusable(f"the data of {member.name} overlaps the next entry")
    local_name = wheel.read(start + _LOCAL_HEADER.size, start + _LOCAL_HEADER.size + name_length)
    if local_name != member.raw_name:
        raise _RangesUnusable(f"the local header of {member.name} names another file")
    data = wheel.read(data_start, data_end)
    content = data if member.method == zipfile.ZIP_STORED else _inflate(data, member.size)
    if len(content) != member.size:
        raise _RangesUnusable(f"{member.name} does not have the size the directory says")
    if zlib.crc32(content) != member.crc32:
        raise _RangesUnusable(f"bad CRC-32 for {member.name}")
    return content


def _inflate(data: bytes, size: int) -> bytes:
    """Raw deflate, never producing more than ``size + 1`` bytes (a bomb stops there)."""
    decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        content = decompressor.decompress(data, size + 1)
        while not decompressor.eof and decompressor.unconsumed_tail and len(content) <= size:
            content += decompressor.decompress(
                decompressor.unconsumed_tail, size + 1 - len(content)
            )
    except zlib.error as exc:
        raise _RangesUnusable(f"bad deflate data ({exc})") from None
    if not decompressor.eof:
        raise _RangesUnusable("truncated deflate data")
    return content


def _from_full_download(
    wheel: _RemoteWheel, downloaded: IO[bytes], name: str, version: Version, reason: str
) -> WheelMetadataResult:
    with downloaded:
        try:
            with zipfile.ZipFile(downloaded) as archive:
                wanted = _metadata_member_name(archive.namelist(), wheel.url, name, version)
                metadata = archive.read(wanted)
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            NotImplementedError,
            RuntimeError,
            ValueError,
        ) as exc:
            raise _malformed(wheel.url, f"it is not a valid zip ({exc})") from None
    return WheelMetadataResult(
        metadata=metadata,
        method="full",
        bytes_fetched=wheel.bytes_fetched,
        requests=wheel.requests,
        fallback_reason=reason,
    )


def _metadata_member_name(names: Sequence[str], url: str, name: str, version: Version) -> str:
    """The one ``{name}-{version}.dist-info/METADATA`` matching the wheel's filename."""
    dist_info_dirs = sorted(
        {
            n.split("/", 1)[0]
            for n in names
            if "/" in n and n.split("/", 1)[0].endswith(".dist-info")
        }
    )
    if not dist_info_dirs:
        raise _malformed(url, "it has no .dist-info directory")
    if len(dist_info_dirs) > 1:
        # pip and installer refuse such a wheel too: which METADATA is the wheel's is ambiguous.
        raise _malformed(url, f"it has several .dist-info directories: {', '.join(dist_info_dirs)}")
    dist_info = dist_info_dirs[0]
    dir_name, _, dir_version = dist_info.removesuffix(".dist-info").rpartition("-")
    if canonicalize_name(dir_name) != name or not _same_version(dir_version, version):
        raise _malformed(url, f"its {dist_info} does not match the filename ({name} {version})")
    wanted = f"{dist_info}/METADATA"
    found = names.count(wanted)
    if found == 0:
        raise _malformed(url, f"it has no {wanted}")
    if found > 1:
        raise _malformed(url, f"it has {found} members named {wanted}")
    return wanted


def _same_version(text: str, version: Version) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return False


def _parse_filename(url: str, filename: str) -> tuple[str, Version]:
    try:
        name, version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise _malformed(url, f"{filename!r} is not a valid wheel filename ({exc})") from None
    return name, version


def _malformed(url: str, reason: str) -> MetadataError:
    return MetadataError(
        f"cannot read the metadata of the wheel {url}: {reason}",
        hint="The wheel is malformed; report it to the project's maintainers, "
        "or pin another version.",
    )

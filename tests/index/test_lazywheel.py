"""fetch_wheel_metadata against a real HTTP server on 127.0.0.1 serving real wheels."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from torrip.connections import StdlibTransport
from torrip.errors import HashMismatchError, HTTPStatusError, MetadataError, NetworkError
from torrip.index import lazywheel
from torrip.index.lazywheel import TAIL_SIZE, fetch_wheel_metadata

METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: attrs>=22\n\n"
FILENAME = "demo-1.0-py3-none-any.whl"


# --- the server -----------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    range: str | None
    if_range: str | None


@dataclass
class WheelServer:
    """Serves ``files`` by name; ``mode`` says how it treats Range headers."""

    base_url: str
    files: dict[str, bytes] = field(default_factory=dict)
    # "ranges": honours them; "ignore": answers 200; "416"/"501": refuses them;
    # "no-content-range": answers 206 without a Content-Range header.
    mode: str = "ranges"
    # Served in place of FILENAME from the second request on: a release re-uploaded mid-read.
    replacement: bytes | None = None
    seen: list[Seen] = field(default_factory=list)

    def url(self, name: str = FILENAME) -> str:
        return f"{self.base_url}/{name}"

    def add(self, data: bytes, name: str = FILENAME) -> str:
        self.files[name] = data
        return self.url(name)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: WheelServer  # set on a per-server subclass

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state = self.state
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        state.seen.append(Seen(self.path, range_header, if_range))
        if state.replacement is not None and len(state.seen) == 2:
            state.files[FILENAME] = state.replacement
        body = state.files.get(self.path.lstrip("/"))
        if body is None:
            return self._send(404, b"not found")
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if range_header is None or state.mode == "ignore" or (if_range and if_range != etag):
            return self._send(200, body, {"ETag": etag})
        if state.mode in ("416", "501"):
            return self._send(int(state.mode), b"")
        span = _parse_range(range_header, len(body))
        if span is None:
            return self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
        first, last = span
        headers = {"ETag": etag}
        if state.mode != "no-content-range":
            headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
        self._send(206, body[first : last + 1], headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # suffix: the last N bytes
        length = int(match[2])
        return (max(0, size - length), size - 1) if length and size else None
    first = int(match[1])
    last = min(int(match[2]) if match[2] else size - 1, size - 1)
    return (first, last) if first <= last else None


@pytest.fixture
def server() -> Iterator[WheelServer]:
    class Handler(_Handler):
        pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    state = WheelServer(base_url=f"http://{host!s}:{port}")
    Handler.state = state
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy from the environment must not see loopback requests.
    with httpx.Client(transport=StdlibTransport(tls=None), trust_env=False, timeout=10) as client:
        yield client


# --- the wheels -----------------------------------------------------------------------


def make_wheel(
    tmp_path: Path,
    *,
    payload: dict[str, bytes] | None = None,
    dist_info_first: bool = True,
    dist_info: str = "demo-1.0.dist-info",
    metadata: bytes | None = METADATA,
    metadata_compression: int = zipfile.ZIP_DEFLATED,
    metadata_zip64: bool = False,
    extra_dist_info: str | None = None,
) -> bytes:
    """A real wheel built with zipfile; ``payload`` members are stored uncompressed."""
    path = tmp_path / FILENAME
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def write_dist_info() -> None:
            if metadata is not None:
                info = zipfile.ZipInfo(f"{dist_info}/METADATA")
                info.compress_type = metadata_compression
                with archive.open(info, "w", force_zip64=metadata_zip64) as member:
                    member.write(metadata)
            archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
            if extra_dist_info is not None:
                archive.writestr(f"{extra_dist_info}/METADATA", METADATA)
            archive.writestr(f"{dist_info}/RECORD", "")

        if dist_info_first:
            write_dist_info()
        for name, data in (payload or {"demo/__init__.py": b"x = 1\n"}).items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)
        if not dist_info_first:
            write_dist_info()
    return path.read_bytes()


def random_payload(size: int) -> dict[str, bytes]:
    return {"demo/_native.so": os.urandom(size)}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the range path -------------------------------------------------------------------


def test_normal_wheel_takes_two_range_requests(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, payload=random_payload(300_000))
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    assert result.method == "range"
    assert result.fallback_reason is None
    assert result.requests == 2
    assert server.seen[0].range == f"bytes=-{TAIL_SIZE}"
    assert all(s.range for s in server.seen)
    assert result.bytes_fetched < TAIL_SIZE + 2_000


def test_large_wheel_fetches_a_small_fraction(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, payload=random_payload(8 * 1024 * 1024))
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME, size_hint=len(wheel))

    assert result.metadata == METADATA
    assert (result.method, result.requests) == ("range", 2)
    assert result.bytes_fetched * 50 < len(wheel)


def test_metadata_inside_the_tail_takes_one_request(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    # bdist_wheel and most builders write the .dist-info last, so the tail usually holds it.
    wheel = make_wheel(tmp_path, payload=random_payload(500_000), dist_info_first=False)
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    assert (result.method, result.requests) == ("range", 1)
    assert result.bytes_fetched == TAIL_SIZE


def test_wheel_smaller_than_the_tail_takes_one_request(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path)
    assert len(wheel) < TAIL_SIZE
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    assert (result.method, result.requests, result.bytes_fetched) == ("range", 1, len(wheel))


def test_big_central_directory_fetches_the_missing_part(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    payload = {f"demo/module_{i:05d}.py": b"" for i in range(5000)}
    wheel = make_wheel(tmp_path, payload=payload)
    with zipfile.ZipFile(tmp_path / FILENAME) as archive:
        directory_size = sum(46 + len(i.filename) + len(i.extra) for i in archive.infolist())
    assert directory_size > 3 * TAIL_SIZE
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    # The tail, the rest of the central directory, the METADATA member.
    assert (result.method, result.requests) == ("range", 3)
    assert result.bytes_fetched < directory_size + TAIL_SIZE


def test_zip64(
    server: WheelServer, client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lower zipfile's limits so a small wheel gets a zip64 EOCD record and locator, and
    # zip64 extra fields for sizes and offsets in the central directory.
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZIP64_LIMIT", 1000)
        patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
        wheel = make_wheel(tmp_path, payload=random_payload(200_000), metadata_zip64=True)
    assert b"PK\x06\x06" in wheel[-TAIL_SIZE:] and b"PK\x06\x07" in wheel[-TAIL_SIZE:]
    with zipfile.ZipFile(tmp_path / FILENAME) as archive:
        assert archive.read("demo-1.0.dist-info/METADATA") == METADATA
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    assert (result.method, result.requests) == ("range", 2)


def test_metadata_forced_zip64_local_header(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    # force_zip64 puts a zip64 extra field in the local header only; its length is read.
    wheel = make_wheel(tmp_path, payload=random_payload(200_000), metadata_zip64=True)
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    assert (result.method, result.requests) == ("range", 2)


def test_stored_metadata(server: WheelServer, client: httpx.Client, tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path, payload=random_payload(200_000), metadata_compression=zipfile.ZIP_STORED
    )
    assert METADATA in wheel
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    assert (result.method, result.requests) == ("range", 2)


def test_metadata_partly_in_the_tail_fetches_only_the_rest(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    # A long description, stored, starting before the tail and ending inside it.
    metadata = METADATA + os.urandom(100_000).hex().encode()
    wheel = make_wheel(
        tmp_path,
        payload=random_payload(200_000),
        dist_info_first=False,
        metadata=metadata,
        metadata_compression=zipfile.ZIP_STORED,
    )
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == metadata
    assert (result.method, result.requests) == ("range", 2)
    assert result.bytes_fetched < len(metadata) + 1_000


def test_local_extra_longer_than_guessed(
    server: WheelServer, client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # force_zip64 adds a 20-byte extra field to the local header only; with no slack the
    # first member request falls short and the missing bytes are fetched.
    monkeypatch.setattr(lazywheel, "_LOCAL_EXTRA_SLACK", 0)
    wheel = make_wheel(tmp_path, payload=random_payload(200_000), metadata_zip64=True)
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    assert (result.method, result.requests) == ("range", 3)


def test_names_and_versions_compare_normalized(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    wheel = make_wheel(
        tmp_path, dist_info="Demo.Pkg-1.0.0.dist-info", payload=random_payload(100_000)
    )
    url = server.add(wheel, "demo_pkg-1.0-py3-none-any.whl")

    result = fetch_wheel_metadata(client, url, "demo_pkg-1.0-py3-none-any.whl")

    assert (result.metadata, result.method) == (METADATA, "range")


def test_range_path_does_not_check_the_hash(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    # The hash covers the whole file; the installer checks it (and METADATA) at install time.
    wheel = make_wheel(tmp_path, payload=random_payload(200_000))
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME, expected_sha256="0" * 64)

    assert (result.metadata, result.method) == (METADATA, "range")


def test_later_requests_send_if_range(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, payload=random_payload(200_000))
    url = server.add(wheel)

    fetch_wheel_metadata(client, url, FILENAME)

    assert server.seen[0].if_range is None
    assert server.seen[1].if_range == f'"{sha256(wheel)[:16]}"'


def test_zip64_with_more_than_65535_members(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    # A real zip64 archive, as zipfile writes it past 65,535 members: no patched limits.
    wheel = make_wheel(tmp_path, payload={f"demo/{i}.py": b"" for i in range(66_000)})
    assert b"PK\x06\x06" in wheel[-TAIL_SIZE:]
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert result.metadata == METADATA
    assert (result.method, result.requests) == ("range", 3)


# --- the full download ----------------------------------------------------------------


def test_server_ignoring_range_body_is_used(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    server.mode = "ignore"
    wheel = make_wheel(tmp_path, payload=random_payload(200_000))
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME, expected_sha256=sha256(wheel).upper())

    assert result.metadata == METADATA
    assert (result.method, result.requests, result.bytes_fetched) == ("full", 1, len(wheel))
    assert result.fallback_reason == "the server ignored the Range header"


@pytest.mark.parametrize("mode", ["416", "501", "no-content-range"])
def test_refused_ranges_fall_back_to_one_download(
    server: WheelServer, client: httpx.Client, tmp_path: Path, mode: str
) -> None:
    server.mode = mode
    wheel = make_wheel(tmp_path, payload=random_payload(200_000))
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME, expected_sha256=sha256(wheel))

    assert result.metadata == METADATA
    assert (result.method, result.requests) == ("full", 2)
    assert [s.range is None for s in server.seen] == [False, True]


def test_file_changed_between_requests(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    old = make_wheel(tmp_path, payload=random_payload(200_000))
    new_metadata = METADATA.replace(b"attrs>=22", b"attrs>=23")
    new = make_wheel(tmp_path, payload=random_payload(200_000), metadata=new_metadata)
    url = server.add(old)
    server.replacement = new

    result = fetch_wheel_metadata(client, url, FILENAME, expected_sha256=sha256(new))

    # If-Range made the server send the new file whole: no mix of old and new bytes.
    assert (result.metadata, result.method, result.requests) == (new_metadata, "full", 2)
    assert result.fallback_reason == "the file changed between range requests"


def test_hash_mismatch_on_the_full_path(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    server.mode = "416"
    wheel = make_wheel(tmp_path, payload=random_payload(200_000))
    url = server.add(wheel)

    with pytest.raises(HashMismatchError) as caught:
        fetch_wheel_metadata(client, url, FILENAME, expected_sha256="ab" * 32)

    assert (caught.value.url, caught.value.algorithm) == (url, "sha256")
    assert (caught.value.expected, caught.value.actual) == ("ab" * 32, sha256(wheel))


def test_hash_mismatch_when_the_server_ignores_range(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    server.mode = "ignore"
    url = server.add(make_wheel(tmp_path))

    with pytest.raises(HashMismatchError):
        fetch_wheel_metadata(client, url, FILENAME, expected_sha256="ab" * 32)
    assert len(server.seen) == 1


def test_small_size_hint_downloads_whole_and_checks_the_hash(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path)
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME, size_hint=len(wheel))
    assert (result.metadata, result.method, result.requests) == (METADATA, "full", 1)
    assert server.seen[0].range is None
    with pytest.raises(HashMismatchError):
        fetch_wheel_metadata(client, url, FILENAME, size_hint=len(wheel), expected_sha256="0" * 64)


def test_unsupported_compression_falls_back(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    wheel = make_wheel(
        tmp_path, payload=random_payload(200_000), metadata_compression=zipfile.ZIP_BZIP2
    )
    url = server.add(wheel)

    result = fetch_wheel_metadata(client, url, FILENAME)

    assert (result.metadata, result.method, result.requests) == (METADATA, "full", 2)
    assert result.fallback_reason is not None and "compression method 12" in result.fallback_reason


def test_crc_mismatch_falls_back_and_is_reported(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    wheel = make_wheel(
        tmp_path, payload=random_payload(200_000), metadata_compression=zipfile.ZIP_STORED
    )
    corrupt = wheel.replace(b"attrs>=22", b"attrs>=23")
    url = server.add(corrupt)

    with pytest.raises(MetadataError, match="not a valid zip") as caught:
        fetch_wheel_metadata(client, url, FILENAME)

    assert url in str(caught.value)
    assert len(server.seen) == 3  # tail, member, whole file


def test_not_a_zip(server: WheelServer, client: httpx.Client) -> None:
    url = server.add(os.urandom(100_000))

    with pytest.raises(MetadataError, match="not a valid zip") as caught:
        fetch_wheel_metadata(client, url, FILENAME)

    assert url in str(caught.value)
    assert len(server.seen) == 2


# --- malformed wheels -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ranges", "ignore"])
def test_wheel_without_metadata(
    server: WheelServer, client: httpx.Client, tmp_path: Path, mode: str
) -> None:
    server.mode = mode
    url = server.add(make_wheel(tmp_path, payload=random_payload(100_000), metadata=None))

    with pytest.raises(MetadataError, match=r"no demo-1\.0\.dist-info/METADATA") as caught:
        fetch_wheel_metadata(client, url, FILENAME)

    assert url in str(caught.value)
    assert caught.value.hint
    assert len(server.seen) == 1  # the central directory is trusted: no download to confirm


@pytest.mark.parametrize("mode", ["ranges", "ignore"])
def test_two_dist_info_directories(
    server: WheelServer, client: httpx.Client, tmp_path: Path, mode: str
) -> None:
    server.mode = mode
    wheel = make_wheel(
        tmp_path, payload=random_payload(100_000), extra_dist_info="other-2.0.dist-info"
    )
    url = server.add(wheel)

    with pytest.raises(MetadataError, match=r"several \.dist-info directories") as caught:
        fetch_wheel_metadata(client, url, FILENAME)

    assert url in str(caught.value)


def test_dist_info_of_another_project(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    url = server.add(make_wheel(tmp_path, dist_info="other-1.0.dist-info"))

    with pytest.raises(MetadataError, match="does not match the filename"):
        fetch_wheel_metadata(client, url, FILENAME)


def test_dist_info_of_another_version(
    server: WheelServer, client: httpx.Client, tmp_path: Path
) -> None:
    url = server.add(make_wheel(tmp_path, dist_info="demo-1.1.dist-info"))

    with pytest.raises(MetadataError, match="does not match the filename"):
        fetch_wheel_metadata(client, url, FILENAME)


def test_invalid_filename(server: WheelServer, client: httpx.Client, tmp_path: Path) -> None:
    url = server.add(make_wheel(tmp_path), "demo.whl")

    with pytest.raises(MetadataError, match="not a valid wheel filename"):
        fetch_wheel_metadata(client, url, "demo.whl")
    assert server.seen == []


# --- HTTP errors ----------------------------------------------------------------------


def test_missing_file_is_an_http_error_without_retry(
    server: WheelServer, client: httpx.Client
) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        fetch_wheel_metadata(client, server.url(), FILENAME)

    assert caught.value.status == 404
    assert len(server.seen) == 1


def test_connection_refused_is_a_network_error(client: httpx.Client) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as unused:
        port = unused.server_address[1]
    url = f"http://127.0.0.1:{port}/{FILENAME}"

    with pytest.raises(NetworkError) as caught:
        fetch_wheel_metadata(client, url, FILENAME)
    assert caught.value.url == url

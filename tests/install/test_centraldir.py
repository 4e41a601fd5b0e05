"""torrip.install.centraldir reads a zip's directory as zipfile does, or leaves it to zipfile.

Each zip is made by zipfile itself (or a wheel fixture), then read both ways: every entry
read must be the ``ZipInfo`` zipfile makes of it, and every zip the reader leaves alone
(None) is one whose reading it does not share with zipfile.
"""

from __future__ import annotations

import glob
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.wheels import make_wheel
from torrip.install.centraldir import read_entries
from torrip.install.safety import read_layout

_FIELDS = (
    "filename",
    "orig_filename",
    "header_offset",
    "compress_size",
    "file_size",
    "compress_type",
    "flag_bits",
    "external_attr",
)


def _read(data: bytes) -> list[tuple[object, ...]] | None:
    view = memoryview(data)
    entries = read_entries(lambda offset, size: view[offset : offset + size], len(data))
    if entries is None:
        return None
    return [(*(getattr(e, f) for f in _FIELDS), e.is_dir()) for e in entries]


def _zipfile_read(path: Path) -> list[tuple[object, ...]]:
    with zipfile.ZipFile(path) as archive:
        return [(*(getattr(i, f) for f in _FIELDS), i.is_dir()) for i in archive.infolist()]


def _zip(path: Path, *, comment: bytes = b"", extra: bytes = b"") -> Path:
    """Stored and deflated members, a folder, a UTF-8 name, one in cp437, an executable."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/__init__.py", b"x = 1\n" * 50, zipfile.ZIP_DEFLATED)
        archive.writestr("pkg/data.bin", bytes(range(256)), zipfile.ZIP_STORED)
        archive.writestr("pkg/sub/", b"")
        archive.writestr("pkg/caf\u00e9.txt", b"utf-8 name\n")
        legacy = zipfile.ZipInfo("pkg/\u00e7a.txt")  # cp437 can say it: no UTF-8 flag
        archive.writestr(legacy, b"cp437 name\n")
        script = zipfile.ZipInfo("pkg/run.sh")
        script.external_attr = 0o100755 << 16
        script.extra = extra
        archive.writestr(script, b"#!/bin/sh\n", zipfile.ZIP_DEFLATED)
        archive.comment = comment
    return path


def test_entries_are_zipfile_s(tmp_path: Path) -> None:
    path = _zip(tmp_path / "plain.zip", extra=struct.pack("<2H", 0x5455, 5) + b"\x01abcd")
    read = _read(path.read_bytes())
    assert read is not None and read == _zipfile_read(path)
    assert [entry[0] for entry in read] == [
        "pkg/__init__.py",
        "pkg/data.bin",
        "pkg/sub/",
        "pkg/caf\u00e9.txt",
        "pkg/\u00e7a.txt",
        "pkg/run.sh",
    ]
    assert [entry[-1] for entry in read] == [False, False, True, False, False, False]


def test_wheels_read_as_zipfile_reads_them(tmp_path: Path) -> None:
    wheels = [
        make_wheel(tmp_path, "one", "1.0"),
        make_wheel(tmp_path, "two", "2.0", entry_points="[console_scripts]\ntwo = two:main\n"),
        *map(Path, sorted(glob.glob(str(Path(__file__).parents[1] / "**/*.whl"), recursive=True))),
    ]
    for wheel in wheels:
        assert _read(wheel.read_bytes()) == _zipfile_read(wheel), wheel


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: _zip(p, comment=b"a comment"), id="comment"),
        pytest.param(lambda p: _prepended(_zip(p)), id="data-before-the-zip"),
        pytest.param(lambda p: _zip64_end(p), id="zip64-end-record"),
        pytest.param(lambda p: _zip(p, extra=struct.pack("<2HQ", 1, 8, 10)), id="zip64-field"),
        pytest.param(lambda p: _zip(p, extra=b"\x01\x00\x02"), id="badly-framed-extra"),
        pytest.param(lambda p: _truncated_directory(_zip(p)), id="directory-cut-short"),
        pytest.param(lambda p: _named(p, "a\x00.py"), id="nul-in-a-name"),
    ],
)
def test_zips_it_does_not_read_as_zipfile_are_left_to_zipfile(
    make: Callable[[Path], Path], tmp_path: Path
) -> None:
    path = make(tmp_path / "odd.zip")
    assert _read(path.read_bytes()) is None


def test_not_a_zip_is_left_to_zipfile() -> None:
    assert _read(b"") is None
    assert _read(b"PK\x05\x06" + b"\x00" * 17) is None  # shorter than an end record
    assert _read(b"not a zip at all, but longer than an end record") is None


def test_a_wheel_zipfile_must_read_is_still_checked(tmp_path: Path) -> None:
    """A wheel with a comment goes through zipfile: the same layout as without one."""
    wheel = make_wheel(tmp_path / "plain", "one", "1.0")
    commented = tmp_path / "commented" / wheel.name
    commented.parent.mkdir()
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(commented, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.comment = b"built by hand"
    assert _read(commented.read_bytes()) is None
    plain, other = read_layout(wheel), read_layout(commented)
    assert other.files == plain.files and other.name == plain.name


def _prepended(path: Path) -> Path:
    path.write_bytes(b"#!/bin/sh\nexit 0\n" + path.read_bytes())
    return path


def _zip64_end(path: Path) -> Path:
    """More members than the end record can count: zipfile writes ZIP64's."""
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(0x10000):
            archive.writestr(str(number), b"")
    assert b"PK\x06\x07" in path.read_bytes()[-100:]
    return path


def _truncated_directory(path: Path) -> Path:
    """The end record says the directory holds one entry more than it does."""
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    here, total = struct.unpack_from("<2H", data, end + 8)
    struct.pack_into("<2H", data, end + 8, here + 1, total + 1)
    path.write_bytes(bytes(data))
    return path


def _named(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("ok.py"), b"")
    odd = name.encode()
    assert len(odd) == len(b"ok.py")  # renamed in both headers, in place
    path.write_bytes(path.read_bytes().replace(b"ok.py", odd))
    return path

"""Core metadata: the quick Name/Version read agrees with the full parse, and says what is
wrong with bad input."""

from __future__ import annotations

import pytest
from packaging.version import Version

from torrip.errors import MetadataError
from torrip.metadata import name_and_version, parse_metadata

SAMPLES = [
    b"Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 1.0.0\n\nName: not-this\n",
    b"metadata-version: 2.4\r\nname: demo.pkg\r\nversion: 1.0\r\n",
    b"Metadata-Version: 2.1\nSummary: a summary that\n Name: continues\nName: demo-pkg\n"
    b"Version: 1.0.post0\n",
    b"Name:demo-pkg\nVersion:1!2.0rc1\nRequires-Dist: x\n\nbody text",
]


@pytest.mark.parametrize("data", SAMPLES)
def test_name_and_version_agree_with_the_full_parse(data: bytes) -> None:
    parsed = parse_metadata(data, "demo.whl")
    assert name_and_version(data, "demo.whl") == (parsed.name, parsed.version)


def test_name_and_version_values() -> None:
    assert name_and_version(SAMPLES[0], "x") == ("demo-pkg", Version("1.0"))
    assert name_and_version(SAMPLES[2], "x") == ("demo-pkg", Version("1.0.post0"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Metadata-Version: 2.1\nVersion: 1.0\n", "has no Name or Version"),
        (b"Name: demo\n\nVersion: 1.0\n", "has no Name or Version"),
        (b"Name: demo\nVersion: one\n", "invalid version 'one'"),
    ],
)
def test_name_and_version_errors_name_the_origin(data: bytes, message: str) -> None:
    with pytest.raises(MetadataError, match=message) as raised:
        name_and_version(data, "demo-1.0-py3-none-any.whl")
    assert "demo-1.0-py3-none-any.whl" in str(raised.value)

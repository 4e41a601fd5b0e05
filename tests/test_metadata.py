"""Core metadata: the quick Name/Version read agrees with the full parse, and says what is
wrong with bad input."""

from __future__ import annotations

import pytest
from packaging.requirements import InvalidRequirement, Requirement
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


_FIELDS = ("name", "version", "requires_python", "requires_dist", "provides_extra")

# Header blocks the one-pass reader takes (fast) or leaves to packaging's email-based
# parse_email (None); either way parse_metadata must give what parse_email gives.
_BLOCKS = {
    "plain": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Python: >=3.8\n"
    b"Requires-Dist: rich>=13\nRequires-Dist: pytest; extra == 'test'\nProvides-Extra: test\n",
    "crlf and odd case": b"metadata-version: 2.1\r\nNAME: Demo_Pkg\r\nversion:1.0 \r\n"
    b"requires-dist:\tattrs\r\n\r\nbody: not a header\n",
    "non-ascii elsewhere": "Name: demo\nVersion: 1.0\nAuthor: Zoë Ünïcode\n"
    "Summary: déjà vu\nRequires-Dist: idna\n".encode(),
    "folded unrelated field": b"Name: demo\nVersion: 1.0\nDescription: a\n  long\n"
    b"  text\nRequires-Dist: idna\n",
    "folded requirement": b"Name: demo\nVersion: 1.0\nRequires-Dist: idna\n  >=3\n",
    "repeated name": b"Name: demo\nName: other\nVersion: 1.0\n",
    "repeated requires-python": b"Name: demo\nVersion: 1.0\nRequires-Python: >=3\n"
    b"Requires-Python: >=3.8\n",
    "encoded word": b"Name: =?utf-8?q?d=C3=A9mo?=\nVersion: 1.0\n",
    "non-ascii name": "Name: démo\nVersion: 1.0\n".encode(),
    "a line that ends the headers": b"Name: demo\nnot a header line\nVersion: 1.0\n",
    "space before the colon": b"Name: demo\nVersion : 1.0\n",
    "not utf-8": b"Name: demo\nVersion: 1.0\nAuthor: \xff\xfe\n",
    "empty requires-python": b"Name: demo\nVersion: 1.0\nRequires-Python: \n",
}
_FAST = {
    "plain",
    "crlf and odd case",
    "non-ascii elsewhere",
    "folded unrelated field",
    "empty requires-python",
}


@pytest.mark.parametrize("case", sorted(_BLOCKS))
def test_the_one_pass_reader_reads_what_parse_email_reads(case: str) -> None:
    from packaging.metadata import parse_email

    from torrip.metadata import _resolution_fields

    block = _BLOCKS[case]
    raw, _unparsed = parse_email(block)
    expected = {key: raw[key] for key in _FIELDS if key in raw}
    fast = _resolution_fields(block)
    assert (fast is not None) == (case in _FAST)
    if fast is not None:
        assert fast == expected
    try:
        parsed = parse_metadata(block, "demo.whl")
    except MetadataError:  # so must parse_email's fields be unusable
        with pytest.raises((KeyError, InvalidRequirement)):
            [Requirement(text) for text in expected.get("requires_dist", [])]
            expected["name"], expected["version"]
        return
    assert parsed.display_name == expected["name"]
    assert parsed.version == Version(expected["version"])
    assert [str(r) for r in parsed.requires_dist] == [
        str(Requirement(text)) for text in expected.get("requires_dist", [])
    ]


# Header blocks for the report's JSON form: the one-pass reader must give what the email
# parser (compat32) gives, or leave the block to it.
_REPORT_HEADS = {
    "plain": "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: idna\n",
    "folded": "Name: demo\nLicense: BSD\n        All rights reserved.\n        \n        Use it.\n"
    "Version: 1.0\n",
    "empty first line, folded": "Name: demo\nDescription:\n  first\n\tsecond\nVersion: 1.0\n",
    "blanks around the value": "Name:    demo  \nVersion:\t1.0\n",
    "no blank after the colon": "Name:demo\nKeywords:a,b\n",
    "non-ascii": "Name: demo\nAuthor: Zoë Ünïcode\nSummary: déjà vu\n",
    "encoded word, kept as it is": "Name: =?utf-8?q?d=C3=A9mo?=\nVersion: 1.0\n",
    "repeated": "Name: demo\nClassifier: A\nClassifier: B\nName: other\n",
    "crlf": "Name: demo\r\nVersion: 1.0\r\n",
    "a line that ends the headers": "Name: demo\nnot a header line\nVersion: 1.0\n",
    "continuation first": "  indented\nName: demo\n",
}
_REPORT_FALLBACK = {"crlf", "a line that ends the headers", "continuation first"}


@pytest.mark.parametrize("case", sorted(_REPORT_HEADS))
def test_the_reports_header_reader_reads_what_the_email_parser_reads(case: str) -> None:
    import email.parser
    import email.policy

    from torrip.metadata import _header_items

    head = _REPORT_HEADS[case]
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(head, headersonly=True)
    fast = _header_items(head)
    assert (fast is None) == (case in _REPORT_FALLBACK)
    if fast is not None:
        assert fast == [(key, str(value)) for key, value in message.items()]


def test_the_report_form_of_real_metadata_is_unchanged(tmp_path) -> None:
    """as_json over a wheel's METADATA: the one pass and the email parser agree."""
    import zipfile
    from unittest import mock

    from fixtures.wheels import make_wheel
    from torrip import metadata

    wheel = make_wheel(
        tmp_path,
        "demo",
        "1.0",
        requires_dist=["idna>=3", "rich; extra == 'cli'"],
        provides_extra=["cli"],
        more_metadata="License: MIT\n    with a second line\nKeywords: a b\n\n# Demo\n\nText.\n",
    )
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read("demo-1.0.dist-info/METADATA")
    parsed = parse_metadata(raw, wheel.name)
    fast = parsed.as_json()
    with mock.patch.object(metadata, "_header_items", lambda _head: None):
        slow = parsed.as_json()
    assert fast == slow
    assert "second line" in fast["license"] and fast["keywords"] == ["a", "b"]
    assert fast["description"] == "# Demo\n\nText.\n"

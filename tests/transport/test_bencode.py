"""Canonical bencoding: what encode writes, what decode refuses."""

from __future__ import annotations

import pytest

from torrip.errors import TorrentError
from torrip.transport.bencode import Decoded, Encodable, decode, encode


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"i0e"),
        (-7, b"i-7e"),
        (2**63, b"i9223372036854775808e"),
        (b"", b"0:"),
        (b"spam", b"4:spam"),
        ("é", b"2:\xc3\xa9"),
        ([], b"le"),
        ([1, [b"a"]], b"li1el1:aee"),
        ((1, 2), b"li1ei2ee"),
        ({}, b"de"),
        # Keys sort as raw bytes: upper case before lower case, UTF-8 order for the rest.
        ({"b": 1, "a": 2, "Z": 3, "é": 4}, b"d1:Zi3e1:ai2e1:bi1e2:\xc3\xa9i4ee"),
        ({b"file tree": {}, b"": 1}, b"d0:i1e9:file treedee"),
        (bytearray(b"xy"), b"2:xy"),
        (memoryview(b"xy"), b"2:xy"),
    ],
)
def test_encode(value: Encodable, expected: bytes) -> None:
    assert encode(value) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"i0e",
        b"i-1e",
        b"i123456789012345678e",
        b"0:",
        b"3:a:b",
        b"le",
        b"de",
        b"d0:i1e1:al1:bi2edee1:cd1:c0:ee",
        b"d4:infod6:lengthi6e4:name1:xee",
    ],
)
def test_decode_round_trips(data: bytes) -> None:
    assert encode(decode(data)) == data


def test_decode_gives_bytes_and_bytes_keys() -> None:
    assert decode(b"d1:ali1e2:xye1:b0:e") == {b"a": [1, b"xy"], b"b": b""}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "data ends"),
        (b"x", "unexpected byte"),
        (b"i-0e", "not canonical"),
        (b"i03e", "not canonical"),
        (b"i-03e", "not canonical"),
        (b"ie", "not a number"),
        (b"i-e", "not a number"),
        (b"i1.5e", "not a number"),
        (b"i+1e", "not a number"),
        (b"i12", "without an end"),
        (b"i" + b"9" * 30 + b"e", "without an end, or too long"),
        (b"03:abc", "leading zero"),
        (b"4:abc", "runs past the end"),
        (b"3abc", "without a colon"),
        (b"-1:a", "unexpected byte"),
        (b"l", "list without an end"),
        (b"li1e", "list without an end"),
        (b"d", "dictionary without an end"),
        (b"d1:a", "data ends"),
        (b"di1ei2ee", "key is not a byte string"),
        (b"d1:bi1e1:ai2ee", "out of order"),
        (b"d1:ai1e1:ai2ee", "repeated"),
        (b"i1ei2e", "trailing bytes"),
        (b"4:spamx", "trailing bytes"),
        (b"le ", "trailing bytes"),
    ],
)
def test_decode_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(TorrentError, match="malformed bencoding at byte") as caught:
        decode(data)
    assert reason in caught.value.reason


def test_decode_names_the_offset() -> None:
    with pytest.raises(TorrentError) as caught:
        decode(b"d1:ai1e1:ai2ee")
    assert caught.value.reason.startswith("malformed bencoding at byte 7:")


def test_decode_limits_size() -> None:
    with pytest.raises(TorrentError, match="more than the limit 10"):
        decode(b"11:hello world", max_size=10)
    assert decode(b"10:helloworld", max_size=13) == b"helloworld"


def test_decode_limits_depth() -> None:
    assert decode(b"l" * 3 + b"e" * 3, max_depth=3) == [[[]]]
    with pytest.raises(TorrentError, match="nested deeper than 3"):
        decode(b"l" * 4 + b"e" * 4, max_depth=3)
    with pytest.raises(TorrentError, match="nested deeper than 2"):
        decode(b"d1:ad1:ad1:adeeee", max_depth=2)


def test_decode_default_depth_is_safe_against_deep_garbage() -> None:
    with pytest.raises(TorrentError, match="nested deeper"):
        decode(b"l" * 100_000)


def test_decode_limits_items() -> None:
    assert decode(b"li1ei2ei3ee", max_items=3) == [1, 2, 3]
    with pytest.raises(TorrentError, match="too many"):
        decode(b"li1ei2ei3ei4ee", max_items=3)
    with pytest.raises(TorrentError, match="too many"):
        decode(b"d1:ai1e1:bi2ee", max_items=1)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "bool"),
        (1.5, "float"),
        (None, "NoneType"),
        ({1: 2}, "key of type int"),
        ({"a": 1, b"a": 2}, "appears twice"),
        ({"a": [object()]}, "object"),
    ],
)
def test_encode_refuses(value: object, reason: str) -> None:
    with pytest.raises(TorrentError, match=reason):
        encode(value)  # type: ignore[arg-type]


def test_matches_libtorrent() -> None:
    lt = pytest.importorskip("libtorrent")
    value: dict[bytes, Decoded] = {b"b": [1, -2, b"x" * 300], b"a": {b"": b"", b"z": 0}}
    assert encode(value) == lt.bencode(value)
    assert decode(lt.bencode(value)) == value

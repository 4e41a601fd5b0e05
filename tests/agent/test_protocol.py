"""The control protocol's framing: one JSON object per line, within a size limit."""

from __future__ import annotations

import pytest

from torrip.agent.protocol import (
    MAX_MESSAGE,
    ProtocolError,
    decode,
    encode,
    failure,
    success,
)


def test_a_message_is_one_line_of_json() -> None:
    data = encode({"op": "add", "files": ["ab" * 32], "note": "line\nbreak ü"})
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert decode(data.rstrip(b"\n")) == {
        "op": "add",
        "files": ["ab" * 32],
        "note": "line\nbreak ü",
    }


@pytest.mark.parametrize("line", [b"[1, 2]", b'"status"', b"{not json", b"\xff\xfe"])
def test_anything_but_a_json_object_is_refused(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(line)


def test_messages_over_the_limit_are_refused_both_ways() -> None:
    with pytest.raises(ProtocolError):
        encode({"op": "add", "files": ["x" * MAX_MESSAGE]})
    with pytest.raises(ProtocolError):
        decode(b"{" + b" " * MAX_MESSAGE + b"}")


def test_answers_say_ok_or_carry_the_error_and_hint() -> None:
    assert success({"pid": 1}) == {"ok": True, "result": {"pid": 1}}
    assert failure("nope", "try this") == {"ok": False, "error": "nope", "hint": "try this"}
    assert "hint" not in failure("nope")

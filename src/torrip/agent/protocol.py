"""The control protocol: newline-delimited JSON on the agent's Unix socket (docs/agent.md).

A client writes one request per line and reads one response line per request, in
order, on one connection::

    -> {"op": "status"}
    <- {"ok": true, "result": {"pid": 4242, "files_seeding": 12, ...}}
    -> {"op": "remove", "files": ["nope"]}
    <- {"ok": false, "error": "...", "hint": "..."}

Every message is a JSON object encoded as UTF-8 on one line of at most
``MAX_MESSAGE`` bytes. Requests name an ``op``; the other keys are its arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from torrip.errors import TorripError

__all__ = [
    "MAX_MESSAGE",
    "OPERATIONS",
    "PROTOCOL_VERSION",
    "AgentError",
    "ProtocolError",
    "decode",
    "encode",
    "failure",
    "success",
]

PROTOCOL_VERSION = 1
MAX_MESSAGE = 1024 * 1024
OPERATIONS = ("ping", "status", "list", "add", "remove", "stop")


class AgentError(TorripError):
    """The agent answered with an error, or cannot be reached when it must be."""


class ProtocolError(AgentError):
    """A message is not a JSON object on one line within the size limit."""


def encode(message: Mapping[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"a message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    return data


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_MESSAGE:
        raise ProtocolError(f"a message of {len(line)} bytes exceeds {MAX_MESSAGE}")
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError(f"not a JSON message: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


def success(result: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"ok": True, "result": dict(result or {})}


def failure(message: str, hint: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"ok": False, "error": message}
    if hint:
        answer["hint"] = hint
    return answer

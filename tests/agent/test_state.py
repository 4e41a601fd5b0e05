"""The agent's state file: written atomically, read back exactly, damage detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from torrip.agent.state import AgentState, FileRecord, load_state, save_state

SHA = "ab" * 32


def _state() -> AgentState:
    record = FileRecord(SHA, "demo-1.0-py3-none-any.whl", 1234, 99, uploaded=5, added=1.5)
    record.environments.append("/venv/lib/python3.11/site-packages")
    return AgentState({SHA: record}, uploaded=7)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "agent" / "state.json"
    save_state(path, _state())
    loaded, problem = load_state(path)
    assert problem is None and loaded == _state()


def test_no_file_yet_is_not_a_problem(tmp_path: Path) -> None:
    assert load_state(tmp_path / "state.json") == (None, None)


def _damaged(text: bytes) -> list[bytes]:
    document = json.loads(text)
    wrong_type = json.loads(text)
    wrong_type["files"][SHA]["size"] = "big"
    bad_key = json.loads(text)
    bad_key["files"]["not-a-sha"] = bad_key["files"].pop(SHA)
    other = dict(document, format="something else")
    return [
        text[: len(text) // 2],  # truncated
        b"",
        b"\x00" * 64,  # garbage
        json.dumps(wrong_type).encode(),
        json.dumps(bad_key).encode(),
        json.dumps(other).encode(),
        json.dumps(dict(document, version=99)).encode(),
    ]


@pytest.mark.parametrize("case", range(7))
def test_damage_is_reported_not_half_trusted(tmp_path: Path, case: int) -> None:
    path = tmp_path / "state.json"
    save_state(path, _state())
    path.write_bytes(_damaged(path.read_bytes())[case])
    state, problem = load_state(path)
    assert state is None
    assert problem is not None and "damaged" in problem


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for _ in range(3):
        save_state(path, _state())
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]

"""Errors survive pickling (they cross from the unpacking worker processes) with their
message, hint, exit code and fields."""

from __future__ import annotations

import pickle

import pytest

from torrip.errors import (
    CacheError,
    ConfigError,
    HashMismatchError,
    HTTPStatusError,
    RequirementsFileError,
    TorripError,
    UnsafeWheelError,
)

ERRORS = [
    UnsafeWheelError("/w/evil-1.0-py3-none-any.whl", "evil/x.py", "sha256 does not match RECORD"),
    CacheError("/cache/unpacked-v1/ab", "No space left on device"),
    HTTPStatusError("https://example.invalid/x.whl", 404, "Check the name."),
    HashMismatchError("x.whl", "https://example.invalid/x.whl", "sha256", "aa", "bb"),
    RequirementsFileError("requirements.txt", 3, "--bogus", "unknown option"),
    ConfigError("bad value 'x' for link-mode", hint="Use hardlink or copy."),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_errors_survive_pickling(error: TorripError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.hint == error.hint
    assert copy.exit_code == error.exit_code
    assert copy.args == error.args
    assert vars(copy) == vars(error)


def test_fields_of_an_unsafe_wheel_error_survive() -> None:
    copy = pickle.loads(pickle.dumps(ERRORS[0]))
    assert isinstance(copy, UnsafeWheelError)
    assert (copy.entry, copy.reason) == ("evil/x.py", "sha256 does not match RECORD")

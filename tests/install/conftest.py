"""Fixtures for install tests: real venvs as torrip sees them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fixtures.environments import MakeVenv
from install.support import MakeEnvironment
from torrip.environment import TargetEnvironment, inspect_environment


@pytest.fixture
def make_environment(make_venv: MakeVenv) -> MakeEnvironment:
    """A fresh venv for ``python``, as torrip sees it."""

    def make(python: Path | str = sys.executable) -> TargetEnvironment:
        venv = make_venv(python)
        return inspect_environment(venv / "bin" / "python")

    return make


@pytest.fixture
def environment(make_environment: MakeEnvironment) -> TargetEnvironment:
    return make_environment()

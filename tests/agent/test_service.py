"""Service definitions: they run the agent in the foreground with this interpreter."""

from __future__ import annotations

import configparser
import plistlib

import pytest

from torrip.agent.service import launchd_plist, service_text, systemd_unit


def test_systemd_unit_runs_the_agent_in_the_foreground() -> None:
    unit = configparser.ConfigParser(interpolation=None)
    unit.read_string(systemd_unit("/opt/venv/bin/python"))
    assert unit["Service"]["ExecStart"] == "/opt/venv/bin/python -m torrip agent run"
    assert unit["Service"]["Type"] == "simple"
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "default.target"


def test_systemd_quotes_a_path_with_spaces() -> None:
    assert 'ExecStart="/Users/a b/python" -m torrip' in systemd_unit("/Users/a b/python")


def test_launchd_plist_is_valid_and_runs_the_agent() -> None:
    plist = plistlib.loads(launchd_plist("/opt/x&y/python").encode())
    assert plist["ProgramArguments"] == ["/opt/x&y/python", "-m", "torrip", "agent", "run"]
    assert plist["RunAtLoad"] is True and plist["Label"] == "org.torrip.agent"


def test_unknown_manager() -> None:
    with pytest.raises(ValueError, match="systemd"):
        service_text("upstart", "python")

"""Shared pytest configuration: the fixture plugins every test package can use."""

import contextlib
import ipaddress
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest

from torrip.config import Settings
from torrip.transport.session import split_host_port

# Installs in tests must not leave seeding agents running; the agent's tests opt in.
# TORRIP_SEED covers installs that read the environment, CI those run with --isolated
# (seed = auto does not start the agent under CI).
os.environ["TORRIP_SEED"] = "never"
os.environ.setdefault("CI", "1")
# Peer to peer in tests touches loopback only (the suite also runs in a private network
# namespace): listen on 127.0.0.1, no DHT unless a test names loopback nodes, no LAN
# multicast. ``loopback_sessions_only`` below catches any session that would not.
os.environ["TORRIP_LISTEN"] = "127.0.0.1:0"
os.environ["TORRIP_DHT_BOOTSTRAP"] = ""
os.environ["TORRIP_LAN_DISCOVERY"] = "0"
# A seeding agent running on this machine must not join the tests' installs: runtime
# files (the agent's socket) live in a folder of the test run's own.
os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="torrip-tests-run-")

# Commands in tests run in their own processes, not in forks of a warm-start server left
# behind by an earlier test; tests/test_warmstart.py turns it on.
os.environ["TORRIP_WARM_START"] = "0"

pytest_plugins = [
    "fixtures.wheels",
    "fixtures.index",
    "fixtures.environments",
    "fixtures.installed",
    "fixtures.swarm",
    "fixtures.agent",
]


@pytest.fixture(autouse=True)
def loopback_sessions_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test whose torrip session would listen or bootstrap beyond loopback."""
    import torrip.agent.seeder
    import torrip.transport.swarm
    from torrip.transport import session as session_module

    real_open = session_module.open_session

    def guarded(settings: Settings, *, role: session_module.Role) -> Any:
        for text in (*settings.listen, *settings.dht_bootstrap):
            host = split_host_port(text)[0]
            # 192.0.2.1 (TEST-NET-1) is a test's address that cannot be bound.
            if host != "192.0.2.1" and not _is_loopback(host):
                raise AssertionError(f"a test session would use {text}, not loopback")
        if settings.lan_discovery:
            raise AssertionError("a test session would multicast on the LAN")
        return real_open(settings, role=role)

    for module in (session_module, torrip.transport.swarm, torrip.agent.seeder):
        monkeypatch.setattr(module, "open_session", guarded)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop any warm-start server a test left in the run's own folder (none should)."""
    for lock in (Path(os.environ["XDG_RUNTIME_DIR"]) / "torrip").glob("warm-*.lock"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(lock.read_text().strip()), signal.SIGTERM)

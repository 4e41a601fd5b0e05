"""libtorrent sessions from Settings: network manners that tests and users rely on."""

from __future__ import annotations

import pytest

from torrip.config import DEFAULT_DHT_BOOTSTRAP, Settings
from torrip.errors import TorripError
from torrip.transport.session import open_session, session_settings, split_host_port


def test_defaults_never_use_upnp_natpmp_or_lan_multicast() -> None:
    pack = session_settings(Settings(), role="install")
    assert pack["enable_upnp"] is False
    assert pack["enable_natpmp"] is False
    assert pack["enable_lsd"] is False
    assert pack["dht_bootstrap_nodes"] == ",".join(DEFAULT_DHT_BOOTSTRAP)
    # Public bootstrap nodes: libtorrent's protections against private routing stay on.
    assert "dht_restrict_routing_ips" not in pack
    assert pack["enable_outgoing_utp"] is False


def test_loopback_dht_relaxes_routing_and_empty_bootstrap_disables_it() -> None:
    local = session_settings(Settings(dht_bootstrap=("127.0.0.1:7000",)), role="install")
    assert local["enable_dht"] is True
    assert local["dht_restrict_routing_ips"] is False
    assert local["dht_upload_rate_limit"] > 8000
    off = session_settings(Settings(dht_bootstrap=()), role="install")
    assert off["enable_dht"] is False


def test_lan_discovery_and_rates_pass_through() -> None:
    pack = session_settings(
        Settings(lan_discovery=True, upload_rate=1000, download_rate=2000), role="agent"
    )
    assert pack["enable_lsd"] is True
    assert (pack["upload_rate_limit"], pack["download_rate_limit"]) == (1000, 2000)


@pytest.mark.parametrize("text", ["nohost", "host:", "host:99999", ":80"])
def test_bad_addresses_are_clear_errors(text: str) -> None:
    with pytest.raises(TorripError, match=r"^listen: ") as caught:
        session_settings(Settings(listen=(text,)), role="install")
    assert caught.value.hint is not None and "host:port" in caught.value.hint


def test_ipv6_literal() -> None:
    assert split_host_port("[::1]:6881") == ("::1", 6881)


def test_a_session_listens_on_loopback_only() -> None:
    session = open_session(Settings(listen=("127.0.0.1:0",), dht_bootstrap=()), role="install")
    try:
        assert session.is_listening()
        assert session.listen_port() > 0
        assert session.get_settings()["listen_interfaces"] == "127.0.0.1:0"
    finally:
        session.pause()

"""libtorrent sessions configured from Settings: the one place that knows its settings names.

    lt = load_libtorrent()                  # None when it is not installed (HTTP only then)
    session = open_session(settings, role="install")
    ...
    close_session(session)

Both ``torrip install`` (role "install") and the seeding agent (role "agent") open
their sessions here, so both follow the same network manners: local service
discovery only when ``lan-discovery`` is on, never UPnP or NAT-PMP, the DHT
bootstrapped only from ``dht-bootstrap``, and listening only where ``listen`` says.

When every DHT bootstrap node is a loopback or private address (a test, a
benchmark, a closed LAN), libtorrent's protections against routing through such
addresses are relaxed, or the DHT could not work there at all.
"""

from __future__ import annotations

import ipaddress
from types import ModuleType
from typing import Any, Literal

from torrip import __version__
from torrip.config import Settings
from torrip.errors import TorripError

__all__ = [
    "SwarmUnavailable",
    "close_session",
    "is_local_host",
    "libtorrent_installed",
    "load_libtorrent",
    "open_session",
    "session_settings",
    "split_host_port",
]

Role = Literal["install", "agent"]


class SwarmUnavailable(TorripError):
    """libtorrent is missing or its session cannot start; torrip uses HTTP only."""


def load_libtorrent() -> ModuleType | None:
    """The libtorrent module, or None; ``TORRIP_NO_LIBTORRENT=1`` hides it (tests, debugging)."""
    if _hidden():
        return None
    try:
        import libtorrent
    except ImportError:
        return None
    return libtorrent


def libtorrent_installed() -> bool:
    """Whether libtorrent is there to load, without loading it (7-9 ms): an install whose
    torrents no tracker, DHT or LAN could find peers for never starts a session. A module
    found that then fails to load is reported when the session starts."""
    import importlib.util

    return not _hidden() and importlib.util.find_spec("libtorrent") is not None


def _hidden() -> bool:
    import os

    return os.environ.get("TORRIP_NO_LIBTORRENT", "").strip() not in ("", "0")


def split_host_port(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ValueError."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{text!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"{text!r}: port {number} is out of range")
    return host, number


def is_local_host(host: str) -> bool:
    """Whether ``host`` is a loopback or private IP address (names are not)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return address.is_loopback or address.is_private or address.is_link_local


def _dht_nodes(settings: Settings) -> list[tuple[str, int]]:
    nodes = []
    for text in settings.dht_bootstrap:
        try:
            nodes.append(split_host_port(text))
        except ValueError as exc:
            raise TorripError(
                f"dht-bootstrap: {exc}", hint="Give nodes as host:port, comma-separated."
            ) from None
    return nodes


def _listen_interfaces(settings: Settings) -> str:
    for text in settings.listen:
        try:
            split_host_port(text)
        except ValueError as exc:
            raise TorripError(
                f"listen: {exc}",
                hint="Give addresses as host:port (port 0 for any free port), comma-separated.",
            ) from None
    return ",".join(text.strip() for text in settings.listen)


def session_settings(settings: Settings, *, role: Role) -> dict[str, Any]:
    """The settings_pack for a session: network manners first, then limits by role."""
    nodes = _dht_nodes(settings)
    local_dht = bool(nodes) and all(is_local_host(host) for host, _ in nodes)
    pack: dict[str, Any] = {
        "listen_interfaces": _listen_interfaces(settings),
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_lsd": settings.lan_discovery,
        "enable_dht": bool(nodes),
        "dht_bootstrap_nodes": ",".join(f"{host}:{port}" for host, port in nodes),
        "user_agent": f"torrip/{__version__}",
        "upload_rate_limit": max(0, settings.upload_rate),
        "download_rate_limit": max(0, settings.download_rate),
        # Alerts torrip reads: errors, status (tracker replies, metadata), peer bans.
        "alert_mask": _alert_mask(),
        # Web seeds (the origin, through torrip's counting relay) are retried soon after
        # a failure, so a brief origin hiccup does not leave a download to peers alone.
        "urlseed_wait_retry": 2,
        "urlseed_timeout": int(settings.timeout),
        # Trackers are told we stopped, but a session closing does not wait long for them.
        "stop_tracker_timeout": 1,
        # Many peers share one address (an office's NAT, a CI host's runners, one
        # machine's users): each is a peer of its own, not a duplicate to refuse.
        "allow_multiple_connections_per_ip": True,
    }
    if local_dht:
        pack.update(
            {
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                "dht_ignore_dark_internet": False,
                "dht_prefer_verified_node_ids": False,
                # Every node of a loopback DHT shares 127.0.0.1: libtorrent's per-IP limit
                # of 5 queries a second would make the nodes block each other.
                "dht_block_ratelimit": 10_000,
                # 8 kB/s of DHT traffic (the default, for the internet) makes lookups and
                # announces slow on a local network, where it costs nothing.
                "dht_upload_rate_limit": 1_000_000,
            }
        )
    if role == "install":
        # Every file of a plan downloads at once; none waits in libtorrent's queue.
        pack.update({"active_downloads": -1, "active_seeds": -1, "active_limit": -1})
        # An install is short: a peer dropped after a protocol hiccup is tried again soon
        # (libtorrent 2.1 drops honest peers of a hybrid torrent with "invalid hashes"
        # after another peer's piece failed), and a silent one is given up on sooner.
        pack.update({"min_reconnect_time": 1, "piece_timeout": 5, "request_timeout": 10})
        # Outgoing connections over TCP: uTP's congestion control yields to other traffic
        # by design and caps a download well below what TCP gets (measured in
        # docs/swarm.md); incoming uTP stays on for peers that only speak it.
        pack["enable_outgoing_utp"] = False
        # An install's session lives for seconds: as a DHT node it would sit in others'
        # routing tables after it is gone, and announces sent to it would be lost
        # (bench/fleet.py: a loopback DHT failed lookups until it was read-only, BEP 43).
        pack["dht_read_only"] = True
    elif role == "agent":
        # The agent adds torrents not auto-managed, so libtorrent's queue never stops one;
        # the announce limits count them too, and their defaults (a few dozen) would leave
        # most of a cache unannounced. torrip's own seed-torrents bounds how many there are.
        announced = settings.seed_torrents if settings.seed_torrents > 0 else -1
        pack.update(
            {
                "active_downloads": 0,
                "active_seeds": -1,
                "active_limit": -1,
                "active_dht_limit": announced,
                "active_tracker_limit": announced,
                "active_lsd_limit": announced,
                "connections_limit": max(2, settings.seed_connections),
                # Seeding thousands of small files: remember fewer peers per torrent.
                "max_peerlist_size": 200,
                "max_paused_peerlist_size": 50,
            }
        )
    return pack


def _alert_mask() -> int:
    lt = load_libtorrent()
    if lt is None:
        return 0
    category = lt.alert.category_t
    return int(
        category.error_notification
        | category.status_notification
        | category.peer_notification
        | category.storage_notification
        | category.tracker_notification
        | category.dht_notification
    )


def open_session(settings: Settings, *, role: Role) -> Any:
    """A started libtorrent session, or SwarmUnavailable saying why not."""
    lt = load_libtorrent()
    if lt is None:
        raise SwarmUnavailable("libtorrent is not available")
    pack = session_settings(settings, role=role)
    try:
        session = lt.session(pack)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise SwarmUnavailable(f"libtorrent could not start: {exc}") from None
    if pack["enable_dht"] and pack.get("dht_restrict_routing_ips") is False:
        # Loopback nodes are not learned from bootstrapping alone: add them as nodes too.
        for text in settings.dht_bootstrap:
            session.add_dht_node(split_host_port(text))
    return session


def close_session(session: Any) -> None:
    """Stop a session without waiting for trackers (bounded by stop_tracker_timeout)."""
    session.pause()
    del session

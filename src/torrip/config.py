"""Settings: defaults < config file < TORRIP_* environment variables < flags.

One naming rule for every setting: the config key ``extra-index-url`` is the
variable ``TORRIP_EXTRA_INDEX_URL`` and the flag ``--extra-index-url``. Lists are
comma-separated in variables (TOML arrays in the file); booleans accept
1/0, true/false, yes/no, on/off.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import platformdirs

from torrip.errors import ConfigError

__all__ = [
    "DEFAULT_DHT_BOOTSTRAP",
    "DEFAULT_INDEX_URL",
    "INDEX_STRATEGIES",
    "Settings",
    "config_file_path",
    "load_settings",
    "parse_byte_size",
    "upload_cutoff",
]

DEFAULT_INDEX_URL = "https://pypi.org/simple/"
# The usual public Mainline DHT routers, for real users; tests and benchmarks
# always pass loopback nodes (and nothing resolves on a machine without internet).
DEFAULT_DHT_BOOTSTRAP = (
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
)
_APP = "torrip"
INDEX_STRATEGIES = ("unsafe-best-match", "first-index")


def _default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(_APP, appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Everything torrip can be told. Field names are config keys with ``_`` for ``-``."""

    index_url: str = DEFAULT_INDEX_URL
    extra_index_url: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    torrent_index: tuple[str, ...] = ()
    cache_dir: Path = field(default_factory=_default_cache_dir)
    no_cache: bool = False
    # No network at all: index pages, metadata and files from the cache only (pages however
    # old), as uv's --offline; what the cache lacks is an error that names it.
    offline: bool = False
    # disabled, or subprocess: after a 401, ask the `keyring` command for the index's
    # credentials, as pip's --keyring-provider subprocess (Artifact Registry, Azure).
    keyring_provider: str = "disabled"
    # unsafe-best-match: every index's files of a project are candidates, as pip takes
    # them; first-index: only those of the first index that has the project, the
    # --extra-index-url ones asked before --index-url (uv's option and order), so that a
    # public index cannot shadow a private project (dependency confusion).
    index_strategy: str = "unsafe-best-match"
    timeout: float = 30.0
    retries: int = 3
    # Every request through this proxy (scheme://[user:password@]host:port), as pip's
    # --proxy; "" takes the environment's (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY). NO_PROXY
    # applies to either.
    proxy: str = ""
    # The CA bundle (a PEM file) that https is verified with, as pip's --cert; "" takes
    # SSL_CERT_FILE or SSL_CERT_DIR, else certifi's bundle.
    cert: str = ""
    # Hosts (host, or host:port) whose https certificate is not verified, as pip's
    # --trusted-host and uv's --allow-insecure-host: an index behind a self-signed one.
    trusted_host: tuple[str, ...] = ()
    # Concurrent requests to one host; PyPI's CDN serves many in parallel.
    max_connections_per_host: int = 16
    # Distribution files downloaded at once from one far host (the rest wait their turn); a
    # near one gets fewer (transport.fetch.NEAR_DOWNLOADS).
    max_downloads_per_host: int = 8
    pre: bool = False
    # Only files uploaded before this (an ISO 8601 datetime, or P<n>D: n days ago), on
    # indexes that give upload times (PEP 700), as pip's option of that name; "" for all.
    uploaded_prior_to: str = ""
    # hardlink: installed files are hard links into the unpacked cache (fast; editing one
    # in place edits the cache's copy); copy: each install gets its own copy.
    link_mode: str = "hardlink"
    # Install into (or uninstall from) an interpreter its distributor marks as externally
    # managed (PEP 668: Debian's /usr/bin/python3 and the like), as pip's option of that name.
    break_system_packages: bool = False
    # -- peer to peer (docs/swarm.md) --
    p2p: bool = True
    dht_bootstrap: tuple[str, ...] = DEFAULT_DHT_BOOTSTRAP
    # Extra trackers announced for every torrent.
    trackers: tuple[str, ...] = ()
    # host:port to listen on for peers; port 0 picks a free port.
    listen: tuple[str, ...] = ("0.0.0.0:6881", "[::]:6881")
    # Local service discovery multicasts on the LAN: only when the user asks.
    lan_discovery: bool = False
    # Bytes per second; 0 is unlimited.
    upload_rate: int = 0
    download_rate: int = 0
    # -- the seeding agent (docs/agent.md) --
    # auto: start it after an install (not under CI); always: also under CI; never.
    seed: str = "auto"
    # Peer connections the agent keeps at most.
    seed_connections: int = 200
    # Files seeded (and announced) at once; the most recently used win.
    seed_torrents: int = 2000
    # Disk quota of the distribution cache, in bytes; the agent evicts least recently
    # used files that no environment needs first. 0: no quota.
    seed_quota: int = 10 * 1000**3
    # Stop seeding a file once it uploaded this many times its size; 0: no limit.
    seed_ratio: float = 0.0
    # Seed a file for this many days after it was last used; 0: no limit.
    seed_days: int = 30
    # Commands run in a fork of a server that has torrip imported already (Linux): 0.1 s
    # less for each (docs/warm-start.md). Read by torrip.warmstart.identity.enabled.
    warm_start: bool = True
    verbose: int = 0
    quiet: int = 0

    @property
    def index_urls(self) -> tuple[str, ...]:
        """The indexes' URLs; a local folder laid out as an index is a file: URL."""
        urls = (self.index_url, *self.extra_index_url) if self.index_url else self.extra_index_url
        return tuple(_index_url(url) for url in urls)

    @property
    def index_urls_in_turn(self) -> tuple[str, ...]:
        """The indexes as ``first-index`` asks them: the extra ones first, in their order.
        ConfigError for an index-strategy torrip does not know."""
        if self.index_strategy not in INDEX_STRATEGIES:
            raise ConfigError(
                f"bad value {self.index_strategy!r} for index-strategy",
                hint=f"Use one of {', '.join(INDEX_STRATEGIES)} (config file, "
                "TORRIP_INDEX_STRATEGY or --index-strategy).",
            )
        urls = self.index_urls
        if self.index_strategy == "first-index" and self.index_url:
            return (*urls[1:], urls[0])
        return urls

    @property
    def http_cache_dir(self) -> Path:
        return self.cache_dir / "http-v1"

    @property
    def kept_cache_dir(self) -> Path | None:
        """The cache for what may be kept between commands; None with no-cache."""
        return None if self.no_cache else self.cache_dir

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def upload_cutoff(text: str, now: datetime | None = None) -> datetime | None:
    """The moment ``uploaded-prior-to`` names (aware), None for ""; ConfigError if bad.

    ``P3D`` is three days before ``now``; a datetime without a zone is local time, as pip
    reads it."""
    text = text.strip()
    if not text:
        return None
    days = re.fullmatch(r"P(\d+)D", text, flags=re.IGNORECASE)
    if days:
        return (now or datetime.now(timezone.utc)) - timedelta(days=int(days[1]))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"bad value {text!r} for uploaded-prior-to",
            hint="Use an ISO 8601 datetime such as 2025-01-01T00:00:00Z, or P3D for files "
            "uploaded at least three days ago.",
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


@functools.lru_cache(maxsize=64)  # asked for every project page: one look per folder
def _index_url(text: str) -> str:
    """``text`` if it is a URL; a folder's file: URL if it names an existing folder.

    A file: URL names localhost: httpx takes one without a host for a relative URL.
    """
    if text.startswith("file:///"):
        return "file://localhost/" + text[len("file:///") :]
    if "://" in text:
        return text
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"index URL {text!r} is not a URL, nor an existing folder",
            hint="Give an index's URL (https://..., file:///...) or the path of a folder laid "
            "out as one (a folder per project, each with an index.html); for a folder of "
            "wheels, use --find-links.",
        )
    return "file://localhost" + folder.absolute().as_uri()[len("file://") :] + "/"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
# Integer settings in bytes (or bytes per second), written with units if wanted.
_BYTE_SIZES = {"upload_rate", "download_rate", "seed_quota"}
# Settings that only make sense on the command line.
_FLAG_ONLY = {"verbose", "quiet"}


def config_file_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get("TORRIP_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_config_dir(_APP, appauthor=False)) / "config.toml"


_BYTE_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
}


def parse_byte_size(text: str | int) -> int:
    """``"20M"``, ``"512k"``, ``"1.5GiB"``, ``"20MB"`` or an int -> bytes; ValueError if not."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"{text} is negative")
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*", str(text), re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} is not a size in bytes (like 500k, 20M, 1GiB)")
    number, unit = match.groups()
    return int(float(number) * _BYTE_UNITS[(unit or "").lower()])


def _coerce(name: str, value: Any, origin: str) -> Any:
    """Convert a raw value (TOML value, or a string from the environment) to the field's type."""
    kind = _FIELDS[name].type
    try:
        if kind == "tuple[str, ...]":
            if isinstance(value, str):
                return tuple(part.strip() for part in value.split(",") if part.strip())
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError("expected a list of strings")
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError("expected a boolean (true/false)")
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            if name in _BYTE_SIZES:
                return parse_byte_size(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "Path":
            return Path(os.path.expanduser(str(value)))
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError("expected a string")
            return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{origin}: bad value {value!r} for {name.replace('_', '-')}: {exc}",
            hint="Fix or remove the setting.",
        ) from None
    raise AssertionError(f"unhandled setting type {kind}")


def _from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc}",
            hint="Make it readable UTF-8 text, or point TORRIP_CONFIG_FILE at another file.",
        ) from None
    # Imported only when there is a file: its regular expressions cost 4 ms of every start.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc}", hint="Fix the file's TOML syntax."
        ) from None
    # Accept both a flat file and a [torrip] table.
    table = data.get("torrip", data)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        name = key.replace("-", "_")
        if name not in _FIELDS or name in _FLAG_ONLY:
            known = ", ".join(sorted(k.replace("_", "-") for k in _FIELDS if k not in _FLAG_ONLY))
            raise ConfigError(f"{path}: unknown setting {key!r}", hint=f"Known settings: {known}.")
        values[name] = _coerce(name, raw, str(path))
    return values


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name in _FLAG_ONLY:
            continue
        variable = "TORRIP_" + name.upper()
        if variable in environ:
            values[name] = _coerce(name, environ[variable], variable)
    return values


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    isolated: bool = False,
) -> Settings:
    """Merge the layers. ``flags`` holds only options given on the command line.

    ``isolated`` ignores the config file and environment, like pip's ``--isolated``.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if not isolated:
        values.update(_from_file(config_file_path(env)))
        values.update(_from_environment(env))
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = value
    if "cache_dir" not in values and not isolated:
        # TORRIP_CACHE_DIR wins (handled above); platformdirs honours XDG_CACHE_HOME.
        xdg = env.get("XDG_CACHE_HOME")
        if xdg:
            values["cache_dir"] = Path(xdg) / _APP
    return Settings(**values)

"""Credentials for private indexes, as pip and uv take them.

Given in an index's URL (``https://user:token@host/simple/``) or in the netrc file
(``$NETRC``, else ``~/.netrc``), they are sent with every request to that host: its
pages, metadata and files, which private indexes (Artifactory, Nexus, devpi, CodeArtifact)
link to by absolute URLs without credentials. They are never shown in messages
(``redact``) nor written into lockfiles or reports (``without_credentials``).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "Origin",
    "credentials_by_origin",
    "keyring_credentials",
    "netrc_entries",
    "redact",
    "without_credentials",
]

# scheme://user:password@ or scheme://token@ in any text (a message, a log line).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")

Origin = tuple[str, str, int | None]  # scheme, host, port


def redact(text: str) -> str:
    """``text`` with the secret of every URL's credentials replaced: ``user:****@``, or
    ``****@`` for a token given alone."""

    def hide(match: re.Match[str]) -> str:
        user, has_password, _ = match["userinfo"].partition(":")
        shown = f"{user}:****" if has_password else "****"
        return f"{match['scheme']}{shown}@"

    return _USERINFO.sub(hide, text)


def without_credentials(url: str) -> str:
    """``url`` without its user and password (for lockfiles and reports)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def credentials_by_origin(urls: Iterable[str]) -> dict[Origin, tuple[str, str]]:
    """(scheme, host, port) -> (user, password) of each URL that has credentials."""
    by_origin: dict[Origin, tuple[str, str]] = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.username is None or not parts.hostname:
            continue
        try:
            port = parts.port
        except ValueError:  # not a number: the request to it fails with its own message
            continue
        if (parts.scheme, port) in (("http", 80), ("https", 443)):
            port = None  # as httpx's URL.port reads a default port
        origin = (parts.scheme, parts.hostname, port)
        secret = (unquote(parts.username), unquote(parts.password or ""))
        by_origin.setdefault(origin, secret)
    return by_origin


def netrc_entries(environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Host (or ``default``) -> (login, password) from ``$NETRC`` or ``~/.netrc``; none if
    there is no such file or it cannot be read."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("NETRC")
    path = Path(explicit) if explicit else Path(environ.get("HOME") or "~").expanduser() / ".netrc"
    if not path.is_file():
        return {}
    import netrc  # only when the file exists

    try:
        hosts = netrc.netrc(str(path)).hosts
    except (OSError, netrc.NetrcParseError):
        return {}
    return {host: (login, password or "") for host, (login, _, password) in hosts.items()}


_keyring_answers: dict[tuple[str, str | None], tuple[str, str] | None] = {}
_keyring_lock = threading.Lock()


def keyring_credentials(url: str, username: str | None) -> tuple[str, str] | None:
    """What the ``keyring`` command says for ``url`` (pip's ``--keyring-provider
    subprocess``): the password of ``username``, or, with no user, both (``--mode creds``);
    None if it is not installed, knows nothing, or takes over 30 s. Asked once per origin
    and user in a process (resolution and downloads use clients of their own)."""
    parts = urlsplit(url)
    key = (f"{parts.scheme}://{parts.netloc}", username)
    with _keyring_lock:  # one question at a time: a keyring may prompt
        if key not in _keyring_answers:
            _keyring_answers[key] = _ask_keyring(url, username)
        return _keyring_answers[key]


def _ask_keyring(url: str, username: str | None) -> tuple[str, str] | None:
    import shutil
    import subprocess

    command = shutil.which("keyring")
    if command is None:
        return None
    if username:
        args = [command, "get", url, username]
    else:
        args = [command, "--mode", "creds", "get", url, ""]
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines:
        return None
    if username:
        return username, lines[0]
    return (lines[0], lines[1]) if len(lines) >= 2 else None

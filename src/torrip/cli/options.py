"""Options shared by several commands, declared once so help texts and names stay in step."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torrip.config import INDEX_STRATEGIES, Settings, load_settings, parse_byte_size

if TYPE_CHECKING:
    from torrip.cli.output import Output
    from torrip.environment import Layout
    from torrip.index.early import EarlyIndex
    from torrip.retarget import Retarget

__all__ = [
    "add_break_system_packages_option",
    "add_general_options",
    "add_index_options",
    "add_layout_options",
    "add_no_seed_option",
    "add_p2p_options",
    "add_platform_options",
    "add_pre_option",
    "add_python_option",
    "add_requirement_file_options",
    "add_requirement_options",
    "add_verbosity_options",
    "layout_from_args",
    "requested",
    "require_requirements",
    "retarget_from_args",
    "settings_from_args",
]

# argparse dest -> Settings field, for options that are also settings.
_SETTING_DESTS = {
    "index_url": "index_url",
    "extra_index_url": "extra_index_url",
    "find_links": "find_links",
    "torrent_index": "torrent_index",
    "cache_dir": "cache_dir",
    "no_cache": "no_cache",
    "offline": "offline",
    "timeout": "timeout",
    "retries": "retries",
    "proxy": "proxy",
    "cert": "cert",
    "trusted_host": "trusted_host",
    "pre": "pre",
    "uploaded_prior_to": "uploaded_prior_to",
    "keyring_provider": "keyring_provider",
    "index_strategy": "index_strategy",
    "link_mode": "link_mode",
    "break_system_packages": "break_system_packages",
    "p2p": "p2p",
    "dht_bootstrap": "dht_bootstrap",
    "trackers": "trackers",
    "listen": "listen",
    "lan_discovery": "lan_discovery",
    "upload_rate": "upload_rate",
    "download_rate": "download_rate",
    "warm_start": "warm_start",
}


def add_verbosity_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """-v and -q, in a "General Options" group (returned, for more general options)."""
    group = parser.add_argument_group("General Options")
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="Give more output. Option is additive."
    )
    group.add_argument(
        "-q", "--quiet", action="count", default=0, help="Give less output. Option is additive."
    )
    warm = group.add_mutually_exclusive_group()
    warm.add_argument(
        "--warm-start",
        dest="warm_start",
        action="store_true",
        default=None,
        help="Run in a fork of a background server that has torrip loaded (default, Linux).",
    )
    warm.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_false",
        default=None,
        help="Run in this process, and leave no server behind.",
    )
    return group


def add_general_options(parser: argparse.ArgumentParser) -> None:
    group = add_verbosity_options(parser)
    group.add_argument(
        "--offline",
        action="store_true",
        help="Use no network: index pages, metadata and files come from the cache only "
        "(pages however old); what it lacks is an error.",
    )
    group.add_argument(
        "--isolated",
        action="store_true",
        help="Ignore the config file and TORRIP_* environment variables.",
    )
    group.add_argument("--cache-dir", type=Path, metavar="DIR", help="Store the cache in DIR.")
    group.add_argument(
        "--no-cache-dir",
        dest="no_cache",
        action="store_true",
        default=None,
        help="Disable the cache.",
    )
    group.add_argument(
        "--timeout", type=float, metavar="SEC", help="Set the socket timeout (default 30 seconds)."
    )
    group.add_argument(
        "--retries", type=int, metavar="N", help="Retry each connection up to N times (default 3)."
    )
    group.add_argument(
        "--proxy",
        metavar="URL",
        help="Send every request through this proxy, scheme://[user:passwd@]host:port "
        "(default: HTTP_PROXY, HTTPS_PROXY and ALL_PROXY; NO_PROXY applies to both).",
    )
    group.add_argument(
        "--cert",
        metavar="PATH",
        help="Verify https with this CA bundle, a PEM file (default: SSL_CERT_FILE or "
        "SSL_CERT_DIR, else certifi's).",
    )
    group.add_argument(
        "--trusted-host",
        action="extend",
        type=_comma_list,
        metavar="HOST",
        help="Do not verify the https certificate of this host or host:port (repeatable, "
        "or comma-separated).",
    )


REQUIREMENT_HELP = "A requirement specifier, such as 'requests>=2.31' or 'rich[jupyter]'."


def add_requirement_file_options(
    group: argparse._ActionsContainer, *, files_help: str, constraints: bool = True
) -> None:
    """-r FILE (``files_help`` says what the command does with it) and -c FILE."""
    group.add_argument(
        "-r",
        "--requirement",
        dest="requirement_files",
        action="append",
        default=[],
        metavar="FILE",
        help=files_help,
    )
    if constraints:
        group.add_argument(
            "-c",
            "--constraint",
            dest="constraint_files",
            action="append",
            default=[],
            metavar="FILE",
            help="Constrain versions using the given constraints file. Repeatable.",
        )


def add_requirement_options(
    parser: argparse.ArgumentParser,
    title: str,
    *,
    files_help: str,
    constraints: bool = True,
    requirement_help: str = REQUIREMENT_HELP,
) -> argparse._ArgumentGroup:
    """REQUIREMENT... and, in a group ``title`` (returned), -r FILE and -c FILE."""
    parser.add_argument("requirements", nargs="*", metavar="REQUIREMENT", help=requirement_help)
    group = parser.add_argument_group(title)
    add_requirement_file_options(group, files_help=files_help, constraints=constraints)
    group.add_argument(
        "--group",
        dest="groups",
        metavar="[PATH:]GROUP",
        action="append",
        help="The requirements of a PEP 735 dependency group of ./pyproject.toml (or of "
        "PATH), with the groups it includes. Repeatable.",
    )
    group.add_argument(
        "--extra",
        dest="extras",
        metavar="EXTRA",
        action="append",
        help="With -r pyproject.toml (or a lockfile): also its optional dependencies "
        "EXTRA. Repeatable.",
    )
    group.add_argument(
        "--all-extras",
        action="store_true",
        help="With -r pyproject.toml (or a lockfile): also every one of its extras.",
    )
    return group


def add_python_option(container: argparse._ActionsContainer, *, verb: str = "inspect") -> None:
    """--python, as install has it; ``verb`` says what the command does with the interpreter."""
    container.add_argument(
        "--python",
        metavar="PATH",
        help=f"The interpreter (or virtual environment) to {verb}. Default: "
        "$VIRTUAL_ENV, else ./.venv, else the interpreter torrip runs on.",
    )


def requested(args: argparse.Namespace) -> dict[str, Any]:
    """What the command line asks for, as InstallRequest's fields: requirements, -r and -c
    files, --group, --extra and --all-extras."""
    return {
        "requirements": tuple(args.requirements),
        "requirement_files": tuple(args.requirement_files),
        "constraint_files": tuple(getattr(args, "constraint_files", None) or ()),
        "groups": tuple(args.groups or ()),
        "extras": tuple(args.extras or ()),
        "all_extras": args.all_extras,
    }


def early_index_from_args(
    args: argparse.Namespace, settings: Settings, output: Output
) -> EarlyIndex | None:
    """The index already asked for the pages of what the command line names, while the
    planner loads (``torrip.index.early``); None when that cannot start yet."""
    from torrip.index.early import early_index

    return early_index(
        settings,
        args.requirements,
        requirement_files=args.requirement_files,
        constraint_files=getattr(args, "constraint_files", None) or (),
        log=output.detail,
    )


def require_requirements(args: argparse.Namespace, verb: str, example: str) -> None:
    """TorripError unless the command line names a requirement or a requirements file."""
    from torrip.errors import TorripError

    if not args.requirements and not args.requirement_files and not getattr(args, "groups", None):
        raise TorripError(
            f"you must give at least one requirement to {verb}",
            hint=f"For example: {example}, or torrip {verb} -r requirements.txt.",
        )


def add_no_seed_option(container: argparse._ActionsContainer) -> None:
    container.add_argument(
        "--no-seed",
        action="store_true",
        help="This time, don't hand the downloaded files to the seeding agent or start it.",
    )


def add_pre_option(
    container: argparse._ActionsContainer,
    text: str = "Include pre-release and development versions. By default, only stable "
    "versions are considered.",
) -> None:
    container.add_argument("--pre", action="store_true", default=None, help=text)


def add_layout_options(group: argparse._ArgumentGroup, *, user: bool = False) -> None:
    """--target and --prefix: install into a folder instead of the interpreter's environment;
    with ``user``, --user too."""
    where = group.add_mutually_exclusive_group()
    if user:
        where.add_argument(
            "--user",
            action="store_true",
            help="Install into the interpreter's user site (~/.local on Linux, or "
            "PYTHONUSERBASE), as pip's --user. Not in a virtual environment.",
        )
    where.add_argument(
        "-t",
        "--target",
        metavar="DIR",
        help="Install into DIR instead of the environment: packages at its top level, "
        "scripts in DIR/bin (as pip's and uv's --target). What DIR holds already counts as "
        "installed; nothing else does.",
    )
    where.add_argument(
        "--prefix",
        metavar="DIR",
        help="Install into DIR laid out as the interpreter's own prefix "
        "(DIR/lib/pythonX.Y/site-packages, DIR/bin), as pip's --prefix.",
    )


def add_platform_options(group: argparse._ArgumentGroup) -> None:
    """pip's --platform, --python-version, --implementation and --abi."""
    group.add_argument(
        "--platform",
        dest="platforms",
        metavar="PLATFORM",
        action="append",
        help="Choose wheels for this platform (e.g. manylinux_2_28_x86_64, macosx_11_0_arm64, "
        "win_amd64; older manylinux and macOS ones it runs count too) instead of the "
        "target's. Repeatable.",
    )
    group.add_argument(
        "--python-version",
        metavar="VERSION",
        help="Choose wheels and judge Requires-Python for this Python (3.12, or 312) "
        "instead of the target's.",
    )
    group.add_argument(
        "--implementation",
        metavar="IMPL",
        help="Choose wheels for this implementation: cp (CPython), pp (PyPy), or py for "
        "pure-Python wheels only.",
    )
    group.add_argument(
        "--abi",
        dest="abis",
        metavar="ABI",
        action="append",
        help="Choose wheels for this ABI (e.g. cp312, abi3, none). Repeatable.",
    )


def retarget_from_args(args: argparse.Namespace) -> Retarget | None:
    """What --platform, --python-version, --implementation and --abi ask for; None if none."""
    platforms = tuple(getattr(args, "platforms", None) or ())
    version = getattr(args, "python_version", None)
    implementation = getattr(args, "implementation", None)
    abis = tuple(getattr(args, "abis", None) or ())
    if not (platforms or version or implementation or abis):
        return None
    from torrip.retarget import Retarget, parse_python_version

    return Retarget(
        platforms=platforms,
        python_version=parse_python_version(version) if version else None,
        implementation=implementation,
        abis=abis,
    )


def layout_from_args(args: argparse.Namespace) -> Layout | None:
    """The --target or --prefix folder given, made absolute; or --user."""
    from torrip.environment import Layout
    from torrip.errors import TorripError

    if getattr(args, "user", False):
        return Layout("user", Path())
    for kind in ("target", "prefix"):
        folder = getattr(args, kind, None)
        if folder:
            path = Path(folder).expanduser().absolute()
            if path.exists() and not path.is_dir():
                raise TorripError(
                    f"--{kind} {folder}: not a folder",
                    hint=f"Give --{kind} a folder (it is created if missing).",
                )
            return Layout(kind, path)
    return None


def add_break_system_packages_option(container: argparse._ActionsContainer) -> None:
    container.add_argument(
        "--break-system-packages",
        action="store_true",
        help="Change an interpreter its distributor manages (PEP 668: a Linux distribution's "
        "system Python) all the same. Its package manager may break it, or be broken.",
    )


def add_index_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Package Index Options")
    group.add_argument(
        "-i",
        "--index-url",
        metavar="URL",
        help="Base URL of the Python Package Index (default "
        "https://pypi.org/simple). This should point to a repository "
        "compliant with PEP 503 (the simple repository API) or a local "
        "directory laid out in the same format.",
    )
    group.add_argument(
        "--uploaded-prior-to",
        metavar="DATETIME_OR_DURATION",
        help="Only consider files uploaded before this: an ISO 8601 datetime (e.g. "
        "2025-01-01T00:00:00Z; local time without a zone) or P<n>D (e.g. P3D: uploaded at "
        "least three days ago). Only indexes that give upload times (PEP 700) are filtered.",
    )
    group.add_argument(
        "--keyring-provider",
        choices=("disabled", "subprocess"),
        help="subprocess: when an index answers 401, ask the keyring command on PATH for "
        "its credentials, as pip's option (default: disabled).",
    )
    group.add_argument(
        "--extra-index-url",
        metavar="URL",
        action="append",
        help="Extra URLs of package indexes to use in addition to --index-url. "
        "Should follow the same rules as --index-url.",
    )
    group.add_argument(
        "--index-strategy",
        choices=INDEX_STRATEGIES,
        help="unsafe-best-match (default, as pip): a project's files on every index are "
        "candidates; first-index (uv's default): only those of the first index that has "
        "the project, extra indexes asked before --index-url, so that no public project "
        "can stand in for a private one.",
    )
    group.add_argument(
        "--no-index",
        action="store_true",
        help="Ignore package index (only looking at --find-links URLs instead).",
    )
    group.add_argument(
        "-f",
        "--find-links",
        metavar="URL",
        action="append",
        help="If a URL or path to an html file, then parse for links to "
        "archives. If a local path or file:// URL that's a directory, then "
        "look for archives in the directory listing.",
    )
    group.add_argument(
        "--torrent-index",
        metavar="URL",
        action="append",
        help="A torrent index (<URL>/<sha256[:2]>/<sha256>.torrent) to learn "
        "torrents of distribution files from. Repeatable.",
    )


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _byte_rate(text: str) -> int:
    try:
        return parse_byte_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_p2p_options(parser: argparse.ArgumentParser) -> None:
    """Peer-to-peer settings; each is also a config key and a TORRIP_* variable."""
    group = parser.add_argument_group("Peer-to-peer Options")
    group.add_argument(
        "--no-p2p",
        dest="p2p",
        action="store_false",
        default=None,
        help="Download over HTTP only: no BitTorrent, no DHT, no peers.",
    )
    group.add_argument(
        "--p2p",
        dest="p2p",
        action="store_true",
        default=None,
        help="Download from peers and the origin at once where a torrent is known (default).",
    )
    group.add_argument(
        "--dht-bootstrap",
        type=_comma_list,
        metavar="HOST:PORT,...",
        help="DHT nodes to join the Mainline DHT through (default: the usual public routers).",
    )
    group.add_argument(
        "--trackers",
        type=_comma_list,
        metavar="URL,...",
        help="Extra trackers to announce every torrent to.",
    )
    group.add_argument(
        "--listen",
        type=_comma_list,
        metavar="HOST:PORT,...",
        help="Where to listen for peers (default 0.0.0.0:6881,[::]:6881; port 0 picks a free "
        "port).",
    )
    group.add_argument(
        "--lan-discovery",
        action="store_true",
        default=None,
        help="Find peers on the local network with multicast (local service discovery). Off "
        "by default.",
    )
    group.add_argument(
        "--upload-rate",
        type=_byte_rate,
        metavar="BYTES",
        help="Upload limit in bytes per second (suffixes k, M, G; 0 = unlimited).",
    )
    group.add_argument(
        "--download-rate",
        type=_byte_rate,
        metavar="BYTES",
        help="Download limit from peers in bytes per second (suffixes k, M, G; 0 = unlimited).",
    )


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, set[str]]:
    """Settings with the flags given on this command line on top; and which flags those were."""
    flags: dict[str, Any] = {}
    for dest, name in _SETTING_DESTS.items():
        value = getattr(args, dest, None)
        if value is None or (value is False and name != "p2p"):
            continue
        flags[name] = tuple(value) if isinstance(value, list) else value
    if getattr(args, "no_index", False):
        flags["index_url"] = ""
    flags["verbose"] = getattr(args, "verbose", 0)
    flags["quiet"] = getattr(args, "quiet", 0)
    settings = load_settings(flags, isolated=getattr(args, "isolated", False))
    if getattr(args, "no_index", False):
        settings = settings.replace(extra_index_url=())
    return settings, set(flags) - {"verbose", "quiet"}

"""``torrip agent start|stop|status|run|add|remove|list|service``: the seeding agent.

Examples::

    torrip agent start --upload-rate 2M
    torrip agent status --json
    torrip agent add dist/demo-1.0-py3-none-any.whl
    torrip agent service systemd > ~/.config/systemd/user/torrip-agent.service
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torrip.cli.options import add_general_options, add_p2p_options, settings_from_args
from torrip.cli.output import Output, plural
from torrip.config import Settings, parse_byte_size

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["add_seed_options", "register", "seed_settings_from_args"]

NOT_RUNNING = 3  # exit status of `status` when no agent runs, as `systemctl status` does
_SEED_FLAGS = ("seed_connections", "seed_torrents", "seed_quota", "seed_ratio", "seed_days")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "agent",
        help="Control the seeding agent.",
        description="The seeding agent serves the files torrip downloaded to other torrip "
        "users, from the cache, within limits (docs/agent.md).",
    )
    parser.set_defaults(run=lambda args, output: _usage(parser))
    commands = parser.add_subparsers(title="Subcommands", dest="agent_command", metavar="<sub>")

    start = commands.add_parser(
        "start",
        help="Start the agent in the background.",
        description="Start the agent in the background (returns once it answers); does "
        "nothing if it already runs.",
    )
    _add_daemon_options(start)
    start.set_defaults(run=run_start)

    stop = commands.add_parser("stop", help="Stop the agent.", description="Stop the agent.")
    add_general_options(stop)
    stop.set_defaults(run=run_stop)

    status = commands.add_parser(
        "status",
        help="Show whether the agent runs, what it seeds and uploaded.",
        description="Show the agent's pid, listen address, files seeding, bytes uploaded "
        "in total and this run, peers connected and limits. Exit status 3 when no agent runs.",
    )
    status.add_argument("--json", action="store_true", help="Print one JSON object.")
    add_general_options(status)
    status.set_defaults(run=run_status)

    run = commands.add_parser(
        "run",
        help="Run the agent in the foreground (for service managers).",
        description="Run the agent in the foreground until SIGTERM or `torrip agent stop`; "
        "it logs to stderr.",
    )
    _add_daemon_options(run)
    run.set_defaults(run=run_foreground)

    add = commands.add_parser(
        "add",
        help="Seed distribution files you trust.",
        description="Copy distribution files into the cache, make their torrents by the "
        "recipe, and seed them.",
    )
    add.add_argument("files", nargs="+", metavar="FILE", type=Path)
    add_general_options(add)
    add.set_defaults(run=run_add)

    remove = commands.add_parser(
        "remove",
        help="Stop seeding files (they stay in the cache).",
        description="Stop seeding files, named by file name or sha256 (8 digits or more). "
        "They stay in the cache and are seeded again when an install uses them.",
    )
    remove.add_argument("files", nargs="+", metavar="FILE|SHA256")
    add_general_options(remove)
    remove.set_defaults(run=run_remove)

    listing = commands.add_parser(
        "list",
        help="List the files the agent knows and their state.",
        description="List the files the agent knows: seeding, queued, or stopped and why.",
    )
    listing.add_argument("--json", action="store_true", help="Print one JSON array.")
    add_general_options(listing)
    listing.set_defaults(run=run_list)

    service = commands.add_parser(
        "service",
        help="Print a service definition that runs the agent.",
        description="Print a systemd user unit or a launchd agent that runs the agent at "
        "login, restarts it on failure, at low CPU and I/O priority.",
    )
    service.add_argument("manager", choices=("systemd", "launchd"))
    service.set_defaults(run=run_service)


def add_seed_options(parser: argparse.ArgumentParser) -> None:
    """The agent's limits; each is also a config key and a TORRIP_* variable."""
    group = parser.add_argument_group("Seeding Limits")
    group.add_argument(
        "--seed-connections",
        type=int,
        metavar="N",
        help="Peer connections the agent keeps at most (default 200).",
    )
    group.add_argument(
        "--seed-torrents",
        type=int,
        metavar="N",
        help="Files seeded at once, most recently used first (default 2000; 0 = no limit).",
    )
    group.add_argument(
        "--seed-quota",
        type=_byte_size,
        metavar="BYTES",
        help="Disk quota of the cache; least recently used files no environment needs are "
        "deleted first (default 10G; 0 = none).",
    )
    group.add_argument(
        "--seed-ratio",
        type=float,
        metavar="RATIO",
        help="Stop seeding a file once it uploaded RATIO times its size (default 0 = no limit).",
    )
    group.add_argument(
        "--seed-days",
        type=int,
        metavar="DAYS",
        help="Seed a file for DAYS days after its last use (default 30; 0 = no limit).",
    )


def seed_settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings with this command line's flags, the seeding limits included."""
    settings, _ = settings_from_args(args)
    changes = {name: getattr(args, name, None) for name in _SEED_FLAGS}
    return settings.replace(**{k: v for k, v in changes.items() if v is not None})


def _add_daemon_options(parser: argparse.ArgumentParser) -> None:
    add_seed_options(parser)
    add_p2p_options(parser)
    add_general_options(parser)


def _byte_size(text: str) -> int:
    try:
        return parse_byte_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# -- commands ----------------------------------------------------------------------------


def run_start(args: argparse.Namespace, output: Output) -> int:
    from torrip.agent.client import start_agent
    from torrip.agent.limits import AgentLimits

    settings = seed_settings_from_args(args)
    AgentLimits.from_settings(settings)  # bad limits fail here, not in the daemon
    started = start_agent(settings)
    if started.already_running:
        output.info(f"The agent already runs (pid {started.pid}).")
    else:
        output.info(
            f"Agent started (pid {started.pid}), seeding from {settings.cache_dir}; "
            "stop it with `torrip agent stop`."
        )
    return 0


def run_stop(args: argparse.Namespace, output: Output) -> int:
    from torrip.agent.client import stop_agent

    settings, _ = settings_from_args(args)
    pid = stop_agent(settings)
    output.info("No agent is running." if pid is None else f"Agent stopped (pid {pid}).")
    return 0


def run_status(args: argparse.Namespace, output: Output) -> int:
    from torrip.agent.client import connect, lock_is_free, read_pid
    from torrip.agent.paths import agent_paths

    settings, _ = settings_from_args(args)
    paths = agent_paths(settings)
    client = connect(paths)
    if client is None:
        stale = read_pid(paths) is not None and lock_is_free(paths)
        if args.json:
            output.data(json.dumps({"running": False, "stale_files": stale}))
        else:
            output.info("No agent is running.")
            if stale:
                output.detail(
                    f"a killed agent's files remain in {paths.run}; a start replaces them"
                )
        return NOT_RUNNING
    with client:
        status = client.call("status")
    if args.json:
        output.data(json.dumps({"running": True, **status}, indent=2))
        return 0
    for line in render_status(status):
        output.info(line)
    return 0


def render_status(status: dict[str, Any]) -> list[str]:
    limits = status.get("limits", {})
    uptime = _duration(float(status.get("uptime", 0)))
    rows = [
        ("agent", f"running, pid {status['pid']}, for {uptime} (torrip {status['version']})"),
        ("listening", ", ".join(status.get("listen", [])) or "nowhere"),
        ("DHT nodes", str(status.get("dht_nodes", 0))),
        (
            "files",
            f"{status['files_seeding']} seeding, {status['files_pending']} starting, "
            f"{status['files_stopped']} stopped",
        ),
        ("peers", str(status.get("peers", 0))),
        (
            "uploaded",
            f"{_bytes(status['uploaded_total'])} in total, "
            f"{_bytes(status['uploaded_run'])} this run, {_bytes(status['upload_rate'])}/s now",
        ),
        ("limits", _render_limits(limits)),
        ("cache", str(status.get("cache_dir"))),
    ]
    if status.get("discarded_corrupt"):
        rows.append(("corrupt", f"{status['discarded_corrupt']} cached files deleted"))
    if status.get("state_rebuilt"):
        rows.append(("state", f"rebuilt from the cache: {status['state_rebuilt']}"))
    width = max(len(label) for label, _ in rows) + 1
    return [f"{label + ':':<{width}} {value}" for label, value in rows]


def run_foreground(args: argparse.Namespace, output: Output) -> int:
    from torrip.agent.limits import AgentLimits
    from torrip.agent.paths import agent_paths
    from torrip.agent.server import AgentServer

    settings = seed_settings_from_args(args)
    AgentLimits.from_settings(settings)

    def log(message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} {message}", file=sys.stderr, flush=True)

    return AgentServer(settings, agent_paths(settings), log=log).run()


def run_add(args: argparse.Namespace, output: Output) -> int:
    from torrip.agent.client import connect
    from torrip.agent.paths import agent_paths
    from torrip.agent.torrents import import_file
    from torrip.cache import DistributionCache
    from torrip.errors import TorripError

    settings, _ = settings_from_args(args)
    if settings.no_cache:
        raise TorripError("the agent seeds from the cache", hint="Drop --no-cache-dir.")
    cache = DistributionCache(settings.cache_dir)
    imported = [import_file(cache, path, trackers=settings.trackers) for path in args.files]
    for item in imported:
        output.detail(f"{item.path.name}: {item.sha256} btih {item.torrent.btih}")
    client = connect(agent_paths(settings))
    if client is None:
        output.info(
            f"Added {plural(len(imported), 'file')} to the cache; they are seeded once the agent "
            "runs (`torrip agent start`)."
        )
        return 0
    with client:
        result = client.call("add", files=[item.sha256 for item in imported])
    output.info(f"Seeding {plural(len(result['added']), 'file')}.")
    return 0


def run_remove(args: argparse.Namespace, output: Output) -> int:
    client = _running_client(args)
    with client:
        result = client.call("remove", files=list(args.files))
    for name in result["removed"]:
        output.info(f"Stopped seeding {name}")
    for key in result["unknown"]:
        output.warning(f"the agent does not know {key}")
    return 0 if result["removed"] else 1


def run_list(args: argparse.Namespace, output: Output) -> int:
    client = _running_client(args)
    with client:
        files = client.call("list")["files"]
    if args.json:
        output.data(json.dumps(files, indent=2))
        return 0
    if not files:
        output.info("The agent knows no files yet.")
        return 0
    width = max(len(row["filename"]) for row in files)
    for row in files:
        output.info(
            f"{row['filename']:<{width}}  {row['sha256'][:12]}  {_bytes(row['size']):>9}  "
            f"up {_bytes(row['uploaded']):>9}  {row['peers']:>3} peers  {row['state']}"
        )
    return 0


def run_service(args: argparse.Namespace, output: Output) -> int:
    from torrip.agent.service import service_text

    output.data(service_text(args.manager, sys.executable))
    return 0


def _running_client(args: argparse.Namespace) -> Any:
    from torrip.agent.client import connect
    from torrip.agent.paths import agent_paths
    from torrip.agent.protocol import AgentError

    settings, _ = settings_from_args(args)
    client = connect(agent_paths(settings))
    if client is None:
        raise AgentError("no agent is running", hint="Start it with `torrip agent start`.")
    return client


# -- formatting --------------------------------------------------------------------------


def _render_limits(limits: dict[str, Any]) -> str:
    def limit(key: str, text: str) -> str:
        return text if limits.get(key) else "none"

    rate = limits.get("upload_rate", 0)
    return ", ".join(
        [
            f"upload {limit('upload_rate', _bytes(rate) + '/s')}",
            f"{limits.get('connections')} connections",
            f"{limit('torrents', str(limits.get('torrents')))} files",
            f"quota {limit('quota', _bytes(limits.get('quota', 0)))}",
            f"ratio {limit('ratio', str(limits.get('ratio')))}",
            f"days {limit('days', str(limits.get('days')))}",
        ]
    )


def _bytes(count: float) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"

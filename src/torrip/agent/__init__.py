"""The seeding agent: one per-user daemon that keeps serving what torrip downloaded.

    paths = agent_paths(settings)            # socket, pid and lock files; state and log
    result = start_agent(settings)           # daemonizes; returns once the agent answers
    with connect(paths) as client:           # None when no agent runs
        client.call("status")
    stop_agent(settings)

Modules, each at one seam:

- ``paths``: the private run folder (socket, pid, lock) and the state folder in the cache;
- ``protocol``: the newline-delimited JSON messages on the control socket (docs/agent.md);
- ``limits``: the settings that bound the agent, and the pure choices they make (which
  files to seed, which to evict for the disk quota);
- ``state``: which files are seeded, their upload totals, written atomically, rebuilt
  from the cache when damaged;
- ``seeder``: the libtorrent session that seeds cache files, read-only, in seed mode;
- ``server``: the daemon's loop: control socket, peer uid check, signals;
- ``client``: talking to the agent, starting and stopping it;
- ``handoff``: what ``torrip install`` does after an install (start per ``seed``, hand files);
- ``service``: a systemd user unit and a launchd agent for the daemon.
"""

from __future__ import annotations

__all__: list[str] = []

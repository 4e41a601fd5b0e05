"""Warm start: commands run in a fork of a process that has torrip imported already.

Starting Python and importing torrip (packaging, resolvelib, installer, httpx, rich and
torrip's own modules) costs 100-150 ms of every command, more than uv takes for a whole
warm install. So after a command, torrip leaves a small server behind (Linux only): a
single-threaded process with every module imported, that forks once per command. The
``torrip`` command connects to it, hands over its standard streams (the file descriptors
themselves), its arguments, working folder, environment and umask, and waits for the
fork's exit status; the fork runs the command exactly as the process itself would have.

- ``identity``: what must match for a server to run this process's commands (the same
  interpreter, flags and import path), and where its socket lives;
- ``client``: the ``torrip`` command's side; stdlib only, since it runs before anything
  is imported;
- ``server``: the forking server.

The server leaves after 10 minutes without a command, or as soon as a file it imported
has changed (torrip or a dependency upgraded); the next command then runs in-process and
starts a new one. ``warm-start = false`` (``--no-warm-start``, ``TORRIP_WARM_START=0``)
turns it off.
"""

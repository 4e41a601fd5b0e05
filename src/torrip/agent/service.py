"""Service definitions that keep the agent running: a systemd user unit, a launchd agent.

    print(systemd_unit(sys.executable))
    # ~/.config/systemd/user/torrip-agent.service, then:
    #   systemctl --user daemon-reload && systemctl --user enable --now torrip-agent

Both run ``python -m torrip agent run`` (the agent in the foreground: the service
manager owns the process), restart it when it fails, and run it at low CPU and I/O
priority: seeding must never slow the machine down.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

__all__ = ["LAUNCHD_LABEL", "SERVICES", "launchd_plist", "service_text", "systemd_unit"]

SERVICES = ("systemd", "launchd")
LAUNCHD_LABEL = "org.torrip.agent"


def systemd_unit(python: str) -> str:
    """A systemd user unit (``~/.config/systemd/user/torrip-agent.service``)."""
    return f"""\
[Unit]
Description=torrip seeding agent: serves the packages torrip downloaded to other users
After=network-online.target

[Service]
Type=simple
ExecStart={_quote_systemd(python)} -m torrip agent run
Restart=on-failure
RestartSec=30
Nice=10
IOSchedulingClass=idle
# The agent needs nothing beyond its cache, its run folder and the network.
NoNewPrivileges=yes
PrivateTmp=yes

[Install]
WantedBy=default.target
"""


def launchd_plist(python: str) -> str:
    """A launchd agent (``~/Library/LaunchAgents/org.torrip.agent.plist``)."""
    return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{LAUNCHD_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
    <string>{escape(python)}</string>
    <string>-m</string>
    <string>torrip</string>
    <string>agent</string>
    <string>run</string>
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ProcessType</key>
  <string>Background</string>
  <key>LowPriorityIO</key>
  <true/>
  <key>Nice</key>
  <integer>10</integer>
</dict>
</plist>
"""


def service_text(kind: str, python: str) -> str:
    if kind == "systemd":
        return systemd_unit(python)
    if kind == "launchd":
        return launchd_plist(python)
    raise ValueError(f"unknown service manager {kind!r}; known: {', '.join(SERVICES)}")


def _quote_systemd(path: str) -> str:
    """A path for ExecStart: quoted when it has spaces (systemd splits on them)."""
    if any(char in path for char in ' "\\'):
        return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return path

"""The few bytes a command and a warm-start server exchange over their Unix socket.

The command sends ``MAGIC``, a 4-byte big-endian length and a marshalled request, with
its standard streams' file descriptors (SCM_RIGHTS) on the first bytes. The server
answers ``P<pid>\\n`` once a fork runs the command (``R<reason>\\n`` if it will not run
it), then ``X<status>\\n`` when that fork has ended. marshal, not JSON: both ends are the
same interpreter (the request's identity says so), and it costs no import.
"""

from __future__ import annotations

import _socket
import sys

__all__ = ["MAGIC", "peer_uid"]

MAGIC = b"TWS1"


def peer_uid(connection: _socket.socket) -> int:
    """The user id of the process at the other end (Linux's SO_PEERCRED: pid, uid, gid)."""
    credentials = connection.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return int.from_bytes(credentials[4:8], sys.byteorder)

"""The few bytes a command and a warm-start server exchange over their Unix socket.

The command sends ``MAGIC``, a 4-byte big-endian length and a marshalled request, with
its standard streams' file descriptors (SCM_RIGHTS) on the first bytes. The fork that
will run it answers ``P<pid>\\n`` (``R<reason>\\n`` if it will not run it); the command
says ``G`` (go ahead: it did not give up waiting), and the fork answers ``X<status>\\n``
when the command has ended. marshal, not JSON: both ends are the same interpreter (the
request's identity says so), and it costs no import.
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

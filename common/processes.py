"""Processes of this machine: whether one that left its name somewhere still runs.

A process killed with SIGKILL (the OOM killer, a supervisor's hard stop) runs no
exit hook: what it held in shared places (a job's lease, its live gauges in the
Prometheus directory) stays behind in its name. Whoever finds such a name asks here.
"""

from __future__ import annotations

import os
import socket

# This machine's name as a process's owner strings carry it (jobs.services.OWNER).
HOSTNAME = socket.gethostname()


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (one we may not signal runs too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(owner: str) -> bool:
    """Whether ``owner`` ("<hostname>:<pid>") names a process of this machine that no longer runs.

    Another machine's process (another container: its own hostname) is never
    known to be gone from here, nor is this process itself.
    """
    host, _, pid = owner.rpartition(":")
    if host != HOSTNAME or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return not process_running(int(pid))

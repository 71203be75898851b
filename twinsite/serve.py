"""``python -m twinsite.serve [daphne options]``: daphne serving the twin, with its limits.

daphne refuses to *send* a websocket message larger than its
``--websocket-max-message-size`` (1 MiB by default, an autobahn rule that
covers both directions): a twin-state of about 2,000 hosts is larger, and
dashboards would be disconnected at every push. The twin raises the limit to
``TWIN_WS_MAX_MESSAGE_BYTES`` (32 MiB by default, about 60,000 hosts; beyond
that, use the delta stream). Incoming Socket.IO packets stay limited to 1 MB by
python-engineio.

daphne's own access log is off unless asked for (``--access-log``): its lines are
plain text whatever ``LOG_FORMAT`` says, and they carry query strings. The
``ops.requests`` logger writes one line per Django request instead (with its
request id), and nginx logs every request, Socket.IO's included.
"""

from __future__ import annotations

import os
import sys

from daphne.cli import CommandLineInterface

APPLICATION = "twinsite.asgi:application"
DEFAULT_WS_MAX_MESSAGE_BYTES = 32 * 2**20


def daphne_arguments(extra: list[str]) -> list[str]:
    """daphne's command line: the twin's limits, then the caller's options, then the app."""
    limit = os.environ.get("TWIN_WS_MAX_MESSAGE_BYTES", str(DEFAULT_WS_MAX_MESSAGE_BYTES))
    access_log = [] if any(arg.startswith("--access-log") for arg in extra) else ["--access-log", os.devnull]
    return ["--websocket-max-message-size", limit, *access_log, *extra, APPLICATION]


if __name__ == "__main__":
    CommandLineInterface().run(daphne_arguments(sys.argv[1:]))

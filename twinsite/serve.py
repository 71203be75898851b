"""``python -m twinsite.serve [daphne options]``: daphne serving the twin, with its limits.

daphne refuses to *send* a websocket message larger than its
``--websocket-max-message-size`` (1 MiB by default, an autobahn rule that
covers both directions): a twin-state of about 2,000 hosts is larger, and
dashboards would be disconnected at every push. The twin raises the limit to
``TWIN_WS_MAX_MESSAGE_BYTES`` (32 MiB by default, about 60,000 hosts; beyond
that, use the delta stream). Incoming Socket.IO packets stay limited to 1 MB by
python-engineio.
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
    return ["--websocket-max-message-size", limit, *extra, APPLICATION]


if __name__ == "__main__":
    CommandLineInterface().run(daphne_arguments(sys.argv[1:]))

"""The ASGI application: Socket.IO outside, Django (through Channels) inside.

Socket.IO wraps the Django app rather than sitting under Channels' websocket
route, because its long-polling transport is plain HTTP.
"""

import gc
import os
from typing import Any

import socketio
from channels.routing import ProtocolTypeRouter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")

from twinsite.installation import installation_prepare

# Every server loads this module first (python -m twinsite.serve, or any ASGI
# server): var/ and, without SECRET_KEY, this installation's own key, before
# the settings read it.
installation_prepare()

from twinsite.handler import one_hop_asgi_application  # noqa: E402

# Django's ASGI handler, serving a sync view with one thread hop (twinsite/handler.py).
django_asgi_app = one_hop_asgi_application()

from commands.longpoll import PENDING_PATH, pending_asgi  # noqa: E402
from hosts.apps import open_mode_warn  # noqa: E402
from jobs.runner import runner_ensure_started  # noqa: E402  (needs the apps loaded)
from twin.live import server_create  # noqa: E402
from twin.live.transport import EngineIOGuard  # noqa: E402

sio, live = server_create()
open_mode_warn()
# The job runner is a thread: it starts now, before any request, so deadlines
# pass and statuses change by the clock even in a process nobody talks to.
runner_ensure_started()

# Everything loaded so far lives as long as the process. Frozen, it is left out
# of every garbage collection, which makes collections cheap enough to keep
# Python's default thresholds: a 10,000-host snapshot builds as fast as with
# collections postponed (112-114 ms against 134 unfrozen, bench/analysis.md),
# and reference cycles are still freed promptly. Postponing them was a leak in
# effect: Django's ASGI handler leaves each response in a cycle (a cancelled
# task's traceback holds the handler's frame), and 5 MB snapshot responses
# piled up until a full collection.
gc.freeze()

SOCKETIO_PREFIX = "/socket.io/"
socketio_app = EngineIOGuard(
    socketio.ASGIApp(
        sio,
        other_asgi_app=ProtocolTypeRouter({"http": django_asgi_app}),
        socketio_path="socket.io",
    ),
    path=SOCKETIO_PREFIX,
    max_bytes=sio.eio.max_http_buffer_size,
)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The twin's ASGI app; starts this process's live side on its first request.

    daphne sends no lifespan events, so the first request of any kind starts the
    listener: events for agents' long polls must arrive even in a process no
    dashboard has connected to yet. After the first, this is a comparison or two.
    """
    live.ensure_started()
    if scope["type"] == "http" and not scope["path"].startswith(SOCKETIO_PREFIX):
        if scope["path"] == PENDING_PATH and scope["method"] == "GET":
            # Agents' long polls wait on the event loop alone, outside Django (commands/longpoll.py).
            await pending_asgi(scope, receive, send)
            return
        # Straight to Django: the Socket.IO layers would only pass it on.
        await django_asgi_app(scope, receive, send)
        return
    await socketio_app(scope, receive, send)

"""The ASGI application: Socket.IO outside, Django (through Channels) inside.

Socket.IO wraps the Django app rather than sitting under Channels' websocket
route, because its long-polling transport is plain HTTP.
"""

import gc
import os

import socketio
from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")

# A snapshot of 10,000 hosts allocates some 100,000 small objects; with the
# default gen-0 threshold (700) the collector runs over the whole large heap
# many times per build. At 50,000 a build took 117 ms instead of 153 ms
# (bench/results.md). Reference counting still frees everything acyclic at once.
gc.set_threshold(50_000, 20, 100)
django_asgi_app = get_asgi_application()

from twin.realtime import server_create  # noqa: E402  (needs the apps loaded)

sio, broadcaster = server_create()

application = socketio.ASGIApp(
    sio,
    other_asgi_app=ProtocolTypeRouter({"http": django_asgi_app}),
    socketio_path="socket.io",
)

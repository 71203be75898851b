"""The ASGI application: Socket.IO outside, Django (through Channels) inside.

Socket.IO wraps the Django app rather than sitting under Channels' websocket
route, because its long-polling transport is plain HTTP.
"""

import os

import socketio
from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")
django_asgi_app = get_asgi_application()

from twin.realtime import server_create  # noqa: E402  (needs the apps loaded)

sio, broadcaster = server_create()

application = socketio.ASGIApp(
    sio,
    other_asgi_app=ProtocolTypeRouter({"http": django_asgi_app}),
    socketio_path="socket.io",
)

"""``bench.bare_django.asgi:application``: Django's own ASGI handler, nothing around it."""

import os

from django.core.asgi import get_asgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare_django.settings"
application = get_asgi_application()

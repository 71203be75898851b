"""The bare-Django floor of the agents-per-process figure: two middlewares, one JSON view, no database.

What Django itself allows per request, served by the same daphne invocation as
the twin (``bench.harness.daphne``), so the twin's stack is measured against it.
"""

import os

SECRET_KEY = os.environ.get("SECRET_KEY", "bench-bare-django-only-" + "x" * 40)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.bare_django.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES: dict = {}
USE_TZ = True

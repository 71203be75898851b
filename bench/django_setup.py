"""Point Django at a fresh benchmark database; import this before anything of the project.

``BENCH_DATABASE_URL`` (default: the local server's ``twin_bench``) is dropped
and created anew, so a run starts from nothing and leaves nothing elsewhere.
"""

from __future__ import annotations

import gc
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/twin_bench")
# A fresh random key each run: the servers refuse a short or published one outside DEBUG.
SECRET = secrets.token_urlsafe(64)
os.environ.update(
    {
        "DATABASE_URL": DATABASE_URL,
        "SECRET_KEY": SECRET,
        "TWIN_CREDENTIAL_KEY": SECRET,
        "DJANGO_SETTINGS_MODULE": "twinsite.settings",
        "LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("REDIS_URL", None)
# This script calls the ORM between measurements, from its event loop, on
# purpose; the servers it starts do not inherit this.
BENCH_ONLY_ENV = {"DJANGO_ALLOW_ASYNC_UNSAFE": "true"}
os.environ.update(BENCH_ONLY_ENV)


def database_recreate() -> None:
    import psycopg

    url = urlparse(DATABASE_URL)
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


database_recreate()

import django  # noqa: E402

django.setup()

# As the server does (twinsite/asgi.py): what is loaded now lives as long as the
# process, and in-process figures (the snapshot and its floor) should see the
# garbage collector the server sees.
gc.freeze()

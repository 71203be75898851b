"""This installation's own files: the folder ``var/`` and, unless ``SECRET_KEY`` is set, its own secret key.

Made by the entry points before the settings are read (``manage.py``,
``twinsite.asgi`` that every server loads, a test run's start), never by
importing the settings: ``twinsite.settings`` only reads the key that is there
(``secret_key_read``). Free of Django's settings, so it can run before them.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
# Collected static files; WhiteNoise, which serves from the apps without collectstatic, only asks that it exist.
STATIC_ROOT = VAR_DIR / "static"


def secret_key_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where this installation's own key is kept: ``TWIN_SECRET_KEY_FILE``, by default ``var/secret_key``."""
    return Path(environ.get("TWIN_SECRET_KEY_FILE", "") or VAR_DIR / "secret_key")


def installation_prepare(environ: Mapping[str, str] = os.environ) -> None:
    """Make ``var/`` (with its static folder) and, when no ``SECRET_KEY`` is given, the installation's key.

    Called once by each entry point, before Django reads its settings.
    """
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
    if not environ.get("SECRET_KEY"):
        secret_key_make(secret_key_file(environ))


def secret_key_make(path: Path) -> None:
    """Make this installation's own random key in ``path`` (readable by its owner only), unless it is there.

    Two processes starting at once agree: each writes a complete candidate to a
    private file, then links it into place, which only the first can do;
    everyone reads what is there.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(64) + "\n")
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(candidate, path)
    except FileExistsError:
        pass  # another process was first: its key is the key
    finally:
        os.unlink(candidate)


def secret_key_read(path: Path) -> str:
    """The installation's key kept in ``path``; refused when others may read it or when it was never made."""
    if not path.exists():
        raise ImproperlyConfigured(
            f"SECRET_KEY is not set and {path} does not exist: set SECRET_KEY, or start the twin with "
            "manage.py or python -m twinsite.serve, which make this installation's own."
        )
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ImproperlyConfigured(f"{path} is readable by others: make it readable by its owner only (chmod 600).")
    return path.read_text().strip()

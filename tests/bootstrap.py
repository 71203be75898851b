"""A test run's start, as ``manage.py``'s: loaded with ``-p tests.bootstrap``, before pytest-django reads the settings.

The run gets a throwaway ``SECRET_KEY`` of its own unless one is given, so it
neither reads nor makes the installation's key (``var/secret_key``), and the
folders the settings point at (``twinsite.installation``). Servers the tests
start are handed this key (``tests/e2e/conftest.py``).
"""

from __future__ import annotations

import os
import secrets

from twinsite.installation import installation_prepare

if not os.environ.get("SECRET_KEY"):
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(64)
installation_prepare()

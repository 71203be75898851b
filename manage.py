#!/usr/bin/env python
"""Django's command-line utility for the digital twin."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twinsite.settings")
    from twinsite.installation import installation_prepare

    # var/ and, without SECRET_KEY, this installation's own key: before the settings read it.
    installation_prepare()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

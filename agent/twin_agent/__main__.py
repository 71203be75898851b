"""``python -m twin_agent``: the same as the ``twin-agent`` console script."""

import sys

from twin_agent.cli import main

sys.exit(main())

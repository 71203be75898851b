"""The reference agent of the data-center digital twin.

A package of its own: it imports nothing from the server (no Django), so it
installs on a host with ``pip install ./agent`` and only psutil and urllib3.
"""

__version__ = "0.1.0"

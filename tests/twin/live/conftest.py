"""The end-to-end fixtures of tests/e2e, for the live side's tests against a real server."""

from tests.e2e.conftest import channel_prefix, live_twin  # noqa: F401  (fixtures)

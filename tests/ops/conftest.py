"""The end-to-end fixtures of tests/e2e, for the operator's end-to-end tests here."""

from tests.e2e.conftest import channel_prefix, live_twin  # noqa: F401  (fixtures)

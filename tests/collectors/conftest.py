# The live server of the end-to-end tests, for the test with a real Prometheus.
from tests.e2e.conftest import channel_prefix, live_twin  # noqa: F401

"""The background jobs of alerts."""

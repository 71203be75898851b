"""Helpers every app shares: JSON bodies and errors, time formats, text rules, event envelopes.

The bottom layer: it imports no app of this project (see ``docs/architecture.md``).
"""

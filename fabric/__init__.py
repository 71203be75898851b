"""The network fabric derived: reachability from the core and what a failure would do (plain functions)."""

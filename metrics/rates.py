"""Rates from counters: reset-safe, so a restart never draws a spike or a negative rate."""

from __future__ import annotations

from datetime import datetime


def link_throughput_gbps(
    *,
    sample_time: datetime | None,
    tx: int | None,
    rx: int | None,
    prev_time: datetime | None,
    prev_tx: int | None,
    prev_rx: int | None,
) -> float | None:
    """Gbit/s between the last two counter readings: (Δtx + Δrx) · 8 / Δt / 10⁹.

    ``None`` when there is no rate to give: fewer than two readings, no time
    between them, or a counter that went down (the agent restarted, or the
    counter wrapped). A wrong guess there would draw a spike or a negative rate.
    """
    if sample_time is None or prev_time is None or tx is None or rx is None or prev_tx is None or prev_rx is None:
        return None
    seconds = (sample_time - prev_time).total_seconds()
    if seconds <= 0 or tx < prev_tx or rx < prev_rx:
        return None
    return (tx - prev_tx + rx - prev_rx) * 8 / seconds / 1e9

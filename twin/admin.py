"""The host page in the admin, with its history: a chart, its status changes and its recent samples.

The inventory's admin (``hosts.admin.HostAdmin``) knows nothing of measurements
or status; this layer, which reads both, extends it.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from common.formats import iso_utc
from hosts.admin import HostAdmin
from hosts.models import Host
from metrics.history import series_read
from metrics.models import Sample
from metrics.selectors import host_first_sample_at
from twin.charts import line_chart
from twin.selectors import host_status_events

CHART_HOURS = 24
CHART_STEP_SECONDS = 300
# A host younger than a day is charted from its first sample (at least this long a
# window), not squeezed into the right edge of a 24-hour axis.
CHART_MIN_SECONDS = 1800
CHART_POINTS = 240
EVENTS_SHOWN = 20
SAMPLES_SHOWN = 10


class HostWithHistoryAdmin(HostAdmin):
    """The inventory's host page, plus its last day of history (read-only)."""

    readonly_fields = [*HostAdmin.readonly_fields, "history_chart", "status_changes", "recent_samples"]
    fieldsets = [
        *HostAdmin.fieldsets,
        ("History", {"fields": ["history_chart", "status_changes", "recent_samples"]}),
    ]

    @admin.display(description=f"last {CHART_HOURS} hours (from the first sample, if later)")
    def history_chart(self, host: Host) -> SafeString | str:
        if host.pk is None:
            return "-"
        now = timezone.now()
        start = now - timedelta(hours=CHART_HOURS)
        step = CHART_STEP_SECONDS
        first = host_first_sample_at(host_id=host.pk, since=start)
        if first is not None and first > start:
            start = min(first, now - timedelta(seconds=CHART_MIN_SECONDS))
            step = max(1, math.ceil((now - start).total_seconds() / CHART_POINTS))
        series = series_read(
            host_id=host.pk,
            start=start,
            end=now,
            step=step,
            keys=("cpuLoad", "memoryUsedPercent", "netBytesTx", "netBytesRx"),
            now=now,
        )
        common = {"times": series.times, "start": series.start, "end": series.end}
        load = line_chart(
            lines={"CPU %": series.values["cpuLoad"]["avg"], "memory %": series.values["memoryUsedPercent"]["avg"]},
            unit="%",
            y_max=100.0,
            **common,
        )
        traffic = line_chart(
            lines={"sent B/s": series.values["netBytesTx"]["avg"], "received B/s": series.values["netBytesRx"]["avg"]},
            unit="B/s",
            **common,
        )
        return format_html(
            "{}<br>{}<p class='help'>{}-second averages (resolution {}).</p>",
            load,
            traffic,
            series.step,
            series.resolution,
        )

    @admin.display(description="status changes")
    def status_changes(self, host: Host) -> SafeString | str:
        if host.pk is None:
            return "-"
        events = host_status_events(host_id=host.pk, start=None, end=timezone.now(), limit=EVENTS_SHOWN)
        if not events:
            return "None recorded yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
            ((iso_utc(e.at), e.from_status or "(new)", e.to_status, e.get_cause_display()) for e in reversed(events)),
        )
        return format_html("<table><tr><th>at</th><th>change</th><th>cause</th></tr>{}</table>", rows)

    @admin.display(description="recent samples")
    def recent_samples(self, host: Host) -> SafeString | str:
        if host.pk is None:
            return "-"
        samples = Sample.objects.filter(host=host).order_by("-timestamp")[:SAMPLES_SHOWN]
        if not samples:
            return "None."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    iso_utc(s.timestamp),
                    iso_utc(s.received_at),
                    s.cpu_load,
                    s.memory_used_percent,
                    s.load_average,
                    s.net_bytes_tx,
                    s.net_bytes_rx,
                )
                for s in samples
            ),
        )
        head = SafeString(
            "<tr><th>stamped</th><th>received</th><th>CPU %</th><th>memory %</th><th>load</th>"
            "<th>sent B</th><th>received B</th></tr>"
        )
        return format_html("<table>{}{}</table>", head, rows)

"""The host page in the admin, with its history: a chart, its status changes and its recent samples.

The inventory's admin (``hosts.admin.HostAdmin``) knows nothing of measurements
or status; this layer, which reads both, extends it.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
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
from twin.status import HostStatus, host_status

CHART_HOURS = 24
CHART_STEP_SECONDS = 300
# A host younger than a day is charted from its first sample (at least this long a
# window), not squeezed into the right edge of a 24-hour axis.
CHART_MIN_SECONDS = 1800
CHART_POINTS = 240
EVENTS_SHOWN = 20
SAMPLES_SHOWN = 10


# Okabe-Ito, as on the dashboard's floor (dashboard/static/dashboard/js/colors.js).
STATUS_COLOURS = {
    HostStatus.ONLINE: "#009e73",
    HostStatus.STALE: "#e69f00",
    HostStatus.OFFLINE: "#d55e00",
    HostStatus.UNKNOWN: "#8a8a8a",
}


class StatusFilter(admin.SimpleListFilter):
    """Hosts by status, read from the age of their last sample as the twin reads it."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s.value, s.value) for s in HostStatus]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Host]) -> QuerySet[Host]:
        value = self.value()
        if value is None:
            return queryset
        now = timezone.now()
        stale_from = now - timedelta(seconds=settings.TWIN_STALE_AFTER_SECONDS)
        offline_from = now - timedelta(seconds=settings.TWIN_OFFLINE_AFTER_SECONDS)
        if value == HostStatus.ONLINE:
            return queryset.filter(latest__last_seen__gt=stale_from)
        if value == HostStatus.STALE:
            return queryset.filter(latest__last_seen__gt=offline_from, latest__last_seen__lte=stale_from)
        if value == HostStatus.OFFLINE:
            return queryset.filter(latest__last_seen__lte=offline_from)
        if value == HostStatus.UNKNOWN:
            # A virtual node that reports nothing is listed as "virtual node", not as unknown.
            return queryset.filter(latest__isnull=True, is_virtual=False)
        raise admin.options.IncorrectLookupParameters(f"status: {value!r} is none of {', '.join(HostStatus)}")


class HostWithHistoryAdmin(HostAdmin):
    """The inventory's host page, plus its last day of history (read-only)."""

    readonly_fields = [*HostAdmin.readonly_fields, "history_chart", "status_changes", "recent_samples"]
    fieldsets = [
        *HostAdmin.fieldsets,
        ("History", {"fields": ["history_chart", "status_changes", "recent_samples"]}),
    ]

    @admin.display(description="status", ordering="latest__last_seen")
    def status(self, host: Host) -> SafeString:
        """The host's status now, from its last contact (a virtual node's follows its neighbours on the floor)."""
        latest = getattr(host, "latest", None)
        status = host_status(last_seen=latest.last_seen if latest else None, now=timezone.now())
        if host.is_virtual and latest is None:
            return SafeString('<span class="help">virtual node</span>')
        return format_html(
            '<span style="white-space: nowrap"><span style="color: {}">●</span> {}</span>',
            STATUS_COLOURS[status],
            status,
        )

    @admin.display(description="CPU %", ordering="latest__cpu_load")
    def cpu(self, host: Host) -> str:
        latest = getattr(host, "latest", None)
        return "-" if latest is None or latest.cpu_load is None else f"{latest.cpu_load:.1f}"

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

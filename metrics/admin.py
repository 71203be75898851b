"""Read-only admin for the metric history: it is written by agents only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from metrics.models import LatestMetrics, Sample


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is evidence: the admin may read and filter it, never edit it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Sample)
class SampleAdmin(ReadOnlyAdmin):
    list_display = ["host", *(f.name for f in Sample._meta.concrete_fields if f.name not in ("id", "host"))]
    list_filter = ["timestamp", "host__rack", "host__is_virtual"]
    search_fields = ["host__hostname"]
    list_select_related = ["host"]
    date_hierarchy = "timestamp"
    # Counting millions of history rows on every page view is the slow part.
    show_full_result_count = False


@admin.register(LatestMetrics)
class LatestMetricsAdmin(ReadOnlyAdmin):
    list_display = ["host", "last_seen", "sample_time", "cpu_load", "memory_used_percent", "load_average"]
    search_fields = ["host__hostname"]
    list_select_related = ["host"]

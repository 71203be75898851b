"""Read-only admin for the latest values: they are written by agents only.

Raw samples and rollups have composite primary keys, which Django's admin
cannot list (Django 5.2); a host's history is shown on its own admin page
instead, as a chart, its recent samples and its status changes (twin/admin.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from metrics.models import LatestMetrics, Series


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is evidence: the admin may read and filter it, never edit it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LatestMetrics)
class LatestMetricsAdmin(ReadOnlyAdmin):
    list_display = ["host", "last_seen", "sample_time", "cpu_load", "memory_used_percent", "load_average"]
    search_fields = ["host__hostname"]
    list_select_related = ["host"]


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    """A host's labelled series, to see what fills its cardinality limit (their values: the series API)."""

    list_display = ["host", "name", "labels", "kind", "unit", "created_at"]
    list_filter = ["kind"]
    search_fields = ["host__hostname", "name"]
    list_select_related = ["host"]

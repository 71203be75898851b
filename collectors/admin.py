"""Collector tokens in the admin: listed and revoked; created with ``manage.py create_collector_token``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from collectors.models import CollectorToken
from collectors.services import collector_tokens_revoke


@admin.register(CollectorToken)
class CollectorTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    # A token is shown once, by the command that makes it: the admin cannot show one to add.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected collector tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[CollectorToken]) -> None:
        count = collector_tokens_revoke(tokens=queryset, now=timezone.now())
        messages.success(request, f"Revoked {count} collector token(s).")

"""Alerts in the admin: rules (checked by the same ``rule_check`` as the API), alerts with their
transitions, receivers, the delivery log, silences and maintenance windows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from alerts.models import (
    Alert,
    AlertTransition,
    MaintenanceWindow,
    Notification,
    Receiver,
    Rule,
    Silence,
)
from alerts.rules import RuleInvalid, RuleSpec, rule_check


class RuleForm(forms.ModelForm):
    """The rule's fields, refused by ``alerts.rules.rule_check`` on the field it names."""

    class Meta:
        model = Rule
        fields = [
            "name",
            "enabled",
            "kind",
            "field",
            "operator",
            "threshold",
            "clear_threshold",
            "status",
            "for_seconds",
            "severity",
            "labels",
            "annotations",
            "scope",
            "racks",
            "hosts",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        spec = RuleSpec(
            name=data.get("name", ""),
            kind=data.get("kind", ""),
            field=data.get("field", ""),
            operator=data.get("operator", ""),
            threshold=data.get("threshold"),
            clear_threshold=data.get("clear_threshold"),
            status=data.get("status", ""),
            for_seconds=data.get("for_seconds") or 0.0,
            severity=data.get("severity", ""),
            labels=data.get("labels") or {},
            annotations=data.get("annotations") or {},
            scope=data.get("scope", ""),
            racks=[r.name for r in data.get("racks") or []],
            hosts=[h.hostname for h in data.get("hosts") or []],
            enabled=bool(data.get("enabled")),
        )
        try:
            rule_check(spec, rule_id=self.instance.pk)
        except RuleInvalid as refusal:
            target = refusal.field if refusal.field in self.fields else None
            self.add_error(target, refusal.detail)
        return data


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["name", "enabled", "kind", "field", "operator", "threshold", "status", "for_seconds", "severity"]
    list_filter = ["enabled", "kind", "severity", "scope"]
    search_fields = ["name"]
    filter_horizontal = ["racks", "hosts"]


class TransitionInline(admin.TabularInline):
    model = AlertTransition
    extra = 0
    can_delete = False
    readonly_fields = ["from_state", "to_state", "at", "values"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts are the evaluator's record."""

    list_display = ["rule", "host", "rack", "state", "starts_at", "fired_at", "ends_at", "cause"]
    list_filter = ["state", "rule", ("cause", admin.EmptyFieldListFilter)]
    search_fields = ["host__hostname", "rack__name", "rule__name"]
    date_hierarchy = "starts_at"
    list_select_related = ["rule", "host", "rack", "cause"]
    readonly_fields = [f.name for f in Alert._meta.fields]
    inlines = [TransitionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Receiver)
class ReceiverAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "url", "enabled"]
    list_filter = ["kind", "enabled"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The delivery log: each notice, its attempts and its last error."""

    list_display = ["id", "receiver", "transition", "state", "attempts", "next_attempt_at", "sent_at", "last_error"]
    list_filter = ["state", "receiver"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ["id", "matchers", "starts_at", "ends_at", "comment", "created_by"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: Silence, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    list_display = ["name", "starts_at", "ends_at", "weekly", "created_by"]
    filter_horizontal = ["racks", "hosts"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: MaintenanceWindow, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

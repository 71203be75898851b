"""Admin for the inventory: an operator can run the twin from here alone."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from hosts.admin_filters import RackAutocompleteFilter, rack_filter_media
from hosts.models import AgentCredential, EnrollmentKey, Host, Interface, Link, Rack
from hosts.services import (
    credentials_revoke,
    enrollment_key_assign,
    enrollment_keys_revoke,
    host_admin_save,
    hosts_approve,
    inventory_delete,
    inventory_save,
)


class TwinChangeAdmin(admin.ModelAdmin):
    """Inventory edits go through the inventory services, which tell dashboards after commit."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        inventory_save(obj=obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        inventory_delete(objs=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        inventory_delete(objs=queryset)


@admin.register(Rack)
class RackAdmin(TwinChangeAdmin):
    list_display = ["name", "description", "host_count", "created_at"]
    search_fields = ["name", "description"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rack]:
        return super().get_queryset(request).annotate(host_count=Count("hosts"))

    @admin.display(ordering="host_count", description="hosts")
    def host_count(self, rack: Rack) -> int:
        return rack.host_count  # type: ignore[attr-defined]


# A host with more links than this (the core switch: one per host) lists them
# on the Link pages instead of as inline forms: at about 300 links its page
# sent more fields than Django accepts (TooManyFieldsSent, 1,000), so at
# 10,000 hosts the switch could not be edited at all.
LINK_INLINE_MAX = 50


class LinkInline(admin.TabularInline):
    model = Link
    fk_name = "source"
    extra = 0
    fields = ["target", "capacity_gbps"]
    autocomplete_fields = ["target"]
    verbose_name = "link from this host"
    # Django's default plural adds an "s" to the whole phrase ("link from this hosts").
    verbose_name_plural = "links from this host"


class HostAdminForm(forms.ModelForm):
    """Hostnames are stored as agents report them: lower case, no surrounding whitespace."""

    class Meta:
        model = Host
        # The admin's fieldsets choose what is shown.
        exclude: list[str] = []

    def clean_hostname(self) -> str:
        # Django's CharField already stripped whitespace (and a trailing newline);
        # lower-casing makes "Titan-01" the known "titan-01", which the unique
        # check then refuses as a duplicate.
        return self.cleaned_data["hostname"].lower()


@admin.register(Host)
class HostAdmin(TwinChangeAdmin):
    list_display = [
        "hostname",
        "display_name",
        "ip",
        "rack",
        "platform",
        "agent_version",
        "is_virtual",
        "approved",
        "placement_locked",
        "last_seen",
    ]
    # The rack filter is searched as you type: hundreds of racks as links are no filter.
    list_filter = [
        "approved",
        "is_virtual",
        "placement_locked",
        ("rack", RackAutocompleteFilter),
        "platform",
        "agent_version",
    ]
    form = HostAdminForm
    actions = ["approve"]
    search_fields = ["hostname", "display_name", "ip"]
    list_select_related = ["rack", "latest"]
    # Searched as you type: a select listing every host (10,000 options on
    # every host page) is neither usable nor light.
    autocomplete_fields = ["rack", "reports_for"]
    readonly_fields = ["created_at", "last_seen", "links"]
    inlines = [LinkInline]
    fieldsets = [
        (None, {"fields": ["hostname", "display_name", "ip", "is_virtual", "approved", "links"]}),
        ("Reporting rights", {"fields": ["reports_for"], "classes": ["collapse"]}),
        ("Reported by the agent", {"fields": ["agent_version", "platform", "last_seen", "created_at"]}),
        (
            "Placement",
            {
                "description": (
                    "Editing the rack or position here locks the placement: agents' reports no longer move the host."
                ),
                "fields": ["rack", ("position_x", "position_y", "position_z"), "placement_locked"],
            },
        ),
        ("Fabric", {"fields": ["role", "failed"]}),
    ]

    @admin.action(description="Approve the selected hosts")
    def approve(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        count = hosts_approve(hosts=queryset)
        messages.success(request, f"Approved {count} host(s).")

    @property
    def media(self) -> forms.Media:
        return super().media + rack_filter_media(self.admin_site)

    def get_inlines(self, request: HttpRequest, obj: Host | None) -> list[type[admin.options.InlineModelAdmin]]:
        if obj is not None and obj.links_out.count() > LINK_INLINE_MAX:
            return []
        return super().get_inlines(request, obj)

    @admin.display(description="links")
    def links(self, host: Host) -> str:
        """How many links start and end here, each count opening the Link list filtered to them."""
        if host.pk is None:
            return "-"
        changelist = reverse("admin:hosts_link_changelist")
        return format_html(
            '<a href="{}?source__id__exact={}">{} from this host</a>, <a href="{}?target__id__exact={}">{} to it</a>',
            changelist,
            host.pk,
            host.links_out.count(),
            changelist,
            host.pk,
            host.links_in.count(),
        )

    @admin.display(ordering="latest__last_seen")
    def last_seen(self, host: Host) -> Any:
        latest = getattr(host, "latest", None)
        return latest.last_seen if latest else None

    def save_model(self, request: HttpRequest, obj: Host, form: Any, change: bool) -> None:
        host_admin_save(host=obj, changed_fields=form.changed_data, old_hostname=form.initial.get("hostname"))


@admin.register(Link)
class LinkAdmin(TwinChangeAdmin):
    list_display = ["__str__", "source", "target", "capacity_gbps", "created_at"]
    list_editable = ["capacity_gbps"]
    list_filter = ["source__is_virtual"]
    search_fields = ["source__hostname", "target__hostname"]
    list_select_related = ["source", "target"]
    autocomplete_fields = ["source", "target", "source_interface", "target_interface"]


@admin.register(Interface)
class InterfaceAdmin(TwinChangeAdmin):
    """A host's or switch's named interfaces: what a link's ends may name."""

    list_display = ["__str__", "host", "name", "mac", "speed_mbps", "created_at"]
    search_fields = ["host__hostname", "name", "mac"]
    list_select_related = ["host"]
    autocomplete_fields = ["host"]


@admin.register(EnrollmentKey)
class EnrollmentKeyAdmin(admin.ModelAdmin):
    """Keys agents register with. The secret is shown once, right after it is created."""

    list_display = ["name", "prefix", "created_at", "expires_at", "uses", "max_uses", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "uses", "created_at", "revoked_at"]
    fields = ["name", "expires_at", "max_uses", "prefix", "uses", "created_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: EnrollmentKey, form: Any, change: bool) -> None:
        secret = None if change else enrollment_key_assign(key=obj)
        super().save_model(request, obj, form, change)
        if secret:
            messages.warning(request, f"Enrollment key, shown this once: {secret}")

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[EnrollmentKey]) -> None:
        count = enrollment_keys_revoke(keys=queryset, now=timezone.now())
        messages.success(request, f"Revoked {count} enrollment key(s).")


@admin.register(AgentCredential)
class AgentCredentialAdmin(admin.ModelAdmin):
    """Hosts' credentials: issued by registration only; an admin can revoke them."""

    list_display = ["key_id", "host", "created_at", "revoked_at", "enrollment_key"]
    list_filter = ["revoked_at"]
    search_fields = ["key_id", "host__hostname"]
    list_select_related = ["host", "enrollment_key"]
    readonly_fields = ["key_id", "host", "enrollment_key", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected credentials")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AgentCredential]) -> None:
        count = credentials_revoke(credentials=queryset, now=timezone.now())
        messages.success(request, f"Revoked {count} credential(s).")

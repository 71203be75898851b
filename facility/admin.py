"""Admin for the physical twin: sites, rooms, rows, rack locations, feeds and hosts' units.

A host's units are placed through ``facility.services``: the form checks the
placement with ``mount_check`` (an overlap is shown on the form with the
occupant named) and the save stores it with ``mount_place``, the same path
the file import's rules follow.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from facility.models import Mount, PowerFeed, RackLocation, Room, Row, Site
from facility.services import PlacementRefused, facility_delete, facility_save, mount_check, mount_place


class FacilityChangeAdmin(admin.ModelAdmin):
    """Edits go through the facility services, which tell dashboards after commit."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        facility_save(obj=obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        facility_delete(objs=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        facility_delete(objs=queryset)


@admin.register(Site)
class SiteAdmin(FacilityChangeAdmin):
    list_display = ["name", "description"]
    search_fields = ["name"]


@admin.register(Room)
class RoomAdmin(FacilityChangeAdmin):
    list_display = ["name", "site"]
    list_filter = ["site"]
    search_fields = ["name", "site__name"]


@admin.register(Row)
class RowAdmin(FacilityChangeAdmin):
    list_display = ["name", "room", "order"]
    list_filter = ["room__site", "room"]
    search_fields = ["name", "room__name"]


@admin.register(RackLocation)
class RackLocationAdmin(FacilityChangeAdmin):
    list_display = ["rack", "row", "order", "height_u"]
    list_filter = ["row__room__site", "row__room"]
    search_fields = ["rack__name", "row__name"]
    autocomplete_fields = ["rack", "row"]


@admin.register(PowerFeed)
class PowerFeedAdmin(FacilityChangeAdmin):
    list_display = ["rack", "side", "pdu", "capacity_watts", "amps", "volts"]
    list_filter = ["side"]
    search_fields = ["rack__name", "pdu"]
    autocomplete_fields = ["rack"]


class MountForm(forms.ModelForm):
    """A host's units, with the rack it sits in; an overlap is refused on the form, naming the occupant."""

    rack = forms.ModelChoiceField(queryset=None, help_text="The rack the host is placed in (locks its placement).")

    class Meta:
        model = Mount
        fields = ["host", "rack", "unit", "height_u", "face", "nameplate_watts"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from hosts.models import Rack

        super().__init__(*args, **kwargs)
        self.fields["rack"].queryset = Rack.objects.all()
        if self.instance.pk and self.instance.host.rack_id:
            self.initial["rack"] = self.instance.host.rack_id

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        host, rack = data.get("host"), data.get("rack")
        if host is not None and rack is not None:
            try:
                mount_check(host=host, rack=rack, unit=data.get("unit"), height_u=data.get("height_u") or 1)
            except PlacementRefused as refusal:
                raise forms.ValidationError(refusal.detail) from None
        return data


@admin.register(Mount)
class MountAdmin(admin.ModelAdmin):
    form = MountForm
    list_display = ["host", "rack_name", "unit", "height_u", "face", "nameplate_watts"]
    list_filter = ["face", "host__rack"]
    search_fields = ["host__hostname", "host__rack__name"]
    autocomplete_fields = ["host"]
    list_select_related = ["host__rack"]

    @admin.display(ordering="host__rack__name", description="rack")
    def rack_name(self, mount: Mount) -> str:
        return mount.host.rack.name if mount.host.rack else "-"

    def save_model(self, request: HttpRequest, obj: Mount, form: Any, change: bool) -> None:
        # The form checked; mount_place checks again under the rack's lock and stores.
        mount_place(
            host=obj.host,
            rack=form.cleaned_data["rack"],
            unit=obj.unit,
            height_u=obj.height_u,
            face=obj.face,
            nameplate_watts=obj.nameplate_watts,
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        facility_delete(objs=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        facility_delete(objs=queryset)

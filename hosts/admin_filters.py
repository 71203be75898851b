"""The host list's rack filter: searched as you type, since a fleet can have hundreds of racks.

Django's own ``RelatedFieldListFilter`` lists every rack as a link (500 at
10,000 hosts). This one is the admin's autocomplete widget (select2 over
``/admin/autocomplete/``, which searches ``RackAdmin.search_fields``): choosing a
rack opens the list filtered to it, as the links did, with the same parameter.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Field, Model, QuerySet
from django.http import HttpRequest

from hosts.models import Host, Rack


class RackChoiceForm(forms.Form):
    def __init__(self, *args: Any, admin_site: admin.AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rack"] = forms.ModelChoiceField(
            queryset=Rack.objects.all(),
            required=False,
            label="rack",
            widget=AutocompleteSelect(
                Host._meta.get_field("rack"),
                admin_site,
                attrs={"data-placeholder": "Type a rack's name…", "data-allow-clear": "true", "style": "width: 100%"},
            ),
        )


class RackAutocompleteFilter(admin.FieldListFilter):
    """``list_filter = [("rack", RackAutocompleteFilter)]``: the rack filter as a search box."""

    template = "admin/hosts/rack_filter.html"

    def __init__(
        self, field: Field, request: HttpRequest, params: dict, model: type[Model], model_admin: Any, field_path: str
    ) -> None:
        self.parameter = f"{field_path}__id__exact"
        self.isnull_parameter = f"{field_path}__isnull"
        super().__init__(field, request, params, model, model_admin, field_path)
        value = self.used_parameters.get(self.parameter)
        if isinstance(value, list):  # Django 5 keeps every value of a parameter
            value = value[-1] if value else None
        self.value = value
        self.form = RackChoiceForm(initial={"rack": value}, admin_site=model_admin.admin_site, auto_id="rack-filter-%s")
        self.title = "rack"

    def expected_parameters(self) -> list[str]:
        return [self.parameter, self.isnull_parameter]

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value
        if value not in (None, ""):
            try:
                return queryset.filter(**{self.parameter: int(value)})
            except (TypeError, ValueError):
                raise admin.options.IncorrectLookupParameters(f"rack: {value!r} is not a rack's id") from None
        isnull = self.used_parameters.get(self.isnull_parameter)
        if isinstance(isnull, list):
            isnull = isnull[-1] if isnull else None
        if isnull in ("True", "1"):
            return queryset.filter(rack__isnull=True)
        return queryset

    def choices(self, changelist: Any) -> list[dict]:
        # The template draws the search box; these two links remain for "all" and "no rack".
        return [
            {
                "selected": self.value in (None, "") and not self.used_parameters.get(self.isnull_parameter),
                "query_string": changelist.get_query_string(remove=[self.parameter, self.isnull_parameter]),
                "display": "All",
            },
            {
                "selected": bool(self.used_parameters.get(self.isnull_parameter)),
                "query_string": changelist.get_query_string({self.isnull_parameter: "True"}, [self.parameter]),
                "display": "No rack",
            },
        ]


def rack_filter_media(admin_site: admin.AdminSite) -> forms.Media:
    """What the filter's search box needs in the page's head (merged with the list's own scripts, jQuery once)."""
    return RackChoiceForm(admin_site=admin_site).media + forms.Media(
        js=["admin/js/jquery.init.js", "admin/js/autocomplete.js", "hosts/rack_filter.js"]
    )

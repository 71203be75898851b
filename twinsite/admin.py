"""The admin's host page, put together from what each layer adds to the inventory's.

``hosts.admin.HostAdmin`` knows only the inventory. The command lifecycle
(``commands.admin.HostCommandsAdmin``: "send a command", the shell switch) and
the twin (``twin.admin.HostWithHistoryAdmin``: history, status changes) extend
it without registering themselves, since two apps replacing one registration
would each undo the other; the project, which sees every layer, composes them.
"""

from __future__ import annotations

from django.contrib import admin

from commands.admin import HostCommandsAdmin
from hosts.models import Host
from twin.admin import HostWithHistoryAdmin, StatusFilter


class HostAdmin(HostWithHistoryAdmin, HostCommandsAdmin):
    """The host admin: inventory, history and commands.

    The list's columns are chosen here, where every layer's are known: what an
    operator scans first (status, CPU) beside the inventory, narrow enough for
    1,600 px; the display name, "virtual" and "placement locked" stay as the
    host page's fields and the list's filters.
    """

    list_display = [
        "hostname",
        "status",
        "cpu",
        "rack",
        "ip",
        "platform",
        "agent_version",
        "approved",
        "last_seen",
        "shell_enabled",
    ]
    list_filter = [StatusFilter, *HostWithHistoryAdmin.list_filter]


# Each part adds different attributes (history: fields; commands: actions, a
# column, its queryset), so the composition loses none of them.
assert not {"actions", "list_display", "get_queryset"} & set(vars(HostWithHistoryAdmin))
assert not {"readonly_fields", "fieldsets"} & set(vars(HostCommandsAdmin))

admin.site.unregister(Host)
admin.site.register(Host, HostAdmin)

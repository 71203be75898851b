"""Commands in the admin: send one to hosts from the host list, follow each command and invocation, cancel.

The host list's actions come from here, not from ``hosts``: ``HostCommandsAdmin``
extends the inventory's host admin, so the inventory app never imports the layer
above it; the project composes it with the other layers' parts (``twinsite.admin``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from commands.actions import CATALOGUE
from commands.models import Command, CommandState, Invocation, InvocationTransition, ShellAccess
from commands.schema import (
    DEFAULT_DELIVERY_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_ERRORS,
    DEFAULT_TIMEOUT_SECONDS,
    DELIVERY_TIMEOUT_SECONDS_MAX,
    MAX_CONCURRENCY_MAX,
    TIMEOUT_SECONDS_MAX,
    CommandCreateRequest,
    Targets,
)
from commands.selectors import ADD_PERMISSION, commands_readable_by, commands_with_state, state_filter
from commands.services import (
    CommandNotFound,
    CommandRefused,
    InvalidTransition,
    command_cancel,
    command_create,
    shell_disable,
    shell_enable,
)
from common.forms import ClientJSONField
from hosts.admin import HostAdmin
from hosts.models import Host

SHELL_GRANT_PERMISSION = "commands.add_shellaccess"


class SendCommandForm(forms.Form):
    """What an operator fills in to send a command to the hosts selected in the host list."""

    # Not named "action": the admin reads that field to know which admin action runs.
    command_action = forms.ChoiceField(
        label="Action", choices=[(name, f"{name}: {spec.description}") for name, spec in CATALOGUE.items()]
    )
    args = ClientJSONField(
        initial=dict,
        required=False,
        help_text='The action\'s arguments as JSON, e.g. {"seconds": 30} for set-interval.',
    )
    timeout_seconds = forms.IntegerField(min_value=1, max_value=TIMEOUT_SECONDS_MAX, initial=DEFAULT_TIMEOUT_SECONDS)
    delivery_timeout_seconds = forms.IntegerField(
        min_value=1, max_value=DELIVERY_TIMEOUT_SECONDS_MAX, initial=DEFAULT_DELIVERY_TIMEOUT_SECONDS
    )
    max_concurrency = forms.IntegerField(min_value=1, max_value=MAX_CONCURRENCY_MAX, initial=DEFAULT_MAX_CONCURRENCY)
    max_errors = forms.IntegerField(min_value=0, initial=DEFAULT_MAX_ERRORS)
    comment = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class HostCommandsAdmin(HostAdmin):
    """The host list, with "send a command" and the audited shell switch."""

    actions = [*HostAdmin.actions, "send_command", "shell_enable", "shell_disable"]
    list_display = [*HostAdmin.list_display, "shell_enabled"]

    def has_send_command_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ADD_PERMISSION)

    def has_shell_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SHELL_GRANT_PERMISSION)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Host]:
        enabled = ShellAccess.objects.active().filter(host=OuterRef("pk"))
        return super().get_queryset(request).annotate(shell=Exists(enabled))

    @admin.display(boolean=True, description="shell", ordering="shell")
    def shell_enabled(self, host: Host) -> bool:
        return host.shell  # type: ignore[attr-defined]

    @admin.action(description="Send a command to the selected hosts", permissions=["send_command"])
    def send_command(self, request: HttpRequest, queryset: QuerySet[Host]) -> HttpResponse | None:
        form = SendCommandForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            data = form.cleaned_data
            command_request = CommandCreateRequest(
                action=data["command_action"],
                targets=Targets(hosts=sorted(queryset.values_list("hostname", flat=True))),
                args=data["args"] if data["args"] is not None else {},
                timeout_seconds=data["timeout_seconds"],
                delivery_timeout_seconds=data["delivery_timeout_seconds"],
                max_concurrency=data["max_concurrency"],
                max_errors=data["max_errors"],
                comment=data["comment"],
            )
            try:
                created = command_create(user=request.user, request=command_request, now=timezone.now())
            except CommandRefused as exc:
                form.add_error(None, f"{exc.code}: {exc.detail}")
            else:
                command = created.command
                messages.success(
                    request, f"Command {command.pk} ({command.action}) sent to {queryset.count()} host(s)."
                )
                return HttpResponseRedirect(reverse("admin:commands_command_change", args=[command.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Send a command",
            "opts": self.model._meta,
            "form": form,
            "hosts": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/commands/send_command.html", context)

    @admin.action(description="Enable shell commands on the selected hosts", permissions=["shell"])
    def shell_enable(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        count = shell_enable(hosts=queryset, actor=request.user.get_username(), now=timezone.now())
        messages.warning(request, f"Shell commands enabled on {count} host(s); recorded under Commands > Shell access.")

    @admin.action(description="Disable shell commands on the selected hosts", permissions=["shell"])
    def shell_disable(self, request: HttpRequest, queryset: QuerySet[Host]) -> None:
        count = shell_disable(hosts=queryset, actor=request.user.get_username(), now=timezone.now())
        messages.success(request, f"Shell commands disabled on {count} host(s).")


class CommandStateFilter(admin.SimpleListFilter):
    """The command's derived state, filtered in SQL."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(CommandState.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Command]) -> QuerySet[Command]:
        if self.value() not in CommandState.values:
            return queryset
        return queryset.filter(state_filter(self.value()))


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the lifecycle only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InvocationInline(admin.TabularInline):
    model = Invocation
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["hostname", "state", "cause", "dispatched_at", "started_at", "finished_at", "exit_code", "output_head"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="output")
    def output_head(self, invocation: Invocation) -> str:
        head = invocation.output[:200]
        return head + ("…" if len(invocation.output) > 200 else "")


@admin.register(Command)
class CommandAdmin(ReadOnlyAdmin):
    """Every command, its state derived from its invocations; open one for its invocations, cancel from the list."""

    list_display = ["id", "action", "state", "issued_by_name", "issued_at", "progress", "comment"]
    list_filter = [CommandStateFilter, "action", "issued_at"]
    search_fields = ["comment", "issued_by_name", "invocations__hostname"]
    date_hierarchy = "issued_at"
    actions = ["cancel"]
    inlines = [InvocationInline]
    fields = [
        "action",
        "args",
        "targets",
        "comment",
        "issued_by_name",
        "issued_at",
        "timeout_seconds",
        "delivery_timeout_seconds",
        "max_concurrency",
        "max_errors",
        "cancelled_at",
        "cancelled_by_name",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Command]:
        return commands_with_state(super().get_queryset(request))

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ADD_PERMISSION)

    @admin.display(description="state")
    def state(self, command: Command) -> str:
        return _annotated_state(command)

    @admin.display(description="done / all")
    def progress(self, command: Command) -> str:
        return f"{command.n_all - command.n_active} / {command.n_all}"  # type: ignore[attr-defined]

    @admin.action(description="Cancel the selected commands", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Command]) -> None:
        cancelled = 0
        for command_id in queryset.values_list("pk", flat=True):
            try:
                command_cancel(command_id=command_id, actor=request.user.get_username(), now=timezone.now())
                cancelled += 1
            except (InvalidTransition, CommandNotFound):
                pass
        messages.success(request, f"Cancelled {cancelled} command(s); the others had nothing left to cancel.")


def _annotated_state(command: Command) -> str:
    """``commands.selectors.command_state`` from the annotations of ``commands_with_state``."""
    n_all, n_active = command.n_all, command.n_active  # type: ignore[attr-defined]
    if command.cancelled_at is not None:
        return CommandState.CANCELLED
    if n_active:
        return CommandState.PENDING if command.n_queued == n_all else CommandState.IN_PROGRESS  # type: ignore[attr-defined]
    return CommandState.COMPLETED if command.n_succeeded == n_all else CommandState.FAILED  # type: ignore[attr-defined]


class TransitionInline(admin.TabularInline):
    model = InvocationTransition
    extra = 0
    can_delete = False
    fields = ["from_state", "to_state", "at", "cause", "actor"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invocation)
class InvocationAdmin(ReadOnlyAdmin):
    """One host's invocation: its whole output and every transition."""

    list_display = ["__str__", "state", "cause", "dispatched_at", "finished_at", "exit_code", "output_truncated"]
    list_filter = ["state", "command__action"]
    search_fields = ["hostname", "command__id"]
    list_select_related = ["command"]
    inlines = [TransitionInline]
    fields = [
        "command",
        "hostname",
        "state",
        "cause",
        "queued_at",
        "released_at",
        "deliver_by",
        "dispatched_at",
        "timeout_at",
        "started_at",
        "finished_at",
        "agent_started_at",
        "agent_finished_at",
        "exit_code",
        "output_block",
        "output_truncated",
        "data",
    ]
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return commands_readable_by(request.user) or super().has_view_permission(request, obj)

    @admin.display(description="output")
    def output_block(self, invocation: Invocation) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', invocation.output)


@admin.register(ShellAccess)
class ShellAccessAdmin(ReadOnlyAdmin):
    """Who enabled shell commands on which host, and who withdrew them: set from the host list's actions."""

    list_display = ["host", "granted_by", "granted_at", "revoked_by", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["host__hostname", "granted_by", "revoked_by"]
    list_select_related = ["host"]

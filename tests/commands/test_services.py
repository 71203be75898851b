"""commands.services: the transition table, rate control, deadlines, cancel, retention, events after commit."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from itertools import product

import pytest
from channels.layers import get_channel_layer
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from commands.models import (
    TERMINAL_STATES,
    TRANSITIONS,
    Cause,
    Command,
    IdempotencyKey,
    Invocation,
    InvocationState,
    InvocationTransition,
)
from commands.schema import CommandCreateRequest, ResultReport, Targets
from commands.selectors import command_document
from commands.services import (
    EventOutbox,
    InvalidTransition,
    command_cancel,
    command_create,
    commands_prune,
    invocation_report,
    invocation_transition,
    invocations_dispatch,
    output_truncate,
    request_fingerprint,
)
from common.events import EVENTS_GROUP, EventType
from hosts.models import Host, Rack
from hosts.services import hosts_lock_or_create
from jobs.services import jobs_ensure, jobs_run_due

S = InvocationState
pytestmark = pytest.mark.django_db


def hosts_in_rack(*names: str, rack: str = "R1") -> dict[str, Host]:
    with transaction.atomic():
        hosts_lock_or_create(hostnames=names)
    placed, _ = Rack.objects.get_or_create(name=rack)
    Host.objects.filter(hostname__in=names).update(rack=placed)
    return {h.hostname: h for h in Host.objects.filter(hostname__in=names)}


def send(user, now, *, action: str = "ping", hosts: list[str] | None = None, rack: str | None = None, **limits):
    targets = Targets(rack=rack) if rack else Targets(hosts=hosts or ["titan-01"])
    request = CommandCreateRequest(action=action, targets=targets, **limits)
    return command_create(user=user, request=request, now=now).command


def states(command: Command) -> dict[str, str]:
    return dict(Invocation.objects.filter(command=command).values_list("hostname", "state"))


def report(host: Host, command: Command, now, status: str = "succeeded", **fields):
    return invocation_report(
        host_id=host.pk, command_id=command.pk, report=ResultReport(status=status, **fields), now=now
    )


@pytest.fixture
def titan(operator) -> Host:
    return hosts_in_rack("titan-01")["titan-01"]


def test_a_command_fans_out_into_one_queued_invocation_per_host_each_recorded(operator):
    hosts_in_rack("titan-01", "titan-02")
    now = timezone.now()
    command = send(operator.user, now, hosts=["titan-02", "titan-01", "titan-01"])
    assert states(command) == {"titan-01": S.QUEUED, "titan-02": S.QUEUED}
    moves = list(
        InvocationTransition.objects.filter(invocation__command=command).values_list("to_state", "cause", "at")
    )
    assert moves == [(S.QUEUED, Cause.CREATED, now)] * 2
    assert command.issued_by_name == "alice" and command.issued_at == now
    assert command_document(command_id=command.pk)["state"] == "pending"


def test_the_happy_path_records_every_transition_with_its_time_and_cause(operator, titan):
    start = timezone.now()
    command = send(operator.user, start)
    [handed] = invocations_dispatch(host_id=titan.pk, now=start + timedelta(seconds=1), cause=Cause.POLL)
    assert handed["commandId"] == command.pk and handed["action"] == "ping"
    report(titan, command, start + timedelta(seconds=2), status="running")
    report(titan, command, start + timedelta(seconds=3), exit_code=0, output="pong", data={"agentVersion": "1.0"})
    document = command_document(command_id=command.pk)
    [invocation] = document["invocations"]
    assert [(t["state"], t["cause"]) for t in invocation["transitions"]] == [
        ("queued", "created"),
        ("dispatched", "poll"),
        ("running", "agent"),
        ("succeeded", "agent"),
    ]
    times = InvocationTransition.objects.filter(invocation__command=command).order_by("id").values_list("at", flat=True)
    assert list(times) == [start + timedelta(seconds=s) for s in range(4)]
    assert invocation["output"] == "pong" and invocation["exitCode"] == 0
    assert document["state"] == "completed" and document["counts"]["succeeded"] == 1


ILLEGAL = [(a, b) for a, b in product(S.values, S.values) if b not in TRANSITIONS[a]]


@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_move_outside_the_table_is_refused_with_the_current_state_and_changes_nothing(
    operator, titan, current, target
):
    command = send(operator.user, timezone.now())
    Invocation.objects.filter(command=command).update(state=current)
    invocation = Invocation.objects.select_related("command").get(command=command)
    recorded = InvocationTransition.objects.count()
    with pytest.raises(InvalidTransition) as refused:
        invocation_transition(
            invocation=invocation, to=target, cause=Cause.AGENT, now=timezone.now(), outbox=EventOutbox()
        )
    assert refused.value.state == current
    assert Invocation.objects.get(pk=invocation.pk).state == current
    assert InvocationTransition.objects.count() == recorded


def test_the_table_ends_only_in_terminal_states_and_every_state_is_reachable():
    reachable = {S.QUEUED} | {b for moves in TRANSITIONS.values() for b in moves}
    assert reachable == set(S.values)
    assert {S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED, S.UNDELIVERABLE} == TERMINAL_STATES


def test_a_rack_fleet_command_keeps_at_most_max_concurrency_in_flight_and_stops_past_max_errors(operator):
    fleet = hosts_in_rack(*(f"r1-{i:02}" for i in range(1, 7)))
    hosts_in_rack("elsewhere-01", rack="R2")
    now = timezone.now()
    command = send(operator.user, now, rack="R1", max_concurrency=2, max_errors=1)
    assert set(states(command)) == set(fleet)  # the rack's hosts only
    released = set(
        Invocation.objects.filter(command=command, released_at__isnull=False).values_list("hostname", flat=True)
    )
    assert released == {"r1-01", "r1-02"}
    # A host not released yet is handed nothing, even when it asks.
    assert invocations_dispatch(host_id=fleet["r1-03"].pk, now=now, cause=Cause.POLL) == []
    for name in ("r1-01", "r1-02"):
        assert invocations_dispatch(host_id=fleet[name].pk, now=now, cause=Cause.POLL)
    # One succeeds: its slot goes to the next host in order.
    report(fleet["r1-01"], command, now)
    assert invocations_dispatch(host_id=fleet["r1-03"].pk, now=now, cause=Cause.POLL)
    in_flight = Invocation.objects.filter(command=command, state__in=[S.DISPATCHED, S.RUNNING]).count()
    assert in_flight == 2
    # A first failure is tolerated (max_errors=1): its slot is released too.
    report(fleet["r1-02"], command, now, status="failed", exit_code=1)
    assert Invocation.objects.get(command=command, hostname="r1-04").released_at == now
    # A second one passes the threshold: every invocation still held back is cancelled; r1-04,
    # released before, is on its way to its agent and runs its course.
    report(fleet["r1-03"], command, now, status="failed", exit_code=1)
    assert states(command) == {
        "r1-01": S.SUCCEEDED,
        "r1-02": S.FAILED,
        "r1-03": S.FAILED,
        "r1-04": S.QUEUED,
        "r1-05": S.CANCELLED,
        "r1-06": S.CANCELLED,
    }
    assert set(Invocation.objects.filter(command=command, state=S.CANCELLED).values_list("cause", flat=True)) == {
        Cause.MAX_ERRORS
    }
    assert invocations_dispatch(host_id=fleet["r1-04"].pk, now=now, cause=Cause.POLL)
    report(fleet["r1-04"], command, now)
    assert states(command)["r1-04"] == S.SUCCEEDED
    assert command_document(command_id=command.pk)["state"] == "failed"


def test_deadlines_pass_in_the_job_with_nobody_asking_and_only_once(operator):
    fleet = hosts_in_rack("slow-01", "offline-01")
    start = timezone.now()
    command = send(
        operator.user, start, hosts=["slow-01", "offline-01"], timeout_seconds=30, delivery_timeout_seconds=60
    )
    invocations_dispatch(host_id=fleet["slow-01"].pk, now=start, cause=Cause.BATCH)
    report(fleet["slow-01"], command, start + timedelta(seconds=1), status="running")
    jobs_ensure(now=start)
    jobs_run_due(now=start + timedelta(seconds=29))
    assert states(command) == {"slow-01": S.RUNNING, "offline-01": S.QUEUED}
    jobs_run_due(now=start + timedelta(seconds=31))
    assert states(command) == {"slow-01": S.TIMED_OUT, "offline-01": S.QUEUED}
    jobs_run_due(now=start + timedelta(seconds=61))
    assert states(command) == {"slow-01": S.TIMED_OUT, "offline-01": S.UNDELIVERABLE}
    jobs_run_due(now=start + timedelta(seconds=120))
    ends = list(
        InvocationTransition.objects.filter(invocation__command=command, to_state__in=TERMINAL_STATES)
        .order_by("at")
        .values_list("to_state", "cause", "at")
    )
    assert ends == [
        (S.TIMED_OUT, Cause.TIMEOUT, start + timedelta(seconds=31)),
        (S.UNDELIVERABLE, Cause.DELIVERY_TIMEOUT, start + timedelta(seconds=61)),
    ]
    # The agent that finally answers is told the invocation has ended.
    with pytest.raises(InvalidTransition) as late:
        report(fleet["slow-01"], command, start + timedelta(seconds=121))
    assert late.value.state == S.TIMED_OUT


def test_the_delivery_deadline_of_an_invocation_waiting_for_a_slot_starts_when_it_is_released(operator):
    fleet = hosts_in_rack("a-01", "a-02")
    start = timezone.now()
    command = send(operator.user, start, hosts=["a-01", "a-02"], max_concurrency=1, delivery_timeout_seconds=60)
    invocations_dispatch(host_id=fleet["a-01"].pk, now=start, cause=Cause.POLL)
    report(fleet["a-01"], command, start + timedelta(seconds=100))
    jobs_ensure(now=start)
    jobs_run_due(now=start + timedelta(seconds=150))
    assert states(command)["a-02"] == S.QUEUED  # released at +100 s: due at +160 s
    jobs_run_due(now=start + timedelta(seconds=161))
    assert states(command)["a-02"] == S.UNDELIVERABLE


def test_a_dispatched_invocation_is_handed_out_again_until_acknowledged(operator, titan):
    now = timezone.now()
    command = send(operator.user, now)
    first = invocations_dispatch(host_id=titan.pk, now=now, cause=Cause.BATCH)
    again = invocations_dispatch(host_id=titan.pk, now=now + timedelta(seconds=10), cause=Cause.POLL)
    assert first == again and len(first) == 1
    moves = InvocationTransition.objects.filter(invocation__command=command, to_state=S.DISPATCHED)
    assert list(moves.values_list("cause", flat=True)) == [Cause.BATCH]  # one move, the first hand-out
    report(titan, command, now + timedelta(seconds=11), status="running")
    assert invocations_dispatch(host_id=titan.pk, now=now + timedelta(seconds=12), cause=Cause.POLL) == []


def test_cancelling_a_dispatched_command_refuses_the_agents_later_acknowledgement(operator, titan):
    now = timezone.now()
    command = send(operator.user, now)
    invocations_dispatch(host_id=titan.pk, now=now, cause=Cause.POLL)
    command_cancel(command_id=command.pk, actor="alice", now=now + timedelta(seconds=1))
    invocation = Invocation.objects.get(command=command)
    assert (invocation.state, invocation.cause) == (S.CANCELLED, Cause.OPERATOR)
    assert InvocationTransition.objects.get(invocation=invocation, to_state=S.CANCELLED).actor == "alice"
    with pytest.raises(InvalidTransition) as refused:
        report(titan, command, now + timedelta(seconds=2), status="running")
    assert refused.value.state == S.CANCELLED
    with pytest.raises(InvalidTransition) as again:
        command_cancel(command_id=command.pk, actor="alice", now=now + timedelta(seconds=3))
    assert again.value.state == "cancelled"
    assert command_document(command_id=command.pk)["cancelledBy"] == "alice"


def test_the_same_outcome_again_is_accepted_and_a_different_one_refused(operator, titan):
    now = timezone.now()
    command = send(operator.user, now)
    invocations_dispatch(host_id=titan.pk, now=now, cause=Cause.POLL)
    report(titan, command, now, status="failed", exit_code=2, output="no", data={"why": "x"})
    report(titan, command, now, status="failed", exit_code=2, output="no", data={"why": "x"})
    assert InvocationTransition.objects.filter(invocation__command=command).count() == 3
    with pytest.raises(InvalidTransition) as refused:
        report(titan, command, now, status="succeeded", exit_code=0)
    assert refused.value.state == S.FAILED


@pytest.mark.parametrize(
    ("output", "limit", "expected", "truncated"),
    [
        ("hello", 5, "hello", False),
        ("hello world", 5, "hello\n…[truncated 6 bytes]", True),
        # "é" is two bytes: never cut in half.
        ("ééé", 3, "é\n…[truncated 4 bytes]", True),
        ("a\x00b", 10, "a\ufffdb", False),
    ],
)
def test_output_is_cut_at_the_limit_on_a_character_boundary_with_a_marker(output, limit, expected, truncated):
    assert output_truncate(output, limit=limit) == (expected, truncated)


def test_retention_removes_finished_commands_past_the_limit_and_keeps_the_rest(operator, settings):
    settings.TWIN_COMMAND_RETENTION_DAYS = 30
    fleet = hosts_in_rack("old-01", "busy-01")
    now = timezone.now()
    long_ago = now - timedelta(days=40)
    finished = send(operator.user, long_ago, hosts=["old-01"])
    invocations_dispatch(host_id=fleet["old-01"].pk, now=long_ago, cause=Cause.POLL)
    report(fleet["old-01"], finished, long_ago)
    still_active = send(operator.user, long_ago, hosts=["busy-01"])
    recent = send(operator.user, now - timedelta(days=1), hosts=["old-01"])
    IdempotencyKey.objects.create(
        user=operator.user, key="old", fingerprint="x", command=recent, created_at=now - timedelta(hours=25)
    )
    assert commands_prune(now=now) == 1
    assert set(Command.objects.values_list("pk", flat=True)) == {still_active.pk, recent.pk}
    assert not InvocationTransition.objects.filter(invocation__command_id=finished.pk).exists()
    assert not IdempotencyKey.objects.exists()


def test_a_key_retried_within_a_day_returns_the_first_command_and_another_body_is_refused(operator, titan):
    now = timezone.now()
    request = CommandCreateRequest(action="ping", targets=Targets(hosts=["titan-01"]))
    first = command_create(user=operator.user, request=request, now=now, idempotency_key="k1", fingerprint="f")
    again = command_create(user=operator.user, request=request, now=now, idempotency_key="k1", fingerprint="f")
    assert first.created and not again.created and again.command.pk == first.command.pk
    assert Command.objects.count() == 1
    later = command_create(
        user=operator.user, request=request, now=now + timedelta(hours=25), idempotency_key="k1", fingerprint="f"
    )
    assert later.created and Command.objects.count() == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_creates_with_one_key_make_one_command(operator, titan):
    body = b'{"action": "ping"}'
    request = CommandCreateRequest(action="ping", targets=Targets(hosts=["titan-01"]))
    barrier = threading.Barrier(4)
    outcomes = []

    def create() -> None:
        try:
            barrier.wait()
            outcomes.append(
                command_create(
                    user=operator.user,
                    request=request,
                    now=timezone.now(),
                    idempotency_key="same",
                    fingerprint=request_fingerprint(body),
                )
            )
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(outcomes) == 4
    assert Command.objects.count() == 1
    assert sum(o.created for o in outcomes) == 1
    assert {o.command.pk for o in outcomes} == {Command.objects.get().pk}


def test_changes_are_published_to_staff_after_commit_and_wake_the_host(
    operator, titan, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        command = send(operator.user, timezone.now())
    with django_capture_on_commit_callbacks() as rolled_back, pytest.raises(InvalidTransition), transaction.atomic():
        # Work that rolls back publishes nothing.
        command_cancel(command_id=command.pk, actor="alice", now=timezone.now())
        command_cancel(command_id=command.pk, actor="alice", now=timezone.now())
    assert rolled_back == []

    async def publish_and_listen() -> list[dict]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(EVENTS_GROUP, channel)
        loop = asyncio.get_running_loop()
        for callback in callbacks:
            await loop.run_in_executor(None, callback)
        events = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            except TimeoutError:
                return events
            events.extend(message["events"])

    events = asyncio.run(publish_and_listen())
    update = next(e for e in events if e["type"] == EventType.COMMAND_UPDATED)
    assert update["audience"] == "staff"
    assert update["payload"] | {"at": "", "queuedAt": ""} == {
        "id": command.pk,
        "host": "titan-01",
        "action": "ping",
        "state": "queued",
        "commandState": "pending",
        "cause": "created",
        "at": "",
        "queuedAt": "",
        "dispatchedAt": None,
        "startedAt": None,
        "finishedAt": None,
    }
    wake = next(e for e in events if e["type"] == EventType.INVOCATION_AVAILABLE)
    assert wake["audience"] == "agent" and wake["host"] == "titan-01"
    assert len(events) == 2

"""Writes of the collectors app: collector tokens, and samples from Prometheus remote-write."""

from __future__ import annotations

import math
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from collectors.models import CollectorToken, RemoteHostState
from collectors.node_exporter import KEPT_NAMES, instance_host, scrape_counts, scrape_sample, series_key
from collectors.prompb.prometheus_remote_pb2 import WriteRequest
from collectors.remote_write import write_request_points
from collectors.selectors import TOKEN_PREFIX, CollectorIdentity, collector_token_hash
from hosts.models import Host
from hosts.schema import hostname_normalize
from hosts.services import hosts_lock_or_create
from metrics.services import BatchOrigin, samples_ingest

# A series not heard of for this long is dropped from a host's assembled values (a CPU taken offline).
VALUES_KEPT_MS = 10 * 60 * 1000
# ``last_used_at`` is written at most this often: not one write per request.
LAST_USED_EVERY = timedelta(minutes=1)


def collector_token_create(*, name: str) -> tuple[CollectorToken, str]:
    """Create a collector token; return it with the token itself, shown this once (only its hash is kept)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = CollectorToken.objects.create(name=name, token_hash=collector_token_hash(token), prefix=token[:12])
    return record, token


def collector_tokens_revoke(*, tokens: QuerySet[CollectorToken], now: datetime) -> int:
    """Revoke collector tokens: their next write is refused."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=now)


@dataclass
class RemoteWriteResult:
    """What became of a write request: samples stored, scrapes still being assembled, what was refused."""

    accepted: int = 0
    duplicates: int = 0
    hosts: int = 0
    ignored_series: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)


def remote_write_receive(*, request: WriteRequest, collector: CollectorIdentity, now: datetime) -> RemoteWriteResult:
    """Turn a remote-write request's node_exporter series into the seed's samples and store them.

    1. Keep the series a sample is made of (``collectors.node_exporter``), by host: the
       ``hostname`` label, else ``instance`` without its port. Others are counted as ignored
       (labelled metrics will keep them). Stale markers and non-finite values are skipped.
    2. In one transaction, per host in hostname order: add the values to what the host's
       earlier writes assembled (``RemoteHostState``), and take a sample from each scrape
       that is whole (as many CPU series and devices as the last stored one had), or that a
       newer scrape has superseded.
    3. Refuse hosts an admin has not approved (created pending when ``TWIN_REQUIRE_APPROVAL``,
       as registration does); store the rest through the batch path (``samples_ingest``): the
       same validation, history, latest values and events as an agent's samples.
    """
    result = RemoteWriteResult()
    points: dict[str, list[tuple[int, str, float]]] = defaultdict(list)
    kept, result.ignored_series = write_request_points(request, names=KEPT_NAMES)
    for point in kept:
        key = series_key(point.name, point.labels)
        if key is None:
            result.ignored_series += 1
            continue
        if not math.isfinite(point.value):  # a stale marker is a NaN
            continue
        raw_host = point.labels.get("hostname") or instance_host(point.labels.get("instance", ""))
        hostname = hostname_normalize(raw_host)
        if hostname is None:
            result.rejected.append({"hostname": raw_host[:253], "reason": "no valid hostname or instance label"})
            continue
        points[hostname].append((point.timestamp_ms, key, point.value))
    if not points:
        return result
    result.hosts = len(points)
    with transaction.atomic():
        samples = _scrapes_assemble(points)
        samples = _approved_only(samples, result=result)
        if samples:
            ingest = samples_ingest(
                raw_samples=[msgspec.Raw(orjson.dumps(s)) for s in samples],
                received_at=now,
                origin=BatchOrigin(reporter=f"collector:{collector.name}"),
            )
            result.accepted, result.duplicates = ingest.accepted, ingest.duplicates
            result.rejected += [{"hostname": r.hostname or "", "reason": r.reason} for r in ingest.rejected]
    _last_used_record(collector, now=now)
    return result


def _scrapes_assemble(points: dict[str, list[tuple[int, str, float]]]) -> list[dict[str, Any]]:
    """Add each host's points to its assembled values (row-locked) and return the samples now complete."""
    names = sorted(points)
    RemoteHostState.objects.bulk_create([RemoteHostState(hostname=n) for n in names], ignore_conflicts=True)
    states = RemoteHostState.objects.select_for_update().filter(hostname__in=names).order_by("hostname")
    samples: list[dict[str, Any]] = []
    changed: list[RemoteHostState] = []
    for state in states:
        values: dict[str, list[float]] = state.values
        emitted: dict[str, Any] = state.emitted
        by_time: dict[int, list[tuple[str, float]]] = defaultdict(list)
        for at, key, value in points[state.hostname]:
            by_time[at].append((key, value))
        for at in sorted(by_time):
            # A newer scrape supersedes older ones: each gives its sample now, whole or not.
            for older in sorted({int(ts) for ts, _ in values.values() if ts < at}):
                if emitted.get("at", -1) < older:
                    sample, emitted = scrape_sample(
                        hostname=state.hostname, values=values, at_ms=older, emitted=emitted
                    )
                    if sample:
                        samples.append(sample)
            for key, value in by_time[at]:
                if key not in values or values[key][0] <= at:
                    values[key] = [at, value]
            counts = scrape_counts(values, at)
            if counts["cpus"] >= emitted.get("cpus", 0) and counts["devices"] >= emitted.get("devices", 0):
                sample, emitted = scrape_sample(hostname=state.hostname, values=values, at_ms=at, emitted=emitted)
                if sample:
                    samples.append(sample)
        newest = max(ts for ts, _ in values.values())
        state.values = {k: v for k, v in values.items() if v[0] > newest - VALUES_KEPT_MS}
        state.emitted = emitted
        changed.append(state)
    RemoteHostState.objects.bulk_update(changed, ["values", "emitted", "updated_at"])
    return samples


def _approved_only(samples: list[dict[str, Any]], *, result: RemoteWriteResult) -> list[dict[str, Any]]:
    """The samples of approved hosts; new hosts are created pending when ``TWIN_REQUIRE_APPROVAL``."""
    if not samples:
        return samples
    names = {s["hostname"] for s in samples}
    known = dict(Host.objects.filter(hostname__in=names).values_list("hostname", "approved"))
    if settings.TWIN_REQUIRE_APPROVAL:
        new = names - known.keys()
        if new:
            created = hosts_lock_or_create(hostnames=new)
            Host.objects.filter(pk__in=[h.pk for h in created.values()]).update(approved=False)
            known.update(dict.fromkeys(new, False))
    kept = []
    for sample in samples:
        if known.get(sample["hostname"], True):
            kept.append(sample)
        else:
            result.rejected.append(
                {"hostname": sample["hostname"], "reason": "pending approval: an admin approves the host first"}
            )
    return kept


def _last_used_record(collector: CollectorIdentity, *, now: datetime) -> None:
    CollectorToken.objects.filter(pk=collector.token_id).exclude(last_used_at__gt=now - LAST_USED_EVERY).update(
        last_used_at=now
    )

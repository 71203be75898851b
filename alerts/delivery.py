"""Sending the outbox: each notice claimed by one process, signed, sent, retried with backoff, logged.

Notices (``Notification`` rows) are queued by the evaluator in the same
transaction as the transition they announce, so none is lost across a restart.
The sender (job ``alerts.deliver``) claims each with one conditional UPDATE
(a short lease, as ``jobs.services.job_claim`` does for jobs), sends it outside
any transaction, and records the outcome. A sender that dies between sending
and recording leaves the lease to expire and the notice is sent again: delivery
is at least once, and ``webhook-id`` (the notice's id, the same on every retry)
lets a receiver drop the second copy (Standard Webhooks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.db.models import F, Q

from alerts.models import Alert, AlertState, Notification, NotificationState, ReceiverKind
from alerts.selectors import alert_document, alerts_affects
from common.formats import iso_utc

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 60.0
BATCH = 200
ERROR_MAX = 500
# The hosts a cause's Alertmanager annotation names; the webhook's ``affects`` names them all.
AFFECTED_SHOWN = 50
# A firing alert's endsAt lies this many re-post periods ahead: a re-post or two may fail before it lapses.
REPOST_LEAD = 4


class DeliveryFailed(Exception):
    """A notice that did not reach its receiver; ``str(exc)`` says why (kept in the delivery log)."""


@dataclass(frozen=True)
class DeliveryRun:
    """What one run of the sender did."""

    sent: int
    retried: int
    failed: int


def webhook_signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header (Standard Webhooks): ``v1,`` and base64 HMAC-SHA256 of ``id.timestamp.body``.

    A ``whsec_``-prefixed secret is base64, as the convention's libraries make
    them; any other secret is used as its UTF-8 bytes.
    """
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def destination_check(url: str) -> None:
    """Refuse a destination on a private, loopback, link-local or reserved address unless the setting allows it.

    A receiver's URL is written by staff, but a webhook that can reach the
    server's own network is a way into it (SSRF). The name is resolved here;
    the request resolves it again (a name that changes between the two is
    not caught: allow only names you control).
    """
    if settings.TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryFailed(f"{url[:100]} is not an http(s) URL.")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        raise DeliveryFailed(f"{parts.hostname} does not resolve: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DeliveryFailed(
                f"{parts.hostname} is {address}, not a public address: "
                "set TWIN_ALERTS_ALLOW_PRIVATE_RECEIVERS to allow it."
            )


def _generator_url(alert: Alert) -> str | None:
    """The dashboard with the alert's host selected; a rack's alert, the dashboard (it has no rack link yet)."""
    base = settings.TWIN_ALERTS_DASHBOARD_URL.rstrip("/")
    if not base:
        return None
    return f"{base}/#host={alert.host.hostname}" if alert.host_id is not None else f"{base}/"


def webhook_payload(notice: Notification, *, now: datetime) -> dict[str, Any]:
    """The webhook body: ``{"type": "alert.firing"|"alert.resolved", "timestamp", "data": the alert}`` (docs/api.md)."""
    alert = notice.transition.alert
    document = dict(alert_document(alert, affects=alerts_affects([alert.pk]).get(alert.pk)))
    # The alert as this transition left it (a later one may have moved it since).
    document["state"] = notice.transition.to_state
    if notice.transition.to_state == AlertState.FIRING:
        document["endsAt"] = None
    document["generatorURL"] = _generator_url(alert)
    return {"type": f"alert.{notice.transition.to_state}", "timestamp": iso_utc(now), "data": document}


def alertmanager_alert(alert: Alert, *, resolved: bool, now: datetime) -> dict[str, Any]:
    """One alert as Alertmanager's API v2 takes it; a resolve repeats the original ``startsAt``.

    A firing alert carries ``endsAt`` a few re-post periods ahead (as Prometheus
    does): Alertmanager resolves it by itself then, unless ``alerts_repost``
    posted it again before. A cause's annotations name the hosts it affects.
    """
    affects = alerts_affects([alert.pk]).get(alert.pk, [])
    document = alert_document(alert, affects=affects)
    annotations = dict(document["annotations"])
    if affects:
        shown = ", ".join(affects[:AFFECTED_SHOWN])
        more = f" and {len(affects) - AFFECTED_SHOWN} more" if len(affects) > AFFECTED_SHOWN else ""
        annotations["affected_hosts"] = f"{len(affects)} host(s) cut off: {shown}{more}"
    posted: dict[str, Any] = {
        "labels": {k: v for k, v in document["labels"].items() if v != ""},
        "annotations": annotations,
        "startsAt": document["startsAt"],
    }
    if resolved and alert.ends_at is not None:
        posted["endsAt"] = iso_utc(alert.ends_at)
    elif not resolved:
        posted["endsAt"] = iso_utc(now + timedelta(seconds=REPOST_LEAD * settings.TWIN_ALERTMANAGER_REPOST_SECONDS))
    generator = _generator_url(alert)
    if generator:
        posted["generatorURL"] = generator
    return posted


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.TWIN_ALERTS_SEND_TIMEOUT_SECONDS) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"{exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryFailed(str(getattr(exc, "reason", exc))) from None


def notice_send(notice: Notification, *, now: datetime) -> None:
    """Send one notice to its receiver; raise ``DeliveryFailed`` when it did not arrive."""
    receiver = notice.receiver
    if receiver.kind == ReceiverKind.ALERTMANAGER:
        url = receiver.url.rstrip("/") + "/api/v2/alerts"
        destination_check(url)
        alert = notice.transition.alert
        resolved = notice.transition.to_state == AlertState.RESOLVED
        body = orjson.dumps([alertmanager_alert(alert, resolved=resolved, now=now)])
        _post(url, body, {})
        return
    destination_check(receiver.url)
    body = orjson.dumps(webhook_payload(notice, now=now))
    msg_id = f"ntf_{notice.pk}"
    timestamp = int(now.timestamp())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if receiver.secret:
        headers["webhook-signature"] = webhook_signature(
            secret=receiver.secret, msg_id=msg_id, timestamp=timestamp, body=body
        )
    _post(receiver.url, body, headers)


def _claim(notice_id: int, *, now: datetime) -> bool:
    """Take one due notice for this process: True for exactly one claimant (one conditional UPDATE)."""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    return (
        Notification.objects.filter(
            free, pk=notice_id, state=NotificationState.PENDING, next_attempt_at__lte=now
        ).update(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1)
        == 1
    )


def backoff_seconds(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` tries: 2, 4, 8, ... up to the setting."""
    return min(float(2**attempts), settings.TWIN_ALERTS_RETRY_MAX_SECONDS)


def notices_deliver(*, now: datetime) -> DeliveryRun:
    """Send every due notice this process can claim, oldest first; record each outcome.

    1. Read the due notices' ids (pending, next try reached, not claimed).
    2. Claim each; send it outside any transaction.
    3. Sent: recorded once. Failed: retried after a backoff, given up
       (``failed``) after ``TWIN_ALERTS_ATTEMPTS_MAX`` tries; the error is kept.
    """
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    due = list(
        Notification.objects.filter(free, state=NotificationState.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:BATCH]
    )
    sent = retried = failed = 0
    for notice_id in due:
        if not _claim(notice_id, now=now):
            continue
        notice = Notification.objects.select_related(
            "receiver",
            "transition__alert__rule",
            "transition__alert__host",
            "transition__alert__rack",
            "transition__alert__cause",
        ).get(pk=notice_id)
        try:
            notice_send(notice, now=now)
        except DeliveryFailed as exc:
            error = str(exc)[:ERROR_MAX]
            if notice.attempts >= settings.TWIN_ALERTS_ATTEMPTS_MAX:
                Notification.objects.filter(pk=notice_id).update(
                    state=NotificationState.FAILED, claimed_until=None, last_error=error
                )
                failed += 1
                logger.warning(
                    "notice %s to %s gave up after %s tries: %s", notice_id, notice.receiver, notice.attempts, error
                )
            else:
                Notification.objects.filter(pk=notice_id).update(
                    next_attempt_at=now + timedelta(seconds=backoff_seconds(notice.attempts)),
                    claimed_until=None,
                    last_error=error,
                )
                retried += 1
            continue
        Notification.objects.filter(pk=notice_id).update(
            state=NotificationState.SENT, sent_at=now, claimed_until=None, last_error=""
        )
        sent += 1
    return DeliveryRun(sent=sent, retried=retried, failed=failed)


def alerts_repost(*, now: datetime) -> int:
    """Post every alert still firing to each Alertmanager that was told of it, again; return how many posts.

    Alertmanager forgets an alert whose ``endsAt`` passed: each post carries
    one ``REPOST_LEAD`` periods ahead, and this job (every
    ``TWIN_ALERTMANAGER_REPOST_SECONDS``) renews it, as Prometheus re-sends its
    firing alerts. Only alerts whose firing notice reached that receiver
    (not silenced, not inhibited, not still queued); one request per
    ``BATCH`` alerts. A post that fails is logged and tried at the next period.
    """
    told = (
        Notification.objects.filter(
            state=NotificationState.SENT,
            receiver__kind=ReceiverKind.ALERTMANAGER,
            receiver__enabled=True,
            transition__to_state=AlertState.FIRING,
            transition__alert__state=AlertState.FIRING,
        )
        .select_related(
            "receiver",
            "transition__alert__rule",
            "transition__alert__host",
            "transition__alert__rack",
            "transition__alert__cause",
        )
        .order_by("receiver_id", "transition__alert_id")
    )
    by_receiver: dict[int, tuple[str, list[Alert]]] = {}
    for notice in told:
        url = notice.receiver.url.rstrip("/") + "/api/v2/alerts"
        by_receiver.setdefault(notice.receiver_id, (url, []))[1].append(notice.transition.alert)
    posts = 0
    for url, alerts in by_receiver.values():
        for start in range(0, len(alerts), BATCH):
            body = orjson.dumps([alertmanager_alert(a, resolved=False, now=now) for a in alerts[start : start + BATCH]])
            try:
                destination_check(url)
                _post(url, body, {})
            except DeliveryFailed as exc:
                logger.warning("re-posting firing alerts to %s failed: %s", url, exc)
                break
            posts += 1
    return posts

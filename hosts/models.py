"""The inventory: racks, the hosts in them, their interfaces and the links between hosts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from common.text import text_validate
from hosts.schema import hostname_validate


class Rack(models.Model):
    """A rack hosts can be placed in; created by an agent's report or an admin."""

    name = models.CharField(max_length=64, unique=True, validators=[text_validate])
    description = models.CharField(max_length=200, blank=True, validators=[text_validate])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FabricRole(models.TextChoices):
    """A node's tier in the network fabric; links run from an upper tier down (core → spine → leaf → host).

    A real host has no role (``NONE``). The node named ``TWIN_CORE_HOSTNAME``
    is the core whatever its role says (``hosts.topology.node_tier``).
    """

    NONE = "", "none (a host)"
    CORE = "core", "core"
    SPINE = "spine", "spine"
    LEAF = "leaf", "leaf (top of rack)"


class Host(models.Model):
    """A machine (or a virtual node such as the core switch) in the twin.

    Only inventory facts live here. What the host last reported lives in
    ``metrics.LatestMetrics`` and its status is derived from that when read,
    never stored.
    """

    hostname = models.CharField(
        max_length=253,
        unique=True,
        validators=[hostname_validate],
        help_text="RFC 1123, lower case: the name agents report under.",
    )
    display_name = models.CharField(max_length=200, blank=True, validators=[text_validate])
    ip = models.GenericIPAddressField(null=True, blank=True, verbose_name="IP address")
    agent_version = models.CharField(max_length=64, blank=True, validators=[text_validate])
    platform = models.CharField(max_length=128, blank=True, validators=[text_validate])
    is_virtual = models.BooleanField(
        default=False,
        help_text="A node without an agent of its own (a switch); online while any linked host is online.",
    )
    rack = models.ForeignKey(Rack, null=True, blank=True, on_delete=models.SET_NULL, related_name="hosts")
    position_x = models.FloatField(null=True, blank=True)
    position_y = models.FloatField(null=True, blank=True)
    position_z = models.FloatField(null=True, blank=True)
    placement_locked = models.BooleanField(
        default=False,
        help_text="Set when an admin places the host: agent-reported rack and position are then ignored.",
    )
    approved = models.BooleanField(
        default=True,
        help_text="With TWIN_REQUIRE_APPROVAL, a newly registered host waits here until an admin approves it.",
    )
    reports_for = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="reported_by",
        help_text="Other hosts this host's agent may send samples for (a poller reporting a switch, say).",
    )
    # The fabric (issue 21): a switch's tier and an admin's "this switch is down".
    role = models.CharField(
        max_length=8,
        choices=FabricRole.choices,
        blank=True,
        default=FabricRole.NONE,
        help_text="A switch's tier in the fabric; empty for a host.",
    )
    failed = models.BooleanField(
        default=False,
        help_text="Marked failed by an admin: the twin routes no path through it (reachability, impact).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["hostname"]
        constraints = [
            # Hostnames are stored lower-cased (``hosts.schema.hostname_normalize``), so
            # "Titan-01" can never be stored beside "titan-01".
            models.CheckConstraint(condition=Q(hostname=Lower("hostname")), name="host_hostname_lower_case"),
        ]

    def __str__(self) -> str:
        return self.hostname


class Link(models.Model):
    """A network link between two hosts, drawn from ``source`` to ``target``.

    Its throughput is read from the counters of the end that reports them (the
    real host, not the virtual switch), so nothing about traffic is stored here.
    """

    source = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="links_out")
    target = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="links_in")
    capacity_gbps = models.FloatField(
        default=settings.TWIN_DEFAULT_LINK_CAPACITY_GBPS,
        help_text="Line rate in Gbit/s; utilization is throughput divided by this.",
    )
    # Named, the link's traffic is that interface's own counters, not its host's total.
    source_interface = models.ForeignKey(
        "Interface", null=True, blank=True, on_delete=models.SET_NULL, related_name="links_as_source"
    )
    target_interface = models.ForeignKey(
        "Interface", null=True, blank=True, on_delete=models.SET_NULL, related_name="links_as_target"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source__hostname", "target__hostname"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="link_unique_pair"),
            models.CheckConstraint(condition=~Q(source=F("target")), name="link_not_a_loop"),
            models.CheckConstraint(condition=Q(capacity_gbps__gt=0), name="link_capacity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.source.hostname}::{self.target.hostname}"


class Interface(models.Model):
    """A named network interface of a host or switch (``eth0``, ``swp49``).

    Created by a topology import that names it or by an agent that reports its
    counters; its latest counters live in ``metrics.InterfaceCounters``.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="interfaces")
    name = models.CharField(max_length=64, validators=[text_validate])
    mac = models.CharField(max_length=17, blank=True, verbose_name="MAC address", help_text="aa:bb:cc:dd:ee:ff")
    speed_mbps = models.PositiveIntegerField(null=True, blank=True, help_text="Line rate in Mbit/s, as reported.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host__hostname", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="interface_unique_name")]

    def __str__(self) -> str:
        return f"{self.host.hostname}:{self.name}"


class EnrollmentKey(models.Model):
    """A shared key that lets agents register hosts; stored only as its SHA-256.

    The key is 256 random bits, so a plain hash is as strong as a slow one and
    lets a request find its row by index. It is shown once, when created.
    """

    name = models.CharField(
        max_length=100, validators=[text_validate], help_text="What this key is for, e.g. 'rack R1 rollout'."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False, help_text="The key's first characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty for no limit.")
    uses = models.PositiveIntegerField(default=0, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AgentCredential(models.Model):
    """A host's agent credential: a public key id; the signing secret is derived, never stored.

    A host has at most one active credential: registering again rotates it and
    the old one stops working at once.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="credentials")
    key_id = models.CharField(max_length=40, unique=True)
    enrollment_key = models.ForeignKey(EnrollmentKey, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["host"], condition=Q(revoked_at__isnull=True), name="credential_one_active_per_host"
            ),
        ]

    def __str__(self) -> str:
        return self.key_id

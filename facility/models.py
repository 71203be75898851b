"""The physical twin: where racks stand (site, room, row), where hosts sit in them (units) and their power.

The inventory's ``hosts.Rack`` and ``hosts.Host`` stay as they are: this app
adds to each a one-to-one record (``RackLocation``, ``Mount``) and to racks
their power feeds, so a rack or host that nobody placed on a floor works as
before. What the hosts draw is measured (``power_watts`` in the metric
registry), never stored here.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from common.text import text_validate
from hosts.models import Host, Rack

RACK_HEIGHT_DEFAULT_U = 42
RACK_HEIGHT_MAX_U = 60


class Face(models.TextChoices):
    """The side of the rack a host is mounted from (a full-depth host fills its units on both)."""

    FRONT = "front", "front"
    REAR = "rear", "rear"


class FeedSide(models.TextChoices):
    """A rack's two independent power feeds: each should carry the rack alone if the other fails."""

    A = "A", "A"
    B = "B", "B"


class Site(models.Model):
    """A data center building (or campus): the top of the physical tree."""

    name = models.CharField(max_length=64, unique=True, validators=[text_validate])
    description = models.CharField(max_length=200, blank=True, validators=[text_validate])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Room(models.Model):
    """A room (data hall) of a site."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=64, validators=[text_validate])

    class Meta:
        ordering = ["site__name", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="room_unique_in_site")]

    def __str__(self) -> str:
        return f"{self.site.name}/{self.name}"


class Row(models.Model):
    """A row of racks in a room; ``order`` places it on the floor (rows are drawn one behind the other)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="rows")
    name = models.CharField(max_length=64, validators=[text_validate])
    order = models.PositiveIntegerField(default=0, help_text="The row's place in its room, front to back.")

    class Meta:
        ordering = ["room__site__name", "room__name", "order", "name"]
        constraints = [models.UniqueConstraint(fields=["room", "name"], name="row_unique_in_room")]

    def __str__(self) -> str:
        return f"{self.room}/{self.name}"


class RackLocation(models.Model):
    """Where a rack stands (its row and its place in the row) and how many units it has."""

    rack = models.OneToOneField(Rack, on_delete=models.CASCADE, primary_key=True, related_name="location")
    row = models.ForeignKey(Row, on_delete=models.CASCADE, related_name="racks")
    order = models.PositiveIntegerField(default=0, help_text="The rack's place in its row, left to right.")
    height_u = models.PositiveSmallIntegerField(
        default=RACK_HEIGHT_DEFAULT_U,
        validators=[MinValueValidator(1), MaxValueValidator(RACK_HEIGHT_MAX_U)],
        help_text="Rack units (U) available, numbered 1 (bottom) up.",
    )

    class Meta:
        ordering = ["row", "order"]
        constraints = [
            models.CheckConstraint(
                condition=Q(height_u__gte=1, height_u__lte=RACK_HEIGHT_MAX_U), name="rack_height_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rack.name} in {self.row}"


class Mount(models.Model):
    """A host's place in its rack (``host.rack``): lowest unit, height and face; and its nameplate draw.

    ``unit`` is empty for a host whose rack is known but not its units.
    Overlaps are refused by ``facility.services.mount_place`` (under a lock on
    the rack), which every writer calls: the admin and the import alike.
    """

    host = models.OneToOneField(Host, on_delete=models.CASCADE, primary_key=True, related_name="mount")
    unit = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The lowest unit the host fills (1 = bottom).",
    )
    height_u = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(RACK_HEIGHT_MAX_U)], help_text="1U, 2U, ..."
    )
    face = models.CharField(max_length=5, choices=Face.choices, default=Face.FRONT)
    nameplate_watts = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0)], help_text="The power supply's rated draw, watts."
    )

    class Meta:
        ordering = ["host__hostname"]
        constraints = [
            models.CheckConstraint(condition=Q(unit__isnull=True) | Q(unit__gte=1), name="mount_unit_positive"),
            models.CheckConstraint(condition=Q(height_u__gte=1), name="mount_height_positive"),
            models.CheckConstraint(
                condition=Q(nameplate_watts__isnull=True) | Q(nameplate_watts__gte=0), name="mount_nameplate_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.host.hostname} at U{self.unit}" if self.unit else self.host.hostname


class PowerFeed(models.Model):
    """One of a rack's feeds (A or B) and its PDU, with its capacity: watts, or amps at a voltage."""

    rack = models.ForeignKey(Rack, on_delete=models.CASCADE, related_name="power_feeds")
    side = models.CharField(max_length=1, choices=FeedSide.choices)
    pdu = models.CharField(max_length=64, blank=True, validators=[text_validate], help_text="The PDU's name.")
    capacity_watts = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    amps = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    volts = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["rack__name", "side"]
        constraints = [
            models.UniqueConstraint(fields=["rack", "side"], name="feed_one_per_side"),
            models.CheckConstraint(
                condition=Q(capacity_watts__isnull=False) | Q(amps__isnull=False, volts__isnull=False),
                name="feed_capacity_given",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rack.name} feed {self.side}"

    @property
    def capacity(self) -> float:
        """Watts the feed carries: as given, or amps times volts."""
        return feed_capacity_watts(self.capacity_watts, self.amps, self.volts)


def feed_capacity_watts(watts: float | None, amps: float | None, volts: float | None) -> float:
    """A feed's capacity in watts: ``watts`` when given, else ``amps * volts`` (single phase)."""
    if watts is not None:
        return float(watts)
    return float(amps or 0) * float(volts or 0)

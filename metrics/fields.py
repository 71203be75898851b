"""The registry of metric fields: one line per metric drives everything that names metrics.

From ``METRIC_FIELDS`` come the input schema of a sample (``metrics.schema``),
the columns of the history and of the latest values (``metrics.models``), the
SQL column lists of ingest (``metrics.services``) and the keys of each host's
``metrics`` in the twin-state document (``twin.snapshot``). Adding a metric is
one line here and a migration (``python manage.py makemigrations metrics``);
see docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from django.db import models

INT64_MAX = 2**63 - 1


class Kind(StrEnum):
    """How a metric behaves over time."""

    GAUGE = "gauge"  # a level: averaged over time in history
    COUNTER = "counter"  # a running total: only its rate means something; it may reset


@dataclass(frozen=True)
class MetricField:
    """One metric, as agents send it, as it is stored and as dashboards read it.

    - ``name``: the sample's snake_case key and the column name.
    - ``key``: the camelCase key in a host's ``metrics`` in twin-state.
    - ``input``: the JSON type and bounds a sample's value must meet (msgspec).
    - ``integer``: stored as a 64-bit integer (an input float is truncated).
    - ``required``: every sample carries it; a host's document always shows it
      (``null`` until reported). Optional metrics are shown once known, so older
      agents that never send them give documents without the key, as in the seed.
    - ``unit``: what a value counts, for the Prometheus exposition's names and
      OpenMetrics' ``# UNIT`` ("" for a pure number such as a load average).
    """

    name: str
    key: str
    kind: Kind
    input: Any
    help_text: str
    integer: bool = False
    required: bool = False
    # The unit, plural and lower-case as Prometheus names them ("seconds",
    # "bytes"), or "" for a pure number; the exposition (twin.exposition) reads it.
    unit: str = ""

    def model_field(self) -> models.Field:
        """The column, in the history and in the latest values alike."""
        # Required metrics are NOT NULL in the history; every metric is
        # nullable where a host may not have reported it yet.
        nullable = not self.required
        if self.integer:
            return models.BigIntegerField(null=nullable, blank=nullable, help_text=self.help_text)
        return models.FloatField(null=nullable, blank=nullable, help_text=self.help_text)


Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
Counter = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
# Agents read uptime as a float (``/proc/uptime``); the history keeps whole seconds.
Seconds = Annotated[float, msgspec.Meta(ge=0, le=2**53 - 1)]
# A host's draw: a whole chassis tops out in the kilowatts; a megawatt is a unit mix-up.
Watts = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]
# Air at a server's inlet: below -50 or above 150 °C is a broken sensor, not a reading.
Celsius = Annotated[float, msgspec.Meta(ge=-50, le=150)]

GAUGE, COUNTER = Kind.GAUGE, Kind.COUNTER

# fmt: off
METRIC_FIELDS: tuple[MetricField, ...] = (
    MetricField("cpu_load", "cpuLoad", GAUGE, Percent, "CPU busy, percent.", required=True, unit="percent"),
    MetricField("memory_used_percent", "memoryUsedPercent", GAUGE, Percent, "Memory in use, percent.", required=True,
                unit="percent"),
    MetricField("load_average", "loadAverage", GAUGE, NonNegativeFloat, "1-minute load average.", required=True),
    MetricField("uptime_seconds", "uptimeSeconds", GAUGE, Seconds, "Seconds since boot.", integer=True, required=True,
                unit="seconds"),
    MetricField("net_bytes_tx", "netBytesTx", COUNTER, Counter, "Bytes sent since boot.", integer=True, unit="bytes"),
    MetricField("net_bytes_rx", "netBytesRx", COUNTER, Counter, "Bytes received since boot.", integer=True,
                unit="bytes"),
    MetricField("power_watts", "powerWatts", GAUGE, Watts, "Measured power draw, watts.", unit="watts"),
    MetricField("inlet_temp_celsius", "inletTempCelsius", GAUGE, Celsius, "Inlet air temperature, degrees Celsius.",
                unit="celsius"),
)
# fmt: on

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in METRIC_FIELDS)
FIELDS_BY_KEY: dict[str, MetricField] = {f.key: f for f in METRIC_FIELDS}
GAUGES: tuple[MetricField, ...] = tuple(f for f in METRIC_FIELDS if f.kind == Kind.GAUGE)
COUNTERS: tuple[MetricField, ...] = tuple(f for f in METRIC_FIELDS if f.kind == Kind.COUNTER)
# The counters whose sum is a host's traffic on its uplink (the link throughput).
LINK_TRAFFIC = ("net_bytes_tx", "net_bytes_rx")


def metric_columns() -> dict[str, models.Field]:
    """A fresh model field per metric, for a model class body."""
    return {f.name: f.model_field() for f in METRIC_FIELDS}


# What a rollup bucket keeps of each metric (metrics/rollups.py explains why):
# a gauge's average, count, least and greatest value; a counter's first and last
# reading, the increase and the seconds between the readings that count for its
# rate (none across a reset), and its least and greatest rate between two readings.
GAUGE_ROLLUP = ("avg", "count", "min", "max")
COUNTER_ROLLUP = ("first", "last", "increase", "seconds", "rate_min", "rate_max")


def rollup_column_names(f: MetricField) -> tuple[str, ...]:
    """The rollup columns of one metric, in a fixed order: ``cpu_load_avg``, ``net_bytes_tx_first``, ..."""
    return tuple(f"{f.name}_{part}" for part in (GAUGE_ROLLUP if f.kind == Kind.GAUGE else COUNTER_ROLLUP))


def rollup_columns() -> dict[str, models.Field]:
    """Fresh model fields for every metric's rollup columns (all nullable: a bucket may lack a metric)."""
    columns: dict[str, models.Field] = {}
    for f in METRIC_FIELDS:
        name = f.name
        if f.kind == Kind.GAUGE:
            whole = models.BigIntegerField if f.integer else models.FloatField
            columns[f"{name}_avg"] = models.FloatField(null=True, blank=True, help_text=f"Average. {f.help_text}")
            columns[f"{name}_count"] = models.PositiveIntegerField(default=0, help_text="Readings averaged.")
            columns[f"{name}_min"] = whole(null=True, blank=True)
            columns[f"{name}_max"] = whole(null=True, blank=True)
        else:
            columns[f"{name}_first"] = models.BigIntegerField(null=True, blank=True, help_text="First reading.")
            columns[f"{name}_last"] = models.BigIntegerField(null=True, blank=True, help_text="Last reading.")
            columns[f"{name}_increase"] = models.FloatField(
                default=0.0, help_text="Sum of the rises between consecutive readings (none across a reset)."
            )
            columns[f"{name}_seconds"] = models.FloatField(default=0.0, help_text="Seconds those rises took.")
            columns[f"{name}_rate_min"] = models.FloatField(null=True, blank=True, help_text="Per second.")
            columns[f"{name}_rate_max"] = models.FloatField(null=True, blank=True, help_text="Per second.")
    return columns


@dataclass(frozen=True)
class SeriesValueField:
    """The one value column of a labelled series (``metrics.models.SeriesSample``), seen as a gauge or a counter.

    A series' kind is a row's, not a column's: its rollups keep the gauge's
    columns and the counter's alike (``value_avg`` ... and ``value_first`` ...,
    no name in common), and a read takes the ones of the series' kind. So the
    same rollup algebra (``metrics.rollups``) serves both histories.
    """

    name: str
    kind: Kind
    integer: bool = False


SERIES_VALUE_FIELDS = (SeriesValueField("value", Kind.GAUGE), SeriesValueField("value", Kind.COUNTER))


def series_rollup_columns() -> dict[str, models.Field]:
    """Fresh model fields for a labelled series' rollup columns (``SERIES_VALUE_FIELDS``)."""
    return {
        "value_avg": models.FloatField(null=True, blank=True, help_text="Average (a gauge)."),
        "value_count": models.PositiveIntegerField(default=0, help_text="Readings averaged."),
        "value_min": models.FloatField(null=True, blank=True),
        "value_max": models.FloatField(null=True, blank=True),
        "value_first": models.FloatField(null=True, blank=True, help_text="First reading (a counter)."),
        "value_last": models.FloatField(null=True, blank=True, help_text="Last reading (a counter)."),
        "value_increase": models.FloatField(
            default=0.0, help_text="Sum of the rises between consecutive readings (none across a reset)."
        ),
        "value_seconds": models.FloatField(default=0.0, help_text="Seconds those rises took."),
        "value_rate_min": models.FloatField(null=True, blank=True, help_text="Per second."),
        "value_rate_max": models.FloatField(null=True, blank=True, help_text="Per second."),
    }

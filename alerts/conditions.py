"""What a rule can look at, and how it compares: one place, read by the models, the validation and the evaluator.

A rule's subject is one of:

- a metric field of the registry (``metrics.fields.METRIC_FIELDS``: ``cpu_load``,
  ``memory_used_percent``, ...), its latest value;
- ``net_throughput_gbps``, the host's uplink throughput between its last two readings;
- ``link_utilization_percent``, the busiest of the host's links, percent of its capacity
  (as the twin-state document's ``links[].utilization`` shows it);
- the host's ``status`` (``twin.status``: online, stale, offline, unknown), following the clock;
- ``absent``: no sample for more than ``threshold`` seconds.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from enum import StrEnum

from metrics.fields import METRIC_FIELDS
from twin.status import HostStatus


class Kind(StrEnum):
    """What a rule's condition is about."""

    METRIC = "metric"  # a value compared with a threshold
    STATUS = "status"  # the host's derived status equals a given one
    ABSENT = "absent"  # no data for more than threshold seconds


# The values a metric rule may compare, beyond the registry's fields.
DERIVED_FIELDS = ("net_throughput_gbps", "link_utilization_percent")
METRIC_SUBJECTS: tuple[str, ...] = (*(f.name for f in METRIC_FIELDS), *DERIVED_FIELDS)
STATUS_VALUES: tuple[str, ...] = tuple(s.value for s in HostStatus)


class Operator(StrEnum):
    """How a metric is compared with the threshold."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


COMPARE: dict[str, Callable[[float, float], bool]] = {
    Operator.GT: operator.gt,
    Operator.GE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LE: operator.le,
}
# An open alert stays open while the value is beyond the clear threshold (hysteresis):
# for ">", it clears once the value is at or below it.
STILL_ACTIVE: dict[str, Callable[[float, float], bool]] = {
    Operator.GT: operator.gt,
    Operator.GE: operator.gt,
    Operator.LT: operator.lt,
    Operator.LE: operator.lt,
}
RISING = (Operator.GT, Operator.GE)


class Severity(StrEnum):
    """How urgent a firing alert is (Alertmanager's usual label values)."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Scope(StrEnum):
    """Which hosts a rule watches."""

    ALL = "all"  # every real (non-virtual) host
    RACKS = "racks"  # the real hosts of the rule's racks
    HOSTS = "hosts"  # the rule's hosts (real or virtual)
    VIRTUAL = "virtual"  # every virtual node (switches)

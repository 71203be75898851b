"""What a rule can look at, and how it compares: one place, read by the models, the validation and the evaluator.

A rule's subject is one of:

- a metric field of the registry (``metrics.fields.METRIC_FIELDS``: ``cpu_load``,
  ``memory_used_percent``, ...), its latest value;
- ``net_throughput_gbps``, the host's uplink throughput between its last two readings;
- ``link_utilization_percent``, the busiest of the host's links, percent of its capacity
  (as the twin-state document's ``links[].utilization`` shows it);
- the host's ``status`` (``twin.status``: online, stale, offline, unknown), following the clock;
- ``absent``: no sample for more than ``threshold`` seconds;
- a rack's power (``RACK_SUBJECTS``), evaluated once per rack, never per host: one
  incident per rack. ``rack_power_percent`` is the measured draw as a percent of the
  rack's capacity with both feeds up; ``rack_ab_margin_watts`` the smallest failover
  margin, what the surviving feed has left if the other fails (negative: the rack
  would trip). Both as ``GET /api/racks/{name}/power`` shows them (``facility.power``).
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
# A rack's values: a rule of one of these watches racks (scope all or racks), not hosts.
RACK_POWER_PERCENT = "rack_power_percent"
RACK_AB_MARGIN = "rack_ab_margin_watts"
RACK_SUBJECTS = (RACK_POWER_PERCENT, RACK_AB_MARGIN)
METRIC_SUBJECTS: tuple[str, ...] = (*(f.name for f in METRIC_FIELDS), *DERIVED_FIELDS, *RACK_SUBJECTS)

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
    """Which hosts (a rack rule: which racks) a rule watches."""

    ALL = "all"  # every real (non-virtual) host; a rack rule: every rack
    RACKS = "racks"  # the real hosts of the rule's racks; a rack rule: the rule's racks
    HOSTS = "hosts"  # the rule's hosts (real or virtual)
    VIRTUAL = "virtual"  # every virtual node (switches)


RACK_SCOPES = (Scope.ALL, Scope.RACKS)

"""The twin as Prometheus metrics: what ``GET /api/twin/metrics`` exposes for a Prometheus to scrape.

Every host's latest values (one family per field of the registry,
``metrics.fields``) and its derived state (up, status, reachability, live
uplinks, last contact, inventory facts), each series labelled with the host's
``hostname``, its ``rack`` and the ``site`` that rack stands in, when it has
them. The document is the twin-state one (``twin.snapshot``), so a scrape and
``GET /api/twin/state`` agree on every value and status: two reads of the
twin, one derivation.

prometheus_client decides the format from the scraper's ``Accept``
(``choose_encoder``: OpenMetrics 1.0 when asked for, else the classic text
0.0.4) and is the reference for every byte written: the text read by its
parser and written again by its generators is the same text
(tests/twin/test_exposition.py, hostile labels included). The generators
are not called here because they work per sample (sort the labels, check
each name, escape each value), some 150,000 samples at 10,000 hosts: in
bench/exposition-results.md they take longer for the text alone than this
module takes for the whole exposition, reads included. Here a host's labels
are checked and escaped once and shared by all its lines.

Labelled metrics slot in as more families: a ``Family`` from ``family_named``
(their name, type, unit and help), each sample's line from ``sample_line``
with the text of ``labels_merge`` (the host's labels, then the series' own),
listed by ``host_families`` beside the registry's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from facility.selectors import rack_sites
from metrics.fields import METRIC_FIELDS, Kind, MetricField
from twin.snapshot import HostDoc, gc_paused, snapshot_build
from twin.status import HostStatus

PREFIX = "twin_host_"
# The labels that say which host a series is about; a labelled metric's own follow.
HOST_LABELS = ("hostname", "rack", "site")
STATUSES = tuple(s.value for s in HostStatus)
OPENMETRICS = "application/openmetrics-text"
# Prometheus' (legacy) name grammar: every name written here meets it, so no scraper's escaping changes one.
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_NEEDS_ESCAPE = re.compile(r'[\\\n"]').search
# Label names already checked against the grammar: a host's are the same on every host.
_label_names_checked: set[str] = set()
# A status series' labels are a host's plus ``status``, which sorts after every host label.
assert max(HOST_LABELS) < "status"


@dataclass(frozen=True, slots=True)
class Family:
    """One exposed metric: its name (a counter's without ``_total``), type, help and unit ("" for none)."""

    name: str
    kind: Kind
    help: str
    unit: str = ""

    def __post_init__(self) -> None:
        if not _METRIC_NAME.match(self.name):
            raise ValueError(f"{self.name!r} is not a Prometheus metric name")


# One family and its sample lines: a sample's line is the same in both formats, only the metadata differs.
FamilyLines = tuple[Family, list[str]]


def family_named(*, name: str, kind: Kind, help_text: str, unit: str = "") -> Family:
    """The family a host metric is exposed as: ``twin_host_<name>``, its unit appended unless the name says it.

    ``cpu_load`` in percent is ``twin_host_cpu_load_percent``; ``uptime_seconds``
    stays as it is; ``net_bytes_tx`` keeps its name (it says bytes) and, as a
    counter, is sampled as ``twin_host_net_bytes_tx_total``. OpenMetrics'
    ``# UNIT`` line is given only when the name ends with the unit, as that
    format requires.
    """
    exposed = PREFIX + name
    if unit and unit not in name.split("_"):
        exposed += "_" + unit
    return Family(exposed, kind, help_text, unit if unit and exposed.endswith("_" + unit) else "")


def field_family(field: MetricField) -> Family:
    """The family of one field of the registry."""
    return family_named(name=field.name, kind=field.kind, help_text=field.help_text, unit=field.unit)


# By the key of a host's ``metrics`` in the twin-state document.
FIELD_FAMILIES: dict[str, Family] = {f.key: field_family(f) for f in METRIC_FIELDS}

UP = Family(PREFIX + "up", Kind.GAUGE, "1 while the host is online (its last sample is fresh), else 0.")
STATUS = Family(
    PREFIX + "status",
    Kind.GAUGE,
    "The host's status: 1 for the one it has (online, stale, offline or unknown), 0 for the others.",
)
REACHABLE = Family(
    PREFIX + "reachable", Kind.GAUGE, "1 while the core has a path to the host over working switches, else 0."
)
LIVE_UPLINKS = Family(PREFIX + "live_uplinks", Kind.GAUGE, "How many of the host's uplinks lead to the core now.")
LAST_SEEN = Family(
    PREFIX + "last_seen_timestamp_seconds",
    Kind.GAUGE,
    "When the host last reported, in Unix time (its age: time() - this); absent if it never has.",
    unit="seconds",
)
INFO = Family(
    PREFIX + "info",
    Kind.GAUGE,
    "1 for every host, labelled with its display name, address, platform, agent version and whether it is virtual.",
)
STATE_FAMILIES: tuple[Family, ...] = (UP, STATUS, REACHABLE, LIVE_UPLINKS, LAST_SEEN, INFO)
# Every family the exposition may hold (the dashboard in deploy/grafana names only these).
FAMILIES: tuple[Family, ...] = (*FIELD_FAMILIES.values(), *STATE_FAMILIES)


def label_value_escape(value: str) -> str:
    """A label value as both formats write it: backslash, newline and double quote escaped with a backslash."""
    if _NEEDS_ESCAPE(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels_text(items: Mapping[str, str]) -> str:
    """Labels as the exposition writes them (sorted by name, values escaped); a name outside the grammar is refused.

    A labelled metric's label names come from its sender: one that Prometheus
    could not read (``bad-name``, ``__reserved``) is an error here, not a
    broken scrape.
    """
    for name in items:
        if name not in _label_names_checked:
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ValueError(f"{name!r} is not a Prometheus label name")
            _label_names_checked.add(name)
    pairs = sorted(items.items())
    # Most values need no escaping: one search over them all instead of one a value.
    if _NEEDS_ESCAPE("".join(items.values())) is None:
        return ",".join([f'{name}="{value}"' for name, value in pairs])
    return ",".join([f'{name}="{label_value_escape(value)}"' for name, value in pairs])


def sample_name(family: Family) -> str:
    """The name a family's samples carry: a counter's ends ``_total``."""
    return family.name + "_total" if family.kind == Kind.COUNTER else family.name


def sample_line(family: Family, labels: str, value: float) -> str:
    """One sample's line: its name, its labels' text (``labels_text``) and its value as Go writes it."""
    name = sample_name(family)
    return f"{name}{{{labels}}} {_go(value)}\n" if labels else f"{name} {_go(value)}\n"


def labels_merge(host: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """A labelled series' labels: the host's, then its own; an own label named as a host's becomes ``exported_<name>``.

    As Prometheus does when a scraped series carries a label the target also
    sets (``honor_labels: false``): the host's labels always say which host.
    """
    merged = dict(host)
    for name, value in own.items():
        merged[f"exported_{name}" if name in HOST_LABELS else name] = value
    return merged


def host_labels(doc: HostDoc, sites: Mapping[str, str]) -> dict[str, str]:
    """``hostname``, then ``rack`` and ``site`` when the host has them (an empty label is no label to Prometheus)."""
    labels = {"hostname": doc["hostname"]}
    rack = doc.get("rack")
    if rack:
        labels["rack"] = rack
        site = sites.get(rack)
        if site:
            labels["site"] = site
    return labels


def host_families(*, hosts: Iterable[HostDoc], sites: Mapping[str, str]) -> list[FamilyLines]:
    """Every family of the exposition with its sample lines, written from the hosts' documents in one pass.

    1. One family per field of the registry; a value the host never
       reported (absent) or that is not a number (NaN) gives no sample: a
       missing series, never a made-up zero.
    2. The host's state: up, its status as one series per status (1 for the
       current one), reachability, live uplinks, last contact, inventory.
    Families in ``FAMILIES`` order, hosts in the document's (by hostname). A
    host's labels are written once and shared by its lines (``sample_line``
    spelled out inline: 150,000 calls at 10,000 hosts).
    """
    go, zero, one = _go, _go(0), _go(1)
    fields: dict[str, tuple[str, list[str]]] = {key: (sample_name(f), []) for key, f in FIELD_FAMILIES.items()}
    up: list[str] = []
    status: list[str] = []
    reachable: list[str] = []
    uplinks: list[str] = []
    seen: list[str] = []
    info: list[str] = []
    u, st, r, lu, ls, inf = UP.name, STATUS.name, REACHABLE.name, LIVE_UPLINKS.name, LAST_SEEN.name, INFO.name
    for doc in hosts:
        items = host_labels(doc, sites)
        text = labels_text(items)
        for key, value in doc["metrics"].items():
            if value is not None and value == value:  # not absent, not NaN
                name, lines = fields[key]
                lines.append(f"{name}{{{text}}} {go(value)}\n")
        current = doc["status"]
        up.append(f"{u}{{{text}}} {one if current == HostStatus.ONLINE else zero}\n")
        for each in STATUSES:
            status.append(f'{st}{{{text},status="{each}"}} {one if current == each else zero}\n')
        reachable.append(f"{r}{{{text}}} {one if doc['reachable'] else zero}\n")
        uplinks.append(f"{lu}{{{text}}} {go(doc['redundancy'])}\n")
        if doc["lastSeen"]:
            seen.append(f"{ls}{{{text}}} {go(datetime.fromisoformat(doc['lastSeen']).timestamp())}\n")
        facts = {
            "display_name": doc["displayName"],
            "ip": doc["ip"] or "",
            "platform": doc["platform"],
            "agent_version": doc["agentVersion"],
            "virtual": "true" if doc["isVirtual"] else "false",
        }
        info.append(f"{inf}{{{labels_text({**items, **facts})}}} {one}\n")
    return [
        *((FIELD_FAMILIES[key], lines) for key, (_, lines) in fields.items()),
        (UP, up),
        (STATUS, status),
        (REACHABLE, reachable),
        (LIVE_UPLINKS, uplinks),
        (LAST_SEEN, seen),
        (INFO, info),
    ]


# Most samples of the state are 0 or 1: their text once, not per sample.
_GO_TEXT = {0: floatToGoString(0), 1: floatToGoString(1)}


def _go(value: float) -> str:
    """A value as Go writes a float (prometheus_client's ``floatToGoString``), the usual 0 and 1 from a table."""
    text = _GO_TEXT.get(value)
    return text if text is not None else floatToGoString(value)


def families_encode(families: Iterable[FamilyLines], *, openmetrics: bool) -> bytes:
    """The families as Prometheus text 0.0.4, or as OpenMetrics 1.0: byte for byte what prometheus_client writes.

    In the classic format a counter's metadata name ends ``_total`` and no
    unit is given; OpenMetrics names the family without it, escapes quotes
    in help too, gives ``# UNIT`` and ends with ``# EOF``.
    """
    out: list[str] = []
    for family, lines in families:
        name = family.name
        helped = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        if openmetrics:
            helped = helped.replace('"', '\\"')
            out.append(f"# HELP {name} {helped}\n# TYPE {name} {family.kind.value}\n")
            if family.unit:
                out.append(f"# UNIT {name} {family.unit}\n")
        else:
            named = sample_name(family)
            out.append(f"# HELP {named} {helped}\n# TYPE {named} {family.kind.value}\n")
        out.extend(lines)
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode()


def exposition_render(*, accept: str | None, now: datetime | None = None) -> tuple[bytes, str]:
    """The exposition as of ``now`` and its content type: OpenMetrics when ``accept`` asks for it, else text 0.0.4.

    1. Let prometheus_client's ``choose_encoder`` read ``Accept``: its content
       type names the format (and the version the scraper asked for).
    2. Build the twin-state document (the snapshot's reads: hosts with their
       latest values in one query, links, floor positions) and read the
       racks' sites (one query).
    3. Write every family. The garbage collector is held off throughout, as
       for the snapshot: some 200,000 objects at 10,000 hosts, none in a cycle.
    """
    _, content_type = choose_encoder(accept or "")
    with gc_paused():
        state = snapshot_build(now=now)
        families = host_families(hosts=state["hosts"], sites=rack_sites())
        return families_encode(families, openmetrics=content_type.startswith(OPENMETRICS)), content_type

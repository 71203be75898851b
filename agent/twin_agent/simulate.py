"""The fleet simulator: many simulated hosts, each driven through the agent's own code.

Every simulated host is enrolled through the real registration endpoint, gets
its own credential, and sends its samples through the same ``Spool``,
``Uplink`` and ``CommandRunner`` as the real agent: only the collector (a
metric model instead of psutil) and the shell (a canned answer instead of a
process) differ. One process drives thousands of hosts:

- a scheduler thread keeps a heap of when each host's next sample is due,
  spools the sample and hands the host to a worker;
- a few worker threads flush hosts' spools over one shared HTTP pool and run
  the invocations their answers carried (one flush per host at a time).

The fleet stands in a leaf-spine fabric (``fabric_topology``): two ToRs on
top of each rack, each host with one NIC to each (``eth0``, ``eth1``, their
own counters in every sample), every ToR linked to every spine, the spines to
the core. ``manage.py simulate_fleet`` loads it into the server as a topology
file once the hosts are enrolled; ``twin-agent simulate --topology-out FILE``
writes it for ``manage.py topology_import``.

Hosts go silent and come back: "down" (collects nothing, the twin sees it go
stale then offline) or "cut" (keeps collecting into its spool, sends the
backlog when the link returns).
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import math
import os
import random
import resource
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin_agent import __version__
from twin_agent.backoff import Backoff
from twin_agent.collect import sample_bytes
from twin_agent.commands import DEFAULT_ALLOW, CommandRunner, Executor, Outcome
from twin_agent.formats import iso_utc
from twin_agent.logs import logging_setup
from twin_agent.protocol import AgentStopped, EnrollmentRefused, SignedClient, Uplink, host_register, server_wait
from twin_agent.spool import Spool
from twin_agent.state import Credential, state_dir_ensure
from twin_agent.transport import Http, TransportError

HOSTS_PER_RACK = 40
RACK_PITCH_X = 1.2  # metres between rack centres along a row
ROW_PITCH_Z = 3.0  # metres between rows (a hot and a cold aisle)
FIRST_ROW_Z = 3.0  # the core switch stands at the origin, the racks in front of it
RACK_HEIGHT = 2.0  # metres of usable height (42U)
SILENCE_SECONDS = (40.0, 200.0)  # long enough to be seen stale (30 s) and often offline (120 s)
RESTART_SILENCE_SECONDS = 2.0
SIMULATED_PLATFORM = "Linux-x86_64"
# The fabric: two ToRs a rack (each host dual-homed), four spines (the demo), one core.
SPINES = 4
TOR_SIDES = ("a", "b")
NIC_SPEED_MBPS = 10_000
HOST_LINK_GBPS = 10.0
TOR_UPLINK_GBPS = 100.0
SPINE_UPLINK_GBPS = 400.0
CORE_HOSTNAME = "core-switch"  # the server's default TWIN_CORE_HOSTNAME
# Signed one-sample batches one server process stored a second on this machine (bench/results.md,
# "Signed one-sample batches, 200 agents": 168 req/s). A fleet needing more goes stale.
SERVER_BATCHES_PER_SECOND = 168.0
HTTP_TIMEOUT_SECONDS = 30.0

log = logging.getLogger("twin_agent.simulate")


@dataclass(frozen=True)
class Slot:
    """Where a simulated host stands: its name, its rack, its position in metres."""

    hostname: str
    rack: str
    position: dict[str, float]


def fleet_layout(*, hosts: int, racks: int, prefix: str = "sim") -> list[Slot]:
    """Racks on a floor grid (rows along x, aisles along z), hosts stacked bottom to top in each.

    x and z are the rack's place on the floor, y the host's height in it.
    Hosts fill racks evenly, in order: ``sim-r01-h01`` is the bottom of the
    first rack.
    """
    racks = max(1, min(racks, hosts))
    per_rack = math.ceil(hosts / racks)
    columns = math.ceil(math.sqrt(racks))
    slots = []
    for index in range(hosts):
        rack, height = divmod(index, per_rack)
        row, column = divmod(rack, columns)
        y = 0.1 + height * (RACK_HEIGHT - 0.2) / max(1, per_rack - 1)
        slots.append(
            Slot(
                hostname=f"{prefix}-r{rack + 1:02d}-h{height + 1:02d}",
                rack=f"{prefix.upper()}-R{rack + 1:02d}",
                position={
                    "x": round((column - (columns - 1) / 2) * RACK_PITCH_X, 3),
                    "y": round(y, 3),
                    "z": round(FIRST_ROW_Z + row * ROW_PITCH_Z, 3),
                },
            )
        )
    return slots


def tor_name(rack_index: int, side: str, *, prefix: str = "sim") -> str:
    """``sim-r01-tor-a``: rack 1's first top-of-rack switch (rack numbers as in the hostnames)."""
    return f"{prefix}-r{rack_index + 1:02d}-tor-{side}"


def fabric_topology(
    slots: list[Slot], *, spines: int = SPINES, core: str = CORE_HOSTNAME, prefix: str = "sim"
) -> dict[str, Any]:
    """The fleet's leaf-spine fabric as a topology file (docs/operations.md, ``manage.py topology_import``).

    1. The core (no position: it keeps the server's own), ``spines`` spines in
       a row between the core and the first row of racks, two ToRs on top
       of each rack.
    2. Links down the tiers: core → every spine, every spine → every ToR,
       each ToR → each host of its rack (``swpN`` on the ToR, ``eth0`` to
       ToR a and ``eth1`` to ToR b on the host: the interfaces whose
       counters the hosts report).
    """
    racks: dict[str, list[Slot]] = {}
    for slot in slots:
        racks.setdefault(slot.rack, []).append(slot)
    xs = [members[0].position["x"] for members in racks.values()] or [0.0]
    width = max(xs) - min(xs)
    spine_names = [f"{prefix}-spine-{i + 1}" for i in range(spines)]
    switches: list[dict[str, Any]] = [{"name": core, "role": "core"}]
    for i, name in enumerate(spine_names):
        x = (i - (spines - 1) / 2) * (width / max(1, spines - 1) if spines > 1 else 0.0)
        switches.append(
            {
                "name": name,
                "role": "spine",
                "displayName": f"Spine {i + 1}",
                "position": {"x": round(x, 3), "y": RACK_HEIGHT + 1.0, "z": round(FIRST_ROW_Z / 2, 3)},
            }
        )
    links: list[dict[str, Any]] = [
        {"source": core, "target": s, "sourceInterface": f"swp{i + 1}", "capacityGbps": SPINE_UPLINK_GBPS}
        for i, s in enumerate(spine_names)
    ]
    for rack_index, members in enumerate(racks.values()):
        spot = members[0].position
        for side_index, side in enumerate(TOR_SIDES):
            tor = tor_name(rack_index, side, prefix=prefix)
            switches.append(
                {
                    "name": tor,
                    "role": "leaf",
                    "displayName": f"{members[0].rack} ToR {side.upper()}",
                    "position": {"x": spot["x"], "y": RACK_HEIGHT + 0.1 + 0.15 * side_index, "z": spot["z"]},
                }
            )
            links += [
                {
                    "source": spine,
                    "target": tor,
                    "sourceInterface": f"swp{rack_index + 1}",
                    "targetInterface": f"uplink{s + 1}",
                    "capacityGbps": TOR_UPLINK_GBPS,
                }
                for s, spine in enumerate(spine_names)
            ]
            links += [
                {
                    "source": tor,
                    "target": slot.hostname,
                    "sourceInterface": f"swp{h + 1}",
                    "targetInterface": f"eth{side_index}",
                    "capacityGbps": HOST_LINK_GBPS,
                }
                for h, slot in enumerate(members)
            ]
    return {"switches": switches, "links": links}


def _shares(rng: random.Random, nics: int) -> list[float]:
    """Each NIC's share of the host's traffic, summing to 1 (none without NICs)."""
    weights = [rng.uniform(0.6, 1.4) for _ in range(nics)]
    return [w / sum(weights) for w in weights]


def _split(amount: int, shares: list[float]) -> list[int]:
    """``amount`` in whole parts by ``shares``, the last taking the rounding, so the parts sum to it exactly."""
    if not shares:
        return []
    parts = [int(amount * share) for share in shares[:-1]]
    return [*parts, amount - sum(parts)]


class MetricModel:
    """Plausible, smoothly varying metrics of one host.

    CPU load follows a slow wave of its own period and phase plus
    mean-reverting noise (an Ornstein-Uhlenbeck walk), so neighbouring samples
    are close and hosts differ; memory drifts slowly around its own level;
    load average follows CPU times the host's cores; network counters grow at a
    rate that rises with CPU load, so links carry traffic that varies with it.
    Power follows load as servers' does (idle draw plus a share of the
    dynamic range proportional to CPU: ``idle + k * cpu``, SPECpower's
    near-linear curve), and the inlet air sits near the host's own cold-aisle
    level, a little warmer as the rack works harder (recirculation).
    With ``nics`` (the fabric's two), each NIC has its own counters: a
    host's traffic is split between them at its own ratio (bonding is rarely
    even), and the host's totals are their sums.
    """

    def __init__(self, rng: random.Random, *, now: float, nics: int = 0, mac_base: int = 0) -> None:
        self.rng = rng
        self.cpu_base = rng.uniform(10, 55)
        self.cpu_wave = rng.uniform(5, 30)
        self.period = rng.uniform(300, 1800)
        self.phase = rng.uniform(0, 2 * math.pi)
        self.noise = 0.0
        self.memory_level = rng.uniform(25, 80)
        self.memory = self.memory_level
        self.cores = rng.choice((8, 16, 32, 64))
        self.boot = now - rng.uniform(3_600, 90 * 86_400)
        self.net_rate = rng.uniform(20e6, 500e6)  # bytes a second at full load, both ways
        self.tx = rng.randrange(10**9, 10**12)
        self.rx = rng.randrange(10**9, 10**12)
        self.idle_watts = rng.uniform(80, 180)
        self.watts_per_percent = rng.uniform(1.5, 4.5)  # k: 150 to 450 W between idle and full load
        self.inlet_level = rng.uniform(19.0, 25.0)
        self.inlet = self.inlet_level
        self.last = now
        self.nic_shares = _shares(rng, nics)
        self.nic_tx = _split(self.tx, self.nic_shares)
        self.nic_rx = _split(self.rx, self.nic_shares)
        # Locally administered (02:…), unique per host index and NIC.
        self.macs = [
            "02:" + ":".join(f"{b:02x}" for b in ((mac_base << 8) | n).to_bytes(5, "big")) for n in range(nics)
        ]

    def sample(self, *, hostname: str, now: float) -> dict[str, Any]:
        rng = self.rng
        dt = min(max(now - self.last, 0.001), 600.0)
        self.last = now
        self.noise += -self.noise * min(1.0, dt / 60) + rng.gauss(0, 2.5) * math.sqrt(dt / 10)
        wave = math.sin(2 * math.pi * now / self.period + self.phase)
        cpu = min(99.5, max(0.5, self.cpu_base + self.cpu_wave * wave + self.noise))
        self.memory += (self.memory_level - self.memory) * min(1.0, dt / 600) + rng.gauss(0, 0.4) * math.sqrt(dt / 10)
        self.memory = min(97.0, max(5.0, self.memory))
        rate = self.net_rate * (0.2 + cpu / 100)
        sent, received = int(rate * 0.55 * dt), int(rate * 0.45 * dt)
        self.tx += sent
        self.rx += received
        if self.nic_shares:
            self.nic_tx = [a + b for a, b in zip(self.nic_tx, _split(sent, self.nic_shares), strict=True)]
            self.nic_rx = [a + b for a, b in zip(self.nic_rx, _split(received, self.nic_shares), strict=True)]
        watts = self.idle_watts + self.watts_per_percent * cpu + rng.gauss(0, 3)
        # The inlet moves slowly towards its level plus the load's share: air takes minutes to warm.
        target = self.inlet_level + 1.5 * cpu / 100
        self.inlet += (target - self.inlet) * min(1.0, dt / 300) + rng.gauss(0, 0.05) * math.sqrt(dt / 10)
        return {
            "hostname": hostname,
            "timestamp": iso_utc(datetime.fromtimestamp(now, UTC)),
            "cpu_load": round(cpu, 2),
            "memory_used_percent": round(self.memory, 2),
            "load_average": round(self.cores * cpu / 100 * rng.uniform(0.9, 1.1), 2),
            "uptime_seconds": round(now - self.boot, 1),
            "agent_version": __version__,
            "platform": SIMULATED_PLATFORM,
            "net_bytes_tx": self.tx,
            "net_bytes_rx": self.rx,
            "power_watts": round(max(0.0, watts), 1),
            "inlet_temp_celsius": round(self.inlet, 2),
            **({"interfaces": self._interfaces()} if self.nic_shares else {}),
        }

    def _interfaces(self) -> list[dict[str, Any]]:
        return [
            {"name": f"eth{n}", "rx_bytes": rx, "tx_bytes": tx, "speed_mbps": NIC_SPEED_MBPS, "mac": mac}
            for n, (rx, tx, mac) in enumerate(zip(self.nic_rx, self.nic_tx, self.macs, strict=True))
        ]


class SimulatedExecutor(Executor):
    """The agent's executor, with a shell that answers without running anything on this machine."""

    def shell(self, command: str, *, timeout: float) -> Outcome:
        host = self.host
        assert isinstance(host, SimHost)
        return Outcome.ok(output=f"[simulated on {host.slot.hostname}] $ {command}\n")


@dataclass
class SimHost:
    """One simulated host: its place, metric model, schedule, silence, and the agent's objects."""

    index: int
    slot: Slot
    model: MetricModel
    interval: float
    fleet: Fleet
    uplink: Uplink | None = None
    runner: CommandRunner | None = None
    busy: bool = False
    refused: bool = False
    silent: str | None = None  # "down" or "cut"
    silent_until: float = 0.0
    last_ack: float = 0.0

    # twin_agent.commands.HostActions
    def collect_now(self) -> int:
        sample_id = self.fleet.sample_add(self, time.time())
        assert self.uplink is not None
        report = self.uplink.flush(force=True)
        sequence = report.sequence_of(sample_id)
        if sequence is None:
            raise RuntimeError(f"the server did not acknowledge the sample: {report.failure or 'no answer'}")
        return sequence

    def set_interval(self, seconds: int) -> None:
        self.interval = float(seconds)

    def restart(self) -> None:
        """A restarted agent: silent a moment, then a new session (its pending batch keeps its old one)."""
        assert self.uplink is not None
        self.uplink.session = uuid.uuid4().hex
        self.silent, self.silent_until = "down", time.monotonic() + RESTART_SILENCE_SECONDS


@dataclass
class FleetStats:
    """Counts since the start, for the progress line and the summary."""

    enrolled: int = 0
    batches: int = 0
    samples: int = 0
    errors: int = 0
    refused: int = 0
    commands: int = 0
    started: float = field(default_factory=time.monotonic)
    cpu_started: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Fleet:
    """Enrolls and drives simulated hosts against one twin."""

    def __init__(
        self,
        *,
        server: str,
        hosts: int,
        interval: float,
        racks: int | None = None,
        state_dir: Path,
        workers: int = 16,
        silence: float = 0.02,
        allow: tuple[str, ...] = DEFAULT_ALLOW,
        prefix: str = "sim",
        seed: int = 1,
        spool_max_samples: int = 1_000,
        progress: Callable[[str], None] | None = None,
        progress_every: float = 1.0,
        fabric: bool = True,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.interval = interval
        self.prefix = prefix
        self.fabric = fabric
        self.say = say or progress or (lambda line: None)
        self.silence = silence
        self.allow = allow
        self.workers = workers
        self.progress = progress
        self.progress_every = progress_every
        self.http = Http(server, pool_size=workers + 2, timeout=HTTP_TIMEOUT_SECONDS)
        self.spool = Spool(state_dir_ensure(state_dir) / "spool.sqlite3", max_samples=spool_max_samples, durable=False)
        self.host_log = logging.getLogger("twin_agent.simulate.hosts")
        self.stats = FleetStats()
        self.stopping = threading.Event()
        self.dropping = threading.Event()  # a second Ctrl-C: leave the queue in the spool
        self.rng = random.Random(seed)
        now = time.time()
        layout = fleet_layout(hosts=hosts, racks=racks or math.ceil(hosts / HOSTS_PER_RACK), prefix=prefix)
        self.hosts = [
            SimHost(
                index=i,
                slot=slot,
                model=MetricModel(
                    random.Random(seed * 1_000_003 + i), now=now, nics=len(TOR_SIDES) if fabric else 0, mac_base=i
                ),
                interval=interval,
                fleet=self,
            )
            for i, slot in enumerate(layout)
        ]
        # Chance per sample that a host falls silent, so that about ``silence`` of the fleet is silent at a time.
        mean_silence = sum(SILENCE_SECONDS) / 2
        self._silence_chance = silence * interval / mean_silence / max(1e-9, 1 - silence) if silence > 0 else 0.0

    def topology(self, *, core: str = CORE_HOSTNAME, spines: int = SPINES) -> dict[str, Any]:
        """The fleet's leaf-spine fabric as a topology file (``fabric_topology``)."""
        return fabric_topology([h.slot for h in self.hosts], spines=spines, core=core, prefix=self.prefix)

    # --- enrollment ------------------------------------------------------------------------

    def spool_orphans_drop(self) -> int:
        """Drop what an earlier run with other hosts left in the spool: no host here will send it."""
        ours = {host.slot.hostname for host in self.hosts}
        return sum(self.spool.stream_drop(stream) for stream in self.spool.streams() - ours)

    def enroll(self, *, enrollment_key: str) -> None:
        """Register every host through ``POST /api/hosts/register``, a few at a time."""

        def one(host: SimHost) -> None:
            backoff = Backoff(base=0.5, cap=10)
            for _ in range(8):
                if self.stopping.is_set():
                    return
                try:
                    credential = host_register(
                        http=self.http,
                        enrollment_key=enrollment_key,
                        hostname=host.slot.hostname,
                        platform=SIMULATED_PLATFORM,
                        agent_version=__version__,
                        display_name=host.slot.hostname.replace("-", " ").title(),
                        rack=host.slot.rack,
                        position=host.slot.position,
                    )
                except TransportError as exc:
                    why = str(exc)
                except EnrollmentRefused as exc:
                    if not exc.code.startswith("http_5"):
                        raise
                    why = str(exc)
                else:
                    self._attach(host, credential)
                    self.stats.add(enrolled=1)
                    return
                time.sleep(backoff.next_delay())
            raise TransportError(f"could not enroll {host.slot.hostname}: {why}")

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sim-enroll") as pool:
            for future in [pool.submit(one, host) for host in self.hosts]:
                future.result()

    def _attach(self, host: SimHost, credential: Credential) -> None:
        client = SignedClient(http=self.http, credential=credential)
        host.runner = CommandRunner(
            client=client,
            spool=self.spool,
            executor=SimulatedExecutor(host=host),
            allow=self.allow,
            log=self.host_log,
            on_restart=host.restart,
        )
        host.uplink = Uplink(
            client=client,
            spool=self.spool,
            session=uuid.uuid4().hex,
            backoff=Backoff(cap=60),
            log=self.host_log,
            on_invocations=host.runner.offer,
        )

    # --- running ---------------------------------------------------------------------------

    def sample_add(self, host: SimHost, now: float) -> int:
        sample = host.model.sample(hostname=host.slot.hostname, now=now)
        sample_id, _ = self.spool.add(stream=host.slot.hostname, sample=sample_bytes(sample))
        return sample_id

    def run(self, *, duration: float | None = None, drain_seconds: float = 10.0) -> FleetStats:
        """Drive the fleet until ``duration`` ends or ``stop()``; then send what waits, for up to ``drain_seconds``."""
        self.stats.started, self.stats.cpu_started = time.monotonic(), cpu_seconds()
        start = time.monotonic()
        deadline = start + duration if duration else math.inf
        schedule = [(start + self.rng.uniform(0, host.interval), host.index) for host in self.hosts]
        heapq.heapify(schedule)
        next_progress = start + self.progress_every
        last_batches, last_progress = 0, start
        behind_said = False
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sim-flush") as pool:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                if now >= next_progress:
                    rate = (self.stats.batches - last_batches) / (now - last_progress)
                    last_batches, last_progress = self.stats.batches, now
                    if self.progress:
                        self.progress(self.progress_line(rate=rate))
                    if not behind_said and now - start >= 3 * self.interval and self._falling_behind():
                        behind_said = True
                        self.say(self._behind_line(start))
                    next_progress = now + self.progress_every
                due, index = schedule[0]
                if due > now:
                    self.stopping.wait(min(due, next_progress, deadline) - now)
                    continue
                host = self.hosts[index]
                self._tick(host, now, pool)
                heapq.heapreplace(schedule, (max(due + host.interval, now), index))
            self._drain_all(pool, drain_seconds)
        if self.progress:
            self.progress(self.progress_line(rate=None))
        return self.stats

    def _falling_behind(self) -> bool:
        """More than one sample a host waits in the spool: the server stores less than the fleet sends."""
        return self.spool.depth() > len(self.hosts)

    def _behind_line(self, start: float) -> str:
        measured = self.stats.samples / max(time.monotonic() - start, 1e-9)
        needed = batches_needed(hosts=len(self.hosts), interval=self.interval)
        return (
            f"warning: the server stored {measured:.0f} samples/s, the fleet sends {needed:.0f}: "
            f"{self.spool.depth()} samples queue up and hosts go stale; "
            f"--interval {interval_fitting(hosts=len(self.hosts), capacity=max(measured, 1.0)):g} fits that rate"
        )

    def stop(self, *_: object) -> None:
        """Ctrl-C (or SIGTERM): stop sampling and send what waits; a second one drops the queue instead."""
        if self.stopping.is_set():
            self.dropping.set()
        self.stopping.set()

    def _drain_all(self, pool: ThreadPoolExecutor, drain_seconds: float) -> None:
        """Send what the hosts' spools hold, for up to ``drain_seconds``, saying so; a second Ctrl-C ends it.

        A host's flush goes a batch at a time and checks the clock and the
        drop between batches, so the bound is ``drain_seconds`` plus the
        requests in flight (each within the HTTP timeout). What is not sent
        stays in the spool (on disk) and goes with the next run.
        """
        hosts = [
            h
            for h in self.hosts
            if h.uplink is not None and not h.refused and h.silent != "cut" and self.spool.depth(h.slot.hostname)
        ]
        if not hosts:
            left = self.spool.depth()
            self.say(
                "stopping: nothing queued" + (f"; {left} samples of cut-off hosts stay in the spool" if left else "")
            )
            return
        started = time.monotonic()
        until = started + drain_seconds
        pending: set = set()
        if not self.dropping.is_set():
            self.say(
                f"stopping: flushing {len(hosts)} hosts' queued batches ({self.spool.depth()} samples), for at most "
                f"{drain_seconds:g} s (plus a request in flight, {HTTP_TIMEOUT_SECONDS:g} s at worst); "
                "Ctrl-C again to drop them"
            )
            pending = {pool.submit(self._drain, host, until) for host in hosts}
        while pending and not self.dropping.is_set():
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        left = self.spool.depth()
        if self.dropping.is_set():
            for future in pending:
                future.cancel()
            in_flight = sum(1 for future in pending if future.running())
            self.say(
                f"dropping the queue: {left} samples stay in the spool for the next run"
                + (f"; waiting for {in_flight} requests in flight" if in_flight else "")
            )
            return
        took = time.monotonic() - started
        self.say(
            f"stopped flushing at the bound, after {took:.1f} s: {left} samples stay in the spool for the next run"
            if left
            else f"flushed in {took:.1f} s"
        )

    def _tick(self, host: SimHost, now: float, pool: ThreadPoolExecutor) -> None:
        """One due sample: silence starts or ends, the sample is spooled, the host is handed to a worker."""
        if host.refused or host.uplink is None:
            return
        if host.silent and now >= host.silent_until:
            host.silent = None
        elif not host.silent and self._silence_chance and self.rng.random() < self._silence_chance:
            host.silent = self.rng.choice(("down", "cut"))
            host.silent_until = now + self.rng.uniform(*SILENCE_SECONDS)
        if host.silent == "down":
            return
        self.sample_add(host, time.time())
        if host.silent == "cut" or host.busy:
            return  # a busy host's worker, or the next due sample, sends this one too
        host.busy = True
        pool.submit(self._flush, host)

    def _flush(self, host: SimHost) -> None:
        assert host.uplink is not None and host.runner is not None
        if self.stopping.is_set():
            host.busy = False  # the drain sends it, within its bound (hand-offs queued before the stop wait here)
            return
        try:
            report = host.uplink.flush()
            self.stats.add(batches=report.batches, samples=report.samples, errors=1 if report.failure else 0)
            if report.batches:
                host.last_ack = time.monotonic()
            if host.runner.has_work():
                self.stats.add(commands=host.runner.run_queued())
        except AgentStopped:
            host.refused = True
            self.stats.add(refused=1)
        except Exception:
            log.exception("simulated host %s failed", host.slot.hostname)
            self.stats.add(errors=1)
        finally:
            host.busy = False

    def _drain(self, host: SimHost, until: float) -> None:
        """Send a host's queue a batch at a time until it is empty, the time is up, a try fails, or a drop."""
        assert host.uplink is not None
        try:
            while time.monotonic() < until and not self.dropping.is_set() and self.spool.depth(host.slot.hostname):
                report = host.uplink.flush(force=True, max_batches=1)
                self.stats.add(batches=report.batches, samples=report.samples)
                if not report.batches:
                    return
        except AgentStopped:
            pass

    def online(self) -> int:
        """Hosts that are not silent and had a batch acknowledged within three intervals."""
        now = time.monotonic()
        return sum(
            1
            for h in self.hosts
            if not h.silent and not h.refused and h.last_ack and now - h.last_ack <= 3 * h.interval + 1
        )

    def progress_line(self, *, rate: float | None) -> str:
        stats = self.stats
        elapsed = time.monotonic() - stats.started
        cpu = (cpu_seconds() - stats.cpu_started) / elapsed * 100 if elapsed > 0 else 0.0
        silent = sum(1 for h in self.hosts if h.silent)
        rate_text = (
            f"{rate:6.1f} batches/s" if rate is not None else f"{stats.batches / max(elapsed, 1e-9):6.1f} batches/s avg"
        )
        return (
            f"fleet {self.online():5d}/{len(self.hosts)} online, {silent} silent | {rate_text} | "
            f"{stats.samples} samples | errors {stats.errors} | refused {stats.refused} | "
            f"spool {self.spool.depth()} | commands {stats.commands} | cpu {cpu:4.1f}% | {elapsed:5.0f} s"
        )

    def close(self) -> None:
        self.spool.close()
        self.http.close()


# --- how big a fleet one server carries ----------------------------------------------------------

# The share of the measured capacity a fleet may use: the server also answers the dashboard and its jobs.
CAPACITY_HEADROOM = 0.8
DEMO_INTERVAL_MIN = 10.0


def batches_needed(*, hosts: int, interval: float) -> float:
    """Signed batches a second the fleet sends when every host sends each sample as it comes."""
    return hosts / interval


def interval_fitting(*, hosts: int, capacity: float = SERVER_BATCHES_PER_SECOND) -> float:
    """The shortest interval (whole 5 s steps, at least 10 s) at which ``hosts`` stay within the capacity's headroom."""
    needed = hosts / (capacity * CAPACITY_HEADROOM)
    return max(DEMO_INTERVAL_MIN, math.ceil(needed / 5) * 5.0)


def capacity_warning(*, hosts: int, interval: float, capacity: float = SERVER_BATCHES_PER_SECOND) -> str | None:
    """What to tell the operator when the fleet needs more batches a second than one server process stores."""
    needed = batches_needed(hosts=hosts, interval=interval)
    if needed <= capacity:
        return None
    fitting = interval_fitting(hosts=hosts, capacity=capacity)
    stale = f" (with the server's TWIN_STALE_AFTER_SECONDS at {3 * fitting:g}: three intervals)" if fitting > 10 else ""
    return (
        f"warning: {hosts} hosts at one sample every {interval:g} s send {needed:.0f} signed batches/s; "
        f"one server process on this machine stored {capacity:g} a second (bench/results.md), so most hosts "
        f"would go stale. --interval {fitting:g} fits{stale}, or run fewer hosts"
    )


def demo_plan(*, hosts: int, interval: str, capacity: float = SERVER_BATCHES_PER_SECOND) -> tuple[float, float, float]:
    """``make demo``'s interval and the server's stale and offline limits for it: (interval, stale, offline).

    ``interval`` is ``auto`` (the shortest that fits, ``interval_fitting``)
    or seconds. A host is stale after three missed intervals and offline
    after twelve, never sooner than the server's defaults (30 s, 120 s), so a
    slow fleet is not drawn stale between its samples.
    """
    seconds = interval_fitting(hosts=hosts, capacity=capacity) if interval == "auto" else float(interval)
    return seconds, max(30.0, 3 * seconds), max(120.0, 12 * seconds)


# --- command line (twin-agent simulate, and manage.py simulate_fleet) --------------------------


def simulate_arguments(parser: argparse.ArgumentParser, *, enrollment_key: bool = True) -> None:
    """The simulator's options; ``manage.py simulate_fleet`` makes its own key, so it has no ``--enrollment-key``."""
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="the twin's base URL")
    if enrollment_key:
        parser.add_argument(
            "--enrollment-key",
            default=os.environ.get("TWIN_ENROLLMENT_KEY"),
            help="a key allowing at least --hosts registrations (or TWIN_ENROLLMENT_KEY)",
        )
    parser.add_argument("--hosts", type=int, default=100, help="simulated hosts (default 100)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between a host's samples (default 10)")
    parser.add_argument("--racks", type=int, help=f"racks (default: one per {HOSTS_PER_RACK} hosts)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--state-dir", type=Path, default=Path("var/simulator"), help="the simulator's spool")
    parser.add_argument("--workers", type=int, default=16, help="concurrent requests (default 16)")
    parser.add_argument(
        "--silence", type=float, default=0.02, help="share of hosts silent at any time (default 0.02; 0 for none)"
    )
    parser.add_argument(
        "--allow", default=",".join(DEFAULT_ALLOW), help="actions simulated hosts run (shell is only ever simulated)"
    )
    parser.add_argument("--prefix", default="sim", help="hostnames are <prefix>-rNN-hNN (default sim)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server to answer")
    parser.add_argument("--progress-every", type=float, default=None, help="seconds between progress lines")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--no-fabric",
        dest="fabric",
        action="store_false",
        help="no leaf-spine fabric: hosts keep their uplink to the core and report no per-interface counters",
    )
    parser.add_argument("--spines", type=int, default=SPINES, help=f"spine switches of the fabric (default {SPINES})")
    parser.add_argument("--core", default=None, help=f"the core switch's name (default: the server's, {CORE_HOSTNAME})")
    parser.add_argument(
        "--server-capacity",
        type=float,
        default=SERVER_BATCHES_PER_SECOND,
        help="signed batches/s the server stores, for the too-big-fleet warning "
        f"(default {SERVER_BATCHES_PER_SECOND:g}, measured on this machine: bench/results.md)",
    )
    if enrollment_key:
        parser.add_argument(
            "--topology-out",
            type=Path,
            help="write the fleet's fabric as a topology file here (load it with manage.py topology_import FILE)",
        )


def simulate_check(options: dict[str, Any]) -> str | None:
    """Why these options cannot run, or None."""
    if options["hosts"] < 1:
        return "--hosts must be at least 1"
    if not 0.1 <= options["interval"] <= 3600:
        return "--interval must be from 0.1 to 3600 seconds"
    if options["racks"] is not None and options["racks"] < 1:
        return "--racks must be at least 1"
    if not 0 <= options["silence"] < 1:
        return "--silence must be from 0 to below 1"
    if options["workers"] < 1:
        return "--workers must be at least 1"
    if not 1 <= options.get("spines", SPINES) <= 64:
        return "--spines must be from 1 to 64"
    if not options["prefix"].isascii() or not options["prefix"].replace("-", "").isalnum():
        return "--prefix must be ASCII letters, digits and hyphens"
    return None


def simulate_run(
    options: dict[str, Any],
    *,
    enrollment_key: str,
    out: Callable[[str], None],
    progress: Callable[[str], None] | None = None,
    live: bool = False,
    topology_load: Callable[[dict[str, Any]], str] | None = None,
) -> FleetStats:
    """Wait for the server, enroll the fleet, give it its fabric, drive it.

    ``out`` receives messages and the summary, ``progress`` the progress line:
    every second when ``live`` (a terminal, where it redraws one line), every
    ten seconds otherwise (a log). ``topology_load`` stores the fabric's
    topology file on the server once the hosts exist (``manage.py
    simulate_fleet`` has the database) and answers what it did; without it
    the file is written to ``--topology-out`` if given.
    """
    warning = capacity_warning(
        hosts=options["hosts"],
        interval=options["interval"],
        capacity=options.get("server_capacity") or SERVER_BATCHES_PER_SECOND,
    )
    if warning:
        out(warning)
    every = options.get("progress_every") or (1.0 if live else 10.0)
    fleet = Fleet(
        server=options["server"],
        hosts=options["hosts"],
        interval=options["interval"],
        racks=options["racks"],
        state_dir=options["state_dir"],
        workers=options["workers"],
        silence=options["silence"],
        allow=tuple(a.strip() for a in options["allow"].split(",") if a.strip()),
        prefix=options["prefix"].lower(),
        seed=options["seed"],
        progress=progress or out,
        progress_every=every,
        fabric=options.get("fabric", True),
        say=out,
    )
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, fleet.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not server_wait(http=fleet.http, timeout=options["wait"]):
            raise TransportError(f"{options['server']} did not answer /api/health within {options['wait']:g} s")
        orphans = fleet.spool_orphans_drop()
        if orphans:
            out(f"dropped {orphans} samples an earlier run left for hosts not in this fleet")
        started = time.monotonic()
        fleet.enroll(enrollment_key=enrollment_key)
        out(f"enrolled {fleet.stats.enrolled} hosts in {time.monotonic() - started:.1f} s; running")
        if fleet.fabric and not fleet.stopping.is_set():
            topology = fleet.topology(core=options.get("core") or CORE_HOSTNAME, spines=options.get("spines", SPINES))
            if topology_load is not None:
                out(topology_load(topology))
            elif options.get("topology_out"):
                options["topology_out"].write_bytes(json.dumps(topology, indent=1).encode())
                out(f"the fabric's topology: {options['topology_out']} (load it with manage.py topology_import FILE)")
        stats = fleet.run(duration=options["duration"])
        elapsed = time.monotonic() - stats.started
        cpu = (cpu_seconds() - stats.cpu_started) / max(elapsed, 1e-9) * 100
        out(
            f"done: {len(fleet.hosts)} hosts, {stats.batches} batches, {stats.samples} samples in {elapsed:.0f} s; "
            f"errors {stats.errors}, refused {stats.refused}, commands {stats.commands}, "
            f"{fleet.spool.depth()} samples left in the spool; simulator CPU {cpu:.1f}% of a core"
        )
        return stats
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        fleet.close()


def simulate_main(args: argparse.Namespace) -> int:
    """``twin-agent simulate``."""
    options = vars(args)
    logging_setup(fmt=args.log_format, level="warning")
    problem = simulate_check(options) or (
        None if args.enrollment_key else "give --enrollment-key (or TWIN_ENROLLMENT_KEY)"
    )
    if problem:
        print(f"twin-agent simulate: {problem}", file=sys.stderr)
        return 1

    live = sys.stderr.isatty()

    def out(line: str) -> None:
        print(("\r\033[K" if live else "") + line, file=sys.stderr, flush=True)

    def progress(line: str) -> None:
        if live:
            print("\r\033[K" + line, end="", file=sys.stderr, flush=True)
        else:
            out(line)

    try:
        stats = simulate_run(options, enrollment_key=args.enrollment_key, out=out, progress=progress, live=live)
    except (TransportError, EnrollmentRefused) as exc:
        print(f"twin-agent simulate: {exc}", file=sys.stderr)
        return 1
    return 0 if stats.refused == 0 else 2

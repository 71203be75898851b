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

Hosts go silent and come back: "down" (collects nothing, the twin sees it go
stale then offline) or "cut" (keeps collecting into its spool, sends the
backlog when the link returns).
"""

from __future__ import annotations

import argparse
import heapq
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
from concurrent.futures import ThreadPoolExecutor
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
    """

    def __init__(self, rng: random.Random, *, now: float) -> None:
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
        self.tx += int(rate * 0.55 * dt)
        self.rx += int(rate * 0.45 * dt)
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
        }


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
    ) -> None:
        self.interval = interval
        self.silence = silence
        self.allow = allow
        self.workers = workers
        self.progress = progress
        self.progress_every = progress_every
        self.http = Http(server, pool_size=workers + 2, timeout=30)
        self.spool = Spool(state_dir_ensure(state_dir) / "spool.sqlite3", max_samples=spool_max_samples, durable=False)
        self.host_log = logging.getLogger("twin_agent.simulate.hosts")
        self.stats = FleetStats()
        self.stopping = threading.Event()
        self.rng = random.Random(seed)
        now = time.time()
        layout = fleet_layout(hosts=hosts, racks=racks or math.ceil(hosts / HOSTS_PER_RACK), prefix=prefix)
        self.hosts = [
            SimHost(
                index=i,
                slot=slot,
                model=MetricModel(random.Random(seed * 1_000_003 + i), now=now),
                interval=interval,
                fleet=self,
            )
            for i, slot in enumerate(layout)
        ]
        # Chance per sample that a host falls silent, so that about ``silence`` of the fleet is silent at a time.
        mean_silence = sum(SILENCE_SECONDS) / 2
        self._silence_chance = silence * interval / mean_silence / max(1e-9, 1 - silence) if silence > 0 else 0.0

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
                    next_progress = now + self.progress_every
                due, index = schedule[0]
                if due > now:
                    self.stopping.wait(min(due, next_progress, deadline) - now)
                    continue
                host = self.hosts[index]
                self._tick(host, now, pool)
                heapq.heapreplace(schedule, (max(due + host.interval, now), index))
            drain_end = time.monotonic() + drain_seconds
            for host in self.hosts:
                if host.uplink is not None and not host.refused and host.silent != "cut":
                    pool.submit(self._drain, host, drain_end)
        if self.progress:
            self.progress(self.progress_line(rate=None))
        return self.stats

    def stop(self, *_: object) -> None:
        self.stopping.set()

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
        assert host.uplink is not None
        if time.monotonic() >= until or not self.spool.depth(host.slot.hostname):
            return
        try:
            report = host.uplink.flush(force=True)
            self.stats.add(batches=report.batches, samples=report.samples)
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
) -> FleetStats:
    """Wait for the server, enroll the fleet, drive it.

    ``out`` receives messages and the summary, ``progress`` the progress line:
    every second when ``live`` (a terminal, where it redraws one line), every
    ten seconds otherwise (a log).
    """
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

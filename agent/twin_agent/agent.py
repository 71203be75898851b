"""The agent's process: collect on a schedule, send from the spool, run commands.

Four threads share one spool:

- the main thread collects a sample every interval into the spool (and
  handles SIGTERM/SIGINT);
- the sender flushes the spool through the ``Uplink`` when a sample arrives,
  or when its backoff ends; it is the only thread that sends, so a sample is
  numbered into one batch and sent once (``collect-now`` spools its sample,
  asks the sender for a send at once and waits for that sample's
  acknowledgement; a second sender racing the first would find the sample
  already gone and report it unacknowledged);
- the command worker runs invocations one at a time and posts their results;
- the poller holds the commands long poll open (a daemon: it may be mid-wait
  when the agent exits).

On SIGTERM the collector stops, the sender makes one last attempt to flush,
and the process exits 0. ``restart-agent`` does the same, then replaces the
process with a fresh one (``exec``, so systemd sees the same service).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from types import FrameType

from twin_agent import __version__
from twin_agent.answers import interval_bound
from twin_agent.backoff import Backoff
from twin_agent.collect import Collector, sample_bytes
from twin_agent.commands import CommandRunner, Executor
from twin_agent.config import Config
from twin_agent.lldp import Lldp
from twin_agent.logs import text_safe
from twin_agent.power import Sensors
from twin_agent.protocol import AgentStopped, SignedClient, Uplink
from twin_agent.spool import Batch, Spool
from twin_agent.state import SPOOL_FILE, Credential, state_dir_ensure
from twin_agent.transport import Http

EXIT_OK = 0
EXIT_CREDENTIAL_REFUSED = 2  # systemd: RestartPreventExitStatus=2, restarting cannot help
INTERVAL_META = "interval"
DROP_LOG_EVERY_SECONDS = 60.0
LONG_POLL_WAIT_SECONDS = 25
UNSUPPORTED_POLL_PAUSE_SECONDS = 300.0
RESULT_RETRY_SECONDS = 30.0
# A long poll answered sooner than this waits out the rest before the next: a server that answers
# at once, every time, costs one request a second, not a busy loop.
POLL_MIN_SECONDS = 1.0
# How long collect-now waits for the sender to have its sample acknowledged (a spool full of
# batches from an outage goes first); the server's default command timeout is 60 s too.
COLLECT_NOW_WAIT_SECONDS = 60.0


class Delivery:
    """A sample a command waits for: the sender sets its batch's sequence, or why it was not sent."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.sequence: int | None = None
        self.failure: str | None = None

    def settle(self, *, sequence: int | None = None, failure: str | None = None) -> None:
        self.sequence, self.failure = sequence, failure
        self.done.set()


class Agent:
    """One host's agent: its collector, spool, uplink and command runner, and the threads that drive them."""

    def __init__(self, *, config: Config, credential: Credential, log: logging.Logger | None = None) -> None:
        self.config = config
        self.credential = credential
        self.log = log or logging.getLogger("twin_agent")
        self.stream = credential.hostname
        state_dir_ensure(config.state_dir)
        self.spool = Spool(config.state_dir / SPOOL_FILE, max_samples=config.spool_max_samples, durable=True)
        self.http = Http(
            config.server or credential.server, timeout=config.request_timeout, pool_size=3, ca_file=config.ca_file
        )
        self.client = SignedClient(http=self.http, credential=credential)
        self.session = uuid.uuid4().hex
        self.uplink = Uplink(
            client=self.client,
            spool=self.spool,
            session=self.session,
            batch_max_samples=config.batch_max_samples,
            backoff=Backoff(cap=config.backoff_max),
            log=self.log,
            on_invocations=self._invocations_received,
            on_acknowledged=self._deliveries_acknowledged,
            state_dir=str(config.state_dir),
        )
        self.collector = Collector(
            hostname=credential.hostname,
            rack=config.rack,
            position=config.position,
            sensors=Sensors(log=self.log),
            lldp=Lldp(log=self.log),
        )
        self.runner = CommandRunner(
            client=self.client,
            spool=self.spool,
            executor=Executor(host=self, shell_timeout_max=config.shell_timeout_max),
            allow=config.allow,
            log=self.log,
            on_restart=self.restart,
        )
        self.interval = self._interval_initial()
        self.stopping = threading.Event()
        self.restart_requested = False
        self.exit_code = EXIT_OK
        self._schedule_changed = threading.Event()
        self._sample_waiting = threading.Event()
        self._commands_waiting = threading.Event()
        self._last_drop_log = 0.0
        # Samples commands wait for, by spool id; the lock makes "spool it, then wait for it" one step
        # as the sender sees it, so the sender never takes a sample before its waiter exists.
        self._deliveries: dict[int, Delivery] = {}
        self._deliveries_lock = threading.Lock()
        self._sender_running = False

    # --- what commands may do (twin_agent.commands.HostActions) -------------------------

    def collect_now(self) -> int:
        """Collect a sample, have it sent at once (backoff or not) and return the sequence of its batch.

        While the send loop runs, it alone sends: this spools the sample with a
        waiter, wakes the sender, and waits for the acknowledgement of that
        sample (whichever flush carried it). Without a send loop (the agent is
        not running, as in a test), the caller is the only sender and flushes.
        """
        delivery: Delivery | None = None
        with self._deliveries_lock:
            sample_id = self.collect_once()
            if self._sender_running:
                delivery = self._deliveries[sample_id] = Delivery()
        if delivery is None:
            report = self.uplink.flush(force=True)
            sequence = report.sequence_of(sample_id)
            if sequence is not None:
                return sequence
            raise RuntimeError(f"the server did not acknowledge the sample: {report.failure or 'no answer'}")
        self._sample_waiting.set()
        if not delivery.done.wait(timeout=COLLECT_NOW_WAIT_SECONDS):
            with self._deliveries_lock:
                self._deliveries.pop(sample_id, None)
            why = self.uplink.last_error or "no answer"
            raise RuntimeError(
                f"the server did not acknowledge the sample within {COLLECT_NOW_WAIT_SECONDS:g} s: {why}"
            )
        if delivery.sequence is None:
            raise RuntimeError(f"the server did not acknowledge the sample: {delivery.failure}")
        return delivery.sequence

    def _deliveries_acknowledged(self, batch: Batch) -> None:
        """The uplink's hook: settle the waiters of the samples ``batch`` carried."""
        with self._deliveries_lock:
            for sample_id in [i for i in self._deliveries if batch.first_id <= i <= batch.last_id]:
                self._deliveries.pop(sample_id).settle(sequence=batch.sequence)

    def _deliveries_fail(self, sample_ids: set[int] | None, why: str) -> None:
        """Settle the waiters of ``sample_ids`` (all when None) still waiting, with ``why``."""
        with self._deliveries_lock:
            for sample_id in set(self._deliveries) if sample_ids is None else sample_ids & self._deliveries.keys():
                self._deliveries.pop(sample_id).settle(failure=why)

    def set_interval(self, seconds: int) -> None:
        """Change the interval now and keep it across restarts (until the host is enrolled again)."""
        self.interval = float(seconds)
        self.spool.meta_set(
            self.stream, INTERVAL_META, json.dumps({"keyId": self.credential.key_id, "seconds": seconds})
        )
        self.log.info("collection interval set to %s s by a command", seconds)
        self._schedule_changed.set()

    def restart(self) -> None:
        self.log.info("restarting at the server's request")
        self.restart_requested = True
        self.stop()

    # --- the process ----------------------------------------------------------------------

    def _interval_initial(self) -> float:
        """A ``set-interval`` of this credential wins, then the configuration, then the server's heartbeat.

        Bounded to the range the configuration allows: the heartbeat came from the server (a
        credential written by an older agent may hold a 0, a NaN or a string).
        """
        stored = self.spool.meta_get(self.stream, INTERVAL_META)
        if stored:
            try:
                value = json.loads(stored)
                if value.get("keyId") == self.credential.key_id:
                    return interval_bound(value["seconds"])
            except (ValueError, AttributeError, KeyError):
                pass
        return interval_bound(self.config.interval or self.credential.heartbeat_seconds)

    def collect_once(self) -> int:
        """Read one sample and commit it to the spool; return its spool id."""
        sample = self.collector.sample()
        sample_id, dropped = self.spool.add(stream=self.stream, sample=sample_bytes(sample))
        self.log.debug("sample collected", extra={"fields": {"timestamp": sample["timestamp"], "id": sample_id}})
        if dropped:
            self._drops_report()
        self._sample_waiting.set()
        return sample_id

    def _drops_report(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY_SECONDS:
            self._last_drop_log = now
            self.log.warning(
                "spool full (spool_max_samples=%d): dropping the oldest samples; %d dropped in all",
                self.config.spool_max_samples,
                self.spool.counters(self.stream)["dropped"],
            )

    def _invocations_received(self, invocations: list) -> None:
        if self.runner.offer(invocations):
            self._commands_waiting.set()

    def stop(self, *_: object) -> None:
        self.stopping.set()
        for event in (self._schedule_changed, self._sample_waiting, self._commands_waiting):
            event.set()

    def run(self) -> int:
        """Run until SIGTERM, SIGINT, a restart command or a refused credential; return the exit code."""
        signal.signal(signal.SIGTERM, self._signalled)
        signal.signal(signal.SIGINT, self._signalled)
        self.log.info(
            "twin-agent %s started for %s: server %s, every %g s, %d samples waiting in the spool, allowed %s",
            __version__,
            self.stream,
            self.http.base_url,
            self.interval,
            self.spool.depth(self.stream),
            ", ".join(self.config.allow) or "nothing",
            extra={"fields": {"session": self.session}},
        )
        self._sender_running = True
        sender = self._thread("sender", self._send_loop)
        commands = self._thread("commands", self._command_loop, daemon=True)
        if self.config.long_poll:
            self._thread("poller", self._poll_loop, daemon=True)
        self._collect_loop()
        sender.join(timeout=self.config.request_timeout + 5)
        commands.join(timeout=2)
        counters = self.spool.counters(self.stream)
        self.log.info(
            "stopped: %d samples waiting in the spool",
            self.spool.depth(self.stream),
            extra={"fields": counters},
        )
        self.spool.close()
        self.http.close()
        if self.restart_requested:
            logging.shutdown()
            os.execv(sys.executable, [sys.executable, "-m", "twin_agent", *sys.argv[1:]])
        return self.exit_code

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self.stopping.is_set():
            self.log.info("%s received: flushing and stopping", name)
            self.stop()
        elif signum == signal.SIGINT:
            # A second Ctrl-C: leave now. The spool loses nothing; the next start sends what waits.
            self.log.warning("%s again: exiting without waiting for the server", name)
            os._exit(130)

    def _thread(self, name: str, target: Callable[[], None], *, daemon: bool = False) -> threading.Thread:
        def guarded() -> None:
            # A loop that fails (a case no answer check foresaw, a full disk) is logged and started
            # again after a backoff: the agent goes on collecting and spooling, and never leaves a
            # thread dead in a live process. The traceback goes to the debug log only.
            backoff = Backoff(cap=self.config.backoff_max)
            while not self.stopping.is_set():
                try:
                    target()
                    return
                except Exception as exc:
                    if self.stopping.is_set():
                        return
                    delay = backoff.next_delay()
                    self.log.error(
                        "the %s thread failed (%s: %s); starting it again in %.1f s",
                        name,
                        type(exc).__name__,
                        text_safe(exc),
                        delay,
                    )
                    self.log.debug("the %s thread's failure", name, exc_info=True)
                    self.stopping.wait(delay)

        thread = threading.Thread(target=guarded, name=f"twin-agent-{name}", daemon=daemon)
        thread.start()
        return thread

    def _collect_loop(self) -> None:
        """Collect every ``interval`` seconds on a fixed schedule (no drift), until stopped."""
        last = time.monotonic()
        self.collect_once()
        while not self.stopping.is_set():
            due = last + self.interval
            self._schedule_changed.wait(timeout=max(0.0, due - time.monotonic()))
            self._schedule_changed.clear()
            if self.stopping.is_set():
                break
            now = time.monotonic()
            if now >= last + self.interval:
                # A late wake-up (a suspended machine) skips the missed ticks rather than bursting.
                last = last + self.interval if now - last < 2 * self.interval else now
                self.collect_once()

    def _send_loop(self) -> None:
        """Flush when a sample arrives or the backoff ends; a sample a command waits for forces the flush.

        The waiters present when a flush starts had their samples spooled
        before it: that flush sends them (it goes on until the spool is empty
        or a try fails), so the ones it did not acknowledge are settled with
        its failure. Waiters that came during the flush wait for the next one.
        """
        while not self.stopping.is_set():
            self._sample_waiting.clear()
            with self._deliveries_lock:
                asked = set(self._deliveries)
            try:
                report = self.uplink.flush(force=bool(asked))
            except AgentStopped as exc:
                self._sender_done(str(exc))
                self.exit_code = EXIT_CREDENTIAL_REFUSED
                self.stop()
                return
            if asked:
                self._deliveries_fail(asked, report.failure or "the sample was not sent (dropped from a full spool)")
            waiting = self.uplink.waiting()
            self._sample_waiting.wait(timeout=waiting if waiting > 0 else None)
        # Stopping: one last try, backoff or not, so a clean stop leaves the spool as empty as it can.
        try:
            self.uplink.flush(force=True)
        except AgentStopped:
            self.exit_code = EXIT_CREDENTIAL_REFUSED
        self._sender_done("the agent is stopping; the sample stays in the spool")

    def _sender_done(self, why: str) -> None:
        """No sender from now on: settle every waiter, and let a late collect-now flush by itself."""
        with self._deliveries_lock:
            self._sender_running = False
        self._deliveries_fail(None, why)

    def _command_loop(self) -> None:
        while not self.stopping.is_set():
            if self.runner.has_work():
                self.runner.run_queued()
            self._commands_waiting.wait(timeout=RESULT_RETRY_SECONDS)
            self._commands_waiting.clear()

    def _poll_loop(self) -> None:
        backoff = Backoff(cap=self.config.backoff_max)
        told = False
        while not self.stopping.is_set():
            started = time.monotonic()
            outcome = self.runner.poll(wait=LONG_POLL_WAIT_SECONDS)
            if self.stopping.is_set():
                return
            if outcome == "ok":
                backoff.reset()
                if self.runner.has_work():
                    self._commands_waiting.set()
                self.stopping.wait(max(0.0, started + POLL_MIN_SECONDS - time.monotonic()))
            elif outcome == "unsupported":
                if not told:
                    self.log.info("the server has no command long poll; commands arrive with batch answers only")
                    told = True
                self.stopping.wait(UNSUPPORTED_POLL_PAUSE_SECONDS)
            else:
                self.stopping.wait(backoff.next_delay())

"""What the benchmark and the soak test share: servers, agents, raw Socket.IO clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.django_setup import BENCH_ONLY_ENV, ROOT
from hosts.credentials import signature_compute
from twinsite.serve import daphne_arguments

# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def peak_rss_reset(self) -> None:
        """Start ``peak_rss_mb`` afresh (Linux: writing 5 to clear_refs resets VmHWM)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024


@contextmanager
def daphne(app: str, log: str | None = None, **env: str) -> Iterator[Server]:
    """``app`` under the twin's daphne options on a free port; its stderr in ``var/<log>.log``."""
    port = free_port()
    # The twin's own launcher and daphne options, for the twin and the bare floor alike.
    command = daphne_arguments(["--access-log", "/dev/null", "-b", "127.0.0.1", "-p", str(port)])
    command[-1] = app
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", *command],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in BENCH_ONLY_ENV}, **env},
        stdout=subprocess.DEVNULL,
        stderr=open(ROOT / "var" / f"{log or 'bench-' + app.split('.')[0]}.log", "w"),  # noqa: SIM115
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    try:
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Agent:
    hostname: str
    key_id: str
    secret: str
    session: str = field(default_factory=lambda: f"bench-{random.getrandbits(40):x}")
    sequence: int = 0

    def signed(self, samples: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        self.sequence += 1
        body = orjson.dumps({"agent_session": self.session, "sequence": self.sequence, "samples": samples})
        stamp = str(int(time.time()))
        return body, {
            "Content-Type": "application/json",
            "X-Twin-Key-Id": self.key_id,
            "X-Twin-Timestamp": stamp,
            "X-Twin-Signature": signature_compute(secret=self.secret, timestamp=stamp, body=body),
        }


def sample(hostname: str, at: datetime, cpu: float = 42.5, i: int = 0) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "timestamp": iso(at),
        "cpu_load": cpu,
        "memory_used_percent": 63.2,
        "load_average": 1.72,
        "uptime_seconds": 7200 + i,
        "agent_version": "0.1.0",
        "platform": "Linux-x86_64",
        "net_bytes_tx": 1_000_000 * i,
        "net_bytes_rx": 2_000_000 * i,
    }


async def register(http: aiohttp.ClientSession, url: str, key: str, hostname: str) -> Agent:
    async with http.post(
        f"{url}/api/hosts/register",
        json={"hostname": hostname, "platform": "Linux-x86_64", "agent_version": "0.1.0"},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        body = await response.json()
        assert response.status in (200, 201), body
        return Agent(hostname, body["keyId"], body["signingSecret"])


async def run_for(seconds: float, workers: int, job: Callable[[int], Awaitable[None]]) -> None:
    deadline = time.monotonic() + seconds

    async def loop(worker: int) -> None:
        while time.monotonic() < deadline:
            await job(worker)

    await asyncio.gather(*(loop(w) for w in range(workers)))


GENERATED_AT = re.compile(r'"generatedAt":"([^"]+)"')


class RawSocketIOClient:
    """A minimal Engine.IO 4 / Socket.IO 5 websocket client that only scans for markers.

    200 full python-socketio clients would spend the machine's two cores
    parsing JSON; this one reads frames, answers pings and timestamps the
    first frame containing each awaited marker, which is what latency needs.
    """

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.watch: dict[str, float] = {}
        self.bytes = 0
        self.delta_bytes = 0
        self.states = 0
        self.deltas = 0
        self.state_times: list[float] = []
        # When the server built each state it sent (its generatedAt), in Unix seconds.
        self.generated: list[float] = []
        self._task: asyncio.Task | None = None

    async def connect(self, http: aiohttp.ClientSession, url: str, delta: bool = False) -> None:
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await http.ws_connect(ws_url, max_msg_size=0)
        await self.ws.receive()  # engine.io open
        await self.ws.send_str("40/digital-twin,")
        while not (await self.ws.receive()).data.startswith("40/digital-twin,"):
            pass
        if delta:
            await self.ws.send_str('42/digital-twin,["subscribe",{"mode":"delta"}]')
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            data = msg.data
            if data == "2":
                await self.ws.send_str("3")
                continue
            now = time.perf_counter()
            self.bytes += len(data)
            if data.startswith('42/digital-twin,["twin-state"'):
                self.states += 1
                self.state_times.append(now)
                if generated := GENERATED_AT.search(data, 0, 300):
                    # The bare floor server puts its probe marker there instead.
                    with contextlib.suppress(ValueError):
                        self.generated.append(datetime.fromisoformat(generated[1]).timestamp())
            elif data.startswith('42/digital-twin,["twin-delta"'):
                self.deltas += 1
                self.delta_bytes += len(data)
            for marker, seen in self.watch.items():
                if not seen and marker in data:
                    self.watch[marker] = now

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self.ws:
            await self.ws.close()


async def connect_clients(http: aiohttp.ClientSession, url: str, count: int, delta: bool = False) -> list:
    clients = [RawSocketIOClient() for _ in range(count)]
    for start in range(0, count, 20):
        await asyncio.gather(*(c.connect(http, url, delta) for c in clients[start : start + 20]))
    return clients


def results_file_write(
    path: Path, *, header: list[str], results: list[dict[str, Any]], notes: list[str], analysis: Path
) -> None:
    """A results file: its header lines, the table of figures beside their floors, the notes, then the analysis."""
    lines = [
        *header,
        "",
        "| figure | measured | floor (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['figure']} | {r['measured']} | {r['floor']} | {r['ratio']} | {r['target']} | {met} |")
    lines += ["", *[f"- {n}" for n in notes], ""]
    if analysis.exists():
        lines.append(analysis.read_text())
    path.write_text("\n".join(lines))

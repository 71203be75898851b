"""Memory of one server process under strangers' compressed bodies: ``python -m bench.strangers``.

Starts the twin (``python -m twinsite.serve``, DEBUG off, an embedded SQLite file
of its own) and samples its resident memory (VmRSS) while 32 clients at once,
for several rounds, send 12 kB gzip bodies that inflate to 10 MB:

1. **registration, unknown key**: ``POST /api/hosts/register`` with a made-up
   enrollment key (signed mode);
2. **batch, wrong signature**: ``POST /api/metrics/batch`` signed with a real
   key id and a wrong secret (signed mode);
3. **batch, open mode**: unsigned batches with ``TWIN_AGENT_AUTH=open``, where
   anyone may write, so the inflation budget is the only bound.

``--root`` runs another checkout the same way (e.g. the code before the
hardening, unpacked with ``git archive <commit> | tar -x -C DIR``), for the
figure it is compared with. Loopback only; about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
INFLATED_BYTES = 10 * 2**20 - 1024


@dataclass
class Figures:
    scenario: str
    baseline_mb: float
    peak_mb: float
    after_mb: float
    statuses: dict[int, int] = field(default_factory=dict)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def padded(document: dict) -> bytes:
    """``document`` with a field of blanks making it INFLATED_BYTES long, gzip-compressed."""
    body = orjson.dumps({**document, "pad": ""})
    body = body[:-2] + b" " * (INFLATED_BYTES - len(body)) + b'"}'
    return gzip.compress(body, 9)


class Server:
    def __init__(self, root: Path, workdir: Path, **env: str) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "DATABASE_URL": f"sqlite:///{workdir / 'twin.sqlite3'}",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.env.pop("REDIS_URL", None)
        self.log = (workdir / f"server-{self.port}.log").open("w")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=self.env, check=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "twinsite.serve", "-b", "127.0.0.1", "-p", str(self.port)],
            cwd=root,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def manage(self, *args: str) -> str:
        command = [sys.executable, "manage.py", *args]
        result = subprocess.run(command, cwd=self.root, env=self.env, check=True, capture_output=True, text=True)
        return result.stdout.strip()

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(150):
                try:
                    async with http.get(f"{self.url}/api/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


async def burst(
    server: Server, *, name: str, path: str, body: bytes, headers: dict[str, str], clients: int, rounds: int
) -> Figures:
    """``clients`` requests at once, ``rounds`` times, sampling the server's RSS every 20 ms."""
    pid = server.process.pid
    await asyncio.sleep(1.0)
    baseline = rss_mb(pid)
    peak = baseline
    statuses: dict[int, int] = {}
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", **headers}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=clients)) as http:

        async def one() -> None:
            async with http.post(f"{server.url}{path}", data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

        for _ in range(rounds):
            await asyncio.gather(*(one() for _ in range(clients)))
    done.set()
    await sampler
    await asyncio.sleep(5.0)
    return Figures(name, baseline, peak, rss_mb(pid), statuses)


async def measure(root: Path, clients: int, rounds: int) -> list[Figures]:
    figures = []
    sample = {
        "hostname": "bench-01",
        "timestamp": datetime.now(UTC).isoformat(),
        "cpu_load": 1.0,
        "memory_used_percent": 1.0,
        "load_average": 0.1,
        "uptime_seconds": 1,
    }
    with tempfile.TemporaryDirectory() as tmp:
        signed = Server(root, Path(tmp), TWIN_AGENT_AUTH="signed")
        try:
            await signed.ready()
            enrollment = signed.manage("create_enrollment_key", "--name", "bench").splitlines()[-1].strip()
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"{signed.url}/api/hosts/register",
                    json={"hostname": "bench-01", "platform": "bench", "agent_version": "1"},
                    headers={"Authorization": f"Bearer {enrollment}"},
                ) as response,
            ):
                key_id = (await response.json())["keyId"]
            registration = padded({"hostname": "stranger-01", "platform": "x", "agent_version": "1"})
            figures.append(
                await burst(
                    signed,
                    name="registration, unknown enrollment key",
                    path="/api/hosts/register",
                    body=registration,
                    headers={"Authorization": "Bearer tek_" + secrets.token_urlsafe(32)},
                    clients=clients,
                    rounds=rounds,
                )
            )
            batch = padded({"agent_session": "s", "sequence": 1, "samples": [sample]})
            figures.append(
                await burst(
                    signed,
                    name="batch, real key id, wrong signature",
                    path="/api/metrics/batch",
                    body=batch,
                    headers={
                        "X-Twin-Key-Id": key_id,
                        "X-Twin-Timestamp": str(int(time.time())),
                        "X-Twin-Signature": "sha256=" + "0" * 64,
                    },
                    clients=clients,
                    rounds=rounds,
                )
            )
        finally:
            signed.stop()
    with tempfile.TemporaryDirectory() as tmp:
        open_mode = Server(root, Path(tmp), TWIN_AGENT_AUTH="open")
        try:
            await open_mode.ready()
            batch = padded({"samples": [sample]})
            figures.append(
                await burst(
                    open_mode,
                    name="batch, open mode (anyone may write)",
                    path="/api/metrics/batch",
                    body=batch,
                    headers={},
                    clients=clients,
                    rounds=rounds,
                )
            )
        finally:
            open_mode.stop()
    return figures


def table(figures: list[Figures], clients: int, rounds: int, body: int) -> str:
    lines = [
        f"{clients} clients at once, {rounds} rounds, each sending a {body / 1024:.0f} kB gzip body inflating to "
        f"{INFLATED_BYTES / 2**20:.0f} MB; server RSS:",
        "",
        "| scenario | RSS before the burst | peak | 5 s after | answers |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        answers = ", ".join(f"{n} x {code}" for code, n in sorted(f.statuses.items()))
        lines.append(
            f"| {f.scenario} | {f.baseline_mb:.0f} MB | {f.peak_mb:.0f} MB ({f.peak_mb - f.baseline_mb:+.0f}) "
            f"| {f.after_mb:.0f} MB ({f.after_mb - f.baseline_mb:+.0f}) | {answers} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.root.resolve(), args.clients, args.rounds))
    body = len(padded({"hostname": "stranger-01", "platform": "x", "agent_version": "1"}))
    print(f"# {args.root.resolve()} at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(table(figures, args.clients, args.rounds, body))


if __name__ == "__main__":
    main()

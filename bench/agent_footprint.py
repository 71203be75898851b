"""The agent's footprint and the fleet simulator's CPU, each beside its floor.

    .venv/bin/python -m bench.agent_footprint                  # about 7 minutes; writes bench/agent-results.md
    .venv/bin/python -m bench.agent_footprint --agent-seconds 60 --sim-seconds 30   # a quick check

1. The agent: ``twin-agent run`` at a 10 s interval against a live twin (daphne,
   signed agents, its own SQLite file under ``var/bench-agent``) for
   ``--agent-seconds`` after a 15 s warm-up: its resident memory (``VmRSS`` at the
   end, ``VmHWM`` peak) and CPU share of one core (utime + stime over wall time).
   Floor: a Python process that only imports what the agent imports (psutil,
   urllib3, sqlite3) and sleeps.
2. The simulator: ``twin-agent simulate`` with ``--sim-hosts`` hosts at a 10 s
   interval for ``--sim-seconds``, its CPU share (its own ``getrusage``) and peak
   memory. Its server is the tests' fake twin (``tests/agent/fake_twin.py``, it
   checks every signature) in this process: one daphne process on this machine
   stores about 72 batches a second (bench/results.md), 2,000 hosts send 200, so
   the real server would measure the server. Floor: the same number of signed,
   pre-built batch bodies posted by a bare urllib3 loop to the same fake.

Loopback only; every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.agent.fake_twin import FakeTwin  # noqa: E402
from tests.e2e.conftest import free_port  # noqa: E402

PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORK = ROOT / "var" / "bench-agent"


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


def measure_agent(seconds: float) -> dict[str, float]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{WORK / 'twin.sqlite3'}",
        "SECRET_KEY": "bench-only",
        "TWIN_AGENT_AUTH": "signed",
    }
    env.pop("REDIS_URL", None)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    key = subprocess.run(
        [PYTHON, "manage.py", "create_enrollment_key", "--name", "bench"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    server = subprocess.Popen(
        [PYTHON, "-m", "twinsite.serve", "-b", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=(WORK / "server.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    floor = subprocess.Popen([PYTHON, "-c", "import psutil, urllib3, sqlite3, time; time.sleep(3600)"])
    agent = None
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                subprocess.run([PYTHON, "-c", f"import urllib.request; urllib.request.urlopen('{url}/api/health')"],
                               check=True, capture_output=True)  # fmt: skip
                break
            except subprocess.CalledProcessError:
                time.sleep(0.3)
        state = WORK / "agent"
        subprocess.run(
            [PYTHON, "-m", "twin_agent", "enroll", "--server", url, "--enrollment-key", key,
             "--state-dir", str(state), "--hostname", "bench-agent"],
            check=True, capture_output=True,
        )  # fmt: skip
        agent = subprocess.Popen(
            [PYTHON, "-m", "twin_agent", "run", "--state-dir", str(state), "--interval", "10"],
            stdout=(WORK / "agent.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(15)
        start_ticks, start = cpu_ticks(agent.pid), time.monotonic()
        time.sleep(seconds)
        ticks, wall = cpu_ticks(agent.pid) - start_ticks, time.monotonic() - start
        memory = proc_status(agent.pid)
        floor_memory = proc_status(floor.pid)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        status_command = [PYTHON, "-m", "twin_agent", "status", "--state-dir", str(state)]
        status = json.loads(subprocess.run(status_command, check=True, capture_output=True, text=True).stdout)
        return {
            "rss_kb": memory["VmRSS"],
            "hwm_kb": memory["VmHWM"],
            "cpu_percent": ticks / CLK_TCK / wall * 100,
            "wall": wall,
            "delivered": status["spool"]["delivered"],
            "floor_rss_kb": floor_memory["VmRSS"],
        }
    finally:
        for process in (agent, server, floor):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)


def measure_simulator(hosts: int, seconds: float) -> dict[str, float]:
    twin = FakeTwin().start()
    try:
        state = WORK / "simulator"
        shutil.rmtree(state, ignore_errors=True)
        simulator = subprocess.Popen(
            [PYTHON, "-m", "twin_agent", "simulate", "--server", twin.url, "--enrollment-key", "fake",
             "--hosts", str(hosts), "--interval", "10", "--duration", str(seconds), "--state-dir", str(state),
             "--progress-every", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        peak = 0
        while simulator.poll() is None:
            with contextlib.suppress(FileNotFoundError, KeyError):  # it may have just exited
                peak = max(peak, proc_status(simulator.pid)["VmRSS"])
            with twin.lock:  # the fake keeps every batch; only their number matters here
                twin.batches.clear()
            time.sleep(1)
        output = simulator.stdout.read() if simulator.stdout else ""
        done = re.search(r"done: .*?(\d+) batches, (\d+) samples in (\d+) s; errors (\d+).*CPU ([\d.]+)%", output)
        if done is None:
            raise RuntimeError(f"the simulator did not finish:\n{output}")
        batches, _, wall, errors, cpu = done.groups()
        floor = measure_bare_posts(twin, count=int(batches))
        return {
            "batches": int(batches),
            "rate": int(batches) / int(wall),
            "errors": int(errors),
            "cpu_percent": float(cpu),
            "peak_rss_kb": peak,
            "cpu_per_batch_ms": float(cpu) / 100 * int(wall) / int(batches) * 1000,
            "floor_cpu_per_batch_ms": floor,
            "output": output,
        }
    finally:
        twin.stop()


def measure_bare_posts(twin: FakeTwin, *, count: int) -> float:
    """CPU milliseconds per signed batch when a bare urllib3 loop posts pre-built bodies (the floor)."""
    script = f"""
import hashlib, hmac, json, resource, time, urllib3
key_id, secret = {json.dumps(list(twin.credential("floor-01").values())[1:3])}
pool = urllib3.PoolManager(retries=False)
stamp = str(int(time.time()))
sample = {{"hostname": "floor-01", "cpu_load": 1.0, "memory_used_percent": 2.0, "load_average": 0.1,
          "uptime_seconds": 10.0, "agent_version": "0.1.0", "platform": "Linux-x86_64",
          "net_bytes_tx": 1, "net_bytes_rx": 2}}
bodies = []
for i in range({count}):
    body = json.dumps({{"agent_session": "floor", "sequence": i, "samples": [dict(sample, timestamp=str(i))]}}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    bodies.append((body, {{"Content-Type": "application/json", "X-Twin-Key-Id": key_id, "X-Twin-Timestamp": stamp,
                           "X-Twin-Signature": signature}}))
before = resource.getrusage(resource.RUSAGE_SELF)
for body, headers in bodies:
    assert pool.request("POST", "{twin.url}/api/metrics/batch", body=body, headers=headers).status == 202
after = resource.getrusage(resource.RUSAGE_SELF)
print((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / {count} * 1000)
"""
    ms = float(subprocess.run([PYTHON, "-c", script], check=True, capture_output=True, text=True).stdout)
    with twin.lock:
        twin.batches.clear()
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent-seconds", type=float, default=300)
    parser.add_argument("--sim-hosts", type=int, default=2000)
    parser.add_argument("--sim-seconds", type=float, default=90)
    parser.add_argument("--agent-result", help="reuse an agent measurement (the dict this script printed)")
    args = parser.parse_args()
    agent = ast.literal_eval(args.agent_result) if args.agent_result else measure_agent(args.agent_seconds)
    print(f"agent: {agent}", flush=True)
    sim = measure_simulator(args.sim_hosts, args.sim_seconds)
    print(f"simulator: { {k: v for k, v in sim.items() if k != 'output'} }", flush=True)
    lines = [
        "# The agent's footprint and the simulator's CPU",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}), shared with other work; `python -m bench.agent_footprint "
        f"--agent-seconds {args.agent_seconds:g} --sim-hosts {args.sim_hosts} --sim-seconds {args.sim_seconds:g}`.",
        "",
        "| figure | measured | floor | target | met |",
        "| --- | --- | --- | --- | --- |",
        f"| agent resident memory at a 10 s interval (VmRSS; peak VmHWM {mb(agent['hwm_kb'])}) | "
        f"{mb(agent['rss_kb'])} | {mb(agent['floor_rss_kb'])} (Python importing psutil, urllib3, sqlite3) | "
        f"< 40 MB | {'yes' if agent['hwm_kb'] < 40 * 1024 else 'no'} |",
        f"| agent CPU at a 10 s interval, over {agent['wall']:.0f} s ({agent['delivered']} samples delivered) | "
        f"{agent['cpu_percent']:.3f}% of a core | - | < 1% | {'yes' if agent['cpu_percent'] < 1 else 'no'} |",
        f"| simulator CPU, {args.sim_hosts} hosts at a 10 s interval ({sim['rate']:.0f} batches/s, "
        f"{sim['errors']} errors) | {sim['cpu_percent']:.1f}% of a core | - | one process, < 100% | "
        f"{'yes' if sim['cpu_percent'] < 100 and sim['rate'] >= args.sim_hosts / 10 * 0.95 else 'no'} |",
        f"| simulator CPU per batch (sample, spool, sign, send, answer) | {sim['cpu_per_batch_ms']:.2f} ms | "
        f"{sim['floor_cpu_per_batch_ms']:.2f} ms (a bare urllib3 loop posting pre-signed bodies) | - | - |",
        f"| simulator peak memory, {args.sim_hosts} hosts | {mb(sim['peak_rss_kb'])} | - | - | - |",
        "",
    ]
    (ROOT / "bench" / "agent-results.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

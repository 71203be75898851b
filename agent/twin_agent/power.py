"""Power draw and inlet temperature, from what the machine offers; each source skipped with its reason.

Three sources, each checked once at start:

- **IPMI DCMI** (``ipmitool dcmi power reading``): the whole server's draw
  at its power supplies, as the BMC measures it. Preferred when it works.
- **RAPL** energy counters (``/sys/class/powercap/intel-rapl:*/energy_uj``):
  the CPU packages' (and DRAM's) energy, turned into watts over the
  interval. It is not the wall draw (fans, disks, NICs and PSU losses are
  missing), so it is used only where IPMI is not.
- **Inlet temperature**: a hwmon sensor labelled as the inlet or ambient air
  (``/sys/class/hwmon/hwmon*/temp*_label``, what ``psutil.sensors_temperatures``
  reads), else the BMC's ``Inlet Temp`` (``ipmitool sdr type Temperature``).
  CPU and board sensors are not the inlet air, so they are not sent as it
  (the server has no CPU temperature metric).

A source that is missing or unreadable is skipped, and why is logged once
(``Sensors.skipped`` holds the reasons), so an agent on a VM runs as before.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POWERCAP_ROOT = Path("/sys/class/powercap")
HWMON_ROOT = Path("/sys/class/hwmon")
IPMITOOL_TIMEOUT_SECONDS = 5.0
# The server's ranges (metrics/fields.py): a reading outside them is a broken sensor, not a fact.
WATTS_MAX = 1_000_000.0
CELSIUS_RANGE = (-50.0, 150.0)
INLET_LABELS = ("inlet", "ambient", "intake")

_TOP_ZONE = re.compile(r"^intel-rapl:\d+$")
_SUB_ZONE = re.compile(r"^intel-rapl:\d+:\d+$")
_DCMI_WATTS = re.compile(r"Instantaneous power reading:\s*(\d+(?:\.\d+)?)\s*Watts", re.IGNORECASE)
_DCMI_STATE = re.compile(r"Power reading state is:\s*(\w+)", re.IGNORECASE)
_SDR_INLET = re.compile(r"^([^|]*(?:inlet|ambient)[^|]*)\|.*\|\s*(-?\d+(?:\.\d+)?)\s*degrees C", re.IGNORECASE)


class Unavailable(Exception):
    """A source this machine does not offer, with the reason (shown to the operator once)."""


@dataclass
class _Zone:
    path: Path
    max_range_uj: int
    last_uj: int


class Rapl:
    """Watts from the RAPL energy counters over each interval between two readings; reset-safe.

    1. Zones: ``psys`` (the whole SoC platform) alone where the machine has
       it; otherwise every package and its DRAM subzone (a package's energy
       excludes its DRAM on servers; its ``core``/``uncore`` subzones are
       inside it and would count twice).
    2. Each reading: energy since the last one over the time since the last
       one. A counter that went backwards wrapped at ``max_energy_range_uj``
       (it does every few minutes to hours under load) and is unwrapped;
       without a range to unwrap by, that interval has no figure.
    """

    def __init__(self, *, root: Path = POWERCAP_ROOT, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        zones = _rapl_zones(root)
        self.zones = [_Zone(path=z, max_range_uj=_read_int(z / "max_energy_range_uj", 0), last_uj=0) for z in zones]
        for zone in self.zones:
            zone.last_uj = _energy_read(zone.path)
        self.last_at = clock()

    def watts(self) -> float | None:
        """Mean watts since the previous call (or since start); None when no interval can be measured."""
        now = self.clock()
        elapsed = now - self.last_at
        total_uj = 0
        unwrappable = False
        for zone in self.zones:
            current = _energy_read(zone.path)
            delta = current - zone.last_uj
            if delta < 0:
                if zone.max_range_uj > 0:
                    delta += zone.max_range_uj
                else:
                    unwrappable = True
            zone.last_uj = current
            total_uj += delta
        self.last_at = now
        if unwrappable or elapsed <= 0:
            return None
        watts = total_uj / 1e6 / elapsed
        return round(watts, 1) if 0 <= watts <= WATTS_MAX else None


def _rapl_zones(root: Path) -> list[Path]:
    if not root.is_dir():
        raise Unavailable(f"no {root} (the kernel's powercap driver is not loaded, or this is a VM or container)")
    top = sorted(p for p in root.iterdir() if _TOP_ZONE.match(p.name))
    if not top:
        raise Unavailable(f"no RAPL zones under {root} (intel-rapl:N): the CPU or the kernel offers no energy counters")
    names = {p: _read_text(p / "name") for p in top}
    psys = [p for p in top if names[p] == "psys"]
    if psys:
        return psys
    dram = [p for p in root.iterdir() if _SUB_ZONE.match(p.name) and _read_text(p / "name") == "dram"]
    return sorted(top + dram)


def _energy_read(path: Path) -> int:
    target = path / "energy_uj"
    try:
        return int(target.read_text().strip())
    except PermissionError:
        raise Unavailable(
            f"{target} is readable by root only (Linux 5.10 and later, CVE-2020-8694): run the agent as root "
            "or give its user read access (a udev rule or tmpfiles.d entry with mode 0444)"
        ) from None
    except (OSError, ValueError) as exc:
        raise Unavailable(f"{target} cannot be read: {exc}") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _read_int(path: Path, default: int) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return default


def hwmon_inlet(*, root: Path = HWMON_ROOT) -> Path:
    """The hwmon input labelled as the inlet or ambient air (``tempN_input`` beside a matching ``tempN_label``)."""
    if not root.is_dir():
        raise Unavailable(f"no {root} (no hardware monitoring drivers, or a VM or container)")
    for chip in sorted(root.iterdir()):
        for label in sorted(chip.glob("temp*_label")):
            if any(word in _read_text(label).lower() for word in INLET_LABELS):
                value = label.with_name(label.name.replace("_label", "_input"))
                if value.exists():
                    return value
    raise Unavailable(
        f"no sensor under {root} labelled {'/'.join(INLET_LABELS)} (CPU and board sensors are not the inlet air)"
    )


def celsius_read(path: Path) -> float | None:
    """A hwmon temperature (millidegrees) in °C; None when unreadable or out of range."""
    try:
        celsius = int(path.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None
    return round(celsius, 2) if CELSIUS_RANGE[0] <= celsius <= CELSIUS_RANGE[1] else None


class Ipmi:
    """The BMC's readings through ``ipmitool`` (DCMI power, the inlet temperature sensor)."""

    def __init__(self, *, command: str = "ipmitool", timeout: float = IPMITOOL_TIMEOUT_SECONDS) -> None:
        found = shutil.which(command)
        if found is None:
            raise Unavailable(f"{command} is not installed")
        self.command, self.timeout = found, timeout

    def run(self, *args: str) -> str:
        try:
            done = subprocess.run(
                [self.command, *args], capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise Unavailable(f"ipmitool {' '.join(args)} did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise Unavailable(f"ipmitool cannot run: {exc}") from None
        if done.returncode != 0:
            why = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[0]
            raise Unavailable(f"ipmitool {' '.join(args)} failed: {why[:200]}")
        return done.stdout

    def watts(self) -> float | None:
        """The DCMI instantaneous power reading, watts."""
        output = self.run("dcmi", "power", "reading")
        state = _DCMI_STATE.search(output)
        if state and state.group(1).lower() != "activated":
            raise Unavailable(f"the BMC's DCMI power reading is {state.group(1)}")
        found = _DCMI_WATTS.search(output)
        if found is None:
            raise Unavailable("ipmitool dcmi power reading gave no 'Instantaneous power reading'")
        watts = float(found.group(1))
        return watts if 0 <= watts <= WATTS_MAX else None

    def inlet_celsius(self) -> float | None:
        """The BMC's inlet (or ambient) temperature sensor, °C."""
        for line in self.run("sdr", "type", "Temperature").splitlines():
            found = _SDR_INLET.match(line)
            if found:
                celsius = float(found.group(2))
                return celsius if CELSIUS_RANGE[0] <= celsius <= CELSIUS_RANGE[1] else None
        raise Unavailable("the BMC has no temperature sensor named Inlet or Ambient")


class Sensors:
    """The sample's ``power_watts`` and ``inlet_temp_celsius``: the first source that works, each skip logged once.

    Sources are probed at construction (RAPL's first reading starts its
    interval); a source that fails later is dropped with its reason, so a
    broken BMC costs one timeout, not one a sample.
    """

    def __init__(
        self,
        *,
        powercap_root: Path = POWERCAP_ROOT,
        hwmon_root: Path = HWMON_ROOT,
        ipmitool: str = "ipmitool",
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log or logging.getLogger("twin_agent.power")
        self.skipped: dict[str, str] = {}
        self.ipmi: Ipmi | None = self._probe("ipmi", lambda: Ipmi(command=ipmitool))
        self.ipmi_power = self.ipmi is not None and self._probe("ipmi power", self.ipmi.watts) is not None
        self.rapl: Rapl | None = None
        if not self.ipmi_power:
            self.rapl = self._probe("rapl", lambda: Rapl(root=powercap_root, clock=clock))
        self.inlet_path: Path | None = self._probe("hwmon inlet", lambda: hwmon_inlet(root=hwmon_root))
        self.ipmi_inlet = False
        if self.inlet_path is None and self.ipmi is not None:
            self.ipmi_inlet = self._probe("ipmi inlet", self.ipmi.inlet_celsius) is not None

    def _probe(self, source: str, probe: Callable[[], object]) -> object | None:
        try:
            return probe()
        except Unavailable as exc:
            self._skip(source, str(exc))
            return None

    def _skip(self, source: str, reason: str) -> None:
        if source not in self.skipped:
            self.skipped[source] = reason
            self.log.info("%s skipped: %s", source, reason)

    def read(self) -> dict[str, float]:
        """This interval's readings, only those the machine offers."""
        out: dict[str, float] = {}
        watts = self._power()
        if watts is not None and math.isfinite(watts):
            out["power_watts"] = watts
        celsius = self._inlet()
        if celsius is not None and math.isfinite(celsius):
            out["inlet_temp_celsius"] = celsius
        return out

    def _power(self) -> float | None:
        try:
            if self.ipmi_power and self.ipmi is not None:
                return self.ipmi.watts()
            if self.rapl is not None:
                return self.rapl.watts()
        except Unavailable as exc:
            self._skip("ipmi power" if self.ipmi_power else "rapl", str(exc))
            self.ipmi_power, self.rapl = False, None
        return None

    def _inlet(self) -> float | None:
        if self.inlet_path is not None:
            return celsius_read(self.inlet_path)
        if self.ipmi_inlet and self.ipmi is not None:
            try:
                return self.ipmi.inlet_celsius()
            except Unavailable as exc:
                self._skip("ipmi inlet", str(exc))
                self.ipmi_inlet = False
        return None

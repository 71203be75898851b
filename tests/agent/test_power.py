"""Power and inlet temperature: the readers against sysfs trees laid out as the kernel's, and each skip's reason.

The trees are real directories and files in ``tmp_path`` (the same names and
units as ``/sys/class/powercap`` and ``/sys/class/hwmon``); ``ipmitool`` is a
small script on ``PATH`` printing what the real one prints.
"""

from __future__ import annotations

import logging
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from twin_agent.collect import Collector, sample_bytes
from twin_agent.power import POWERCAP_ROOT, Rapl, Sensors, Unavailable, hwmon_inlet

from metrics.schema import SampleIn, sample_validate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _zone(root: Path, zone: str, name: str, energy_uj: int, max_range_uj: int | None = 262_143_328_850) -> Path:
    path = root / zone
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    if max_range_uj is not None:
        (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return path


def _energy(zone: Path, uj: int) -> None:
    (zone / "energy_uj").write_text(f"{uj}\n")


def _sensor(root: Path, chip: str, index: int, label: str, millidegrees: int) -> None:
    path = root / chip
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text("chip\n")
    (path / f"temp{index}_label").write_text(label + "\n")
    (path / f"temp{index}_input").write_text(f"{millidegrees}\n")


def _ipmitool(tmp_path: Path, monkeypatch, *, power: str, sdr: str = "", fails: str | None = None) -> None:
    """An ``ipmitool`` on PATH that prints these answers (or fails as one without a BMC does)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "ipmitool"
    if fails:
        body = f"echo '{fails}' >&2; exit 1"
    else:
        (bin_dir / "power.txt").write_text(power)
        (bin_dir / "sdr.txt").write_text(sdr)
        body = f'case "$1" in dcmi) cat {bin_dir}/power.txt;; sdr) cat {bin_dir}/sdr.txt;; esac'
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


DCMI = """
    Instantaneous power reading:                   220 Watts
    Minimum during sampling period:                 34 Watts
    Maximum during sampling period:                488 Watts
    Average power reading over sample period:      206 Watts
    IPMI timestamp:                           Tue Dec  8 02:40:01 2026
    Sampling period:                          00000005 Seconds.
    Power reading state is:                   activated
"""
SDR = """Inlet Temp       | 04h | ok  |  7.1 | 22 degrees C
Exhaust Temp     | 01h | ok  |  7.1 | 35 degrees C
Temp             | 0Eh | ok  |  3.1 | 41 degrees C
"""


# --- RAPL ------------------------------------------------------------------------------------


def test_rapl_watts_are_the_packages_and_drams_energy_over_the_interval(tmp_path):
    clock = Clock()
    package0 = _zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    package1 = _zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    dram = _zone(tmp_path, "intel-rapl:0:2", "dram", 0)
    _zone(tmp_path, "intel-rapl:0:0", "core", 0)  # inside its package: not counted again
    rapl = Rapl(root=tmp_path, clock=clock)

    clock.now += 10
    _energy(package0, 1_000_000 + 600_000_000)  # 60 W
    _energy(package1, 5_000_000 + 400_000_000)  # 40 W
    _energy(dram, 100_000_000)  # 10 W
    assert rapl.watts() == 110.0


def test_rapl_uses_psys_alone_where_the_platform_has_it(tmp_path):
    clock = Clock()
    psys = _zone(tmp_path, "intel-rapl:1", "psys", 0)
    package = _zone(tmp_path, "intel-rapl:0", "package-0", 0)
    rapl = Rapl(root=tmp_path, clock=clock)
    clock.now += 5
    _energy(psys, 75_000_000)
    _energy(package, 50_000_000)
    assert rapl.watts() == 15.0


def test_a_rapl_counter_that_wrapped_is_unwrapped_not_a_negative_draw(tmp_path):
    clock = Clock()
    package = _zone(tmp_path, "intel-rapl:0", "package-0", 999_000_000, max_range_uj=1_000_000_000)
    rapl = Rapl(root=tmp_path, clock=clock)
    clock.now += 10
    _energy(package, 499_000_000)  # 1,000,000 µJ to the wrap, then 499 J: 500 J in 10 s
    assert rapl.watts() == 50.0


def test_a_rapl_counter_that_went_back_without_a_range_gives_no_figure_for_that_interval(tmp_path):
    clock = Clock()
    package = _zone(tmp_path, "intel-rapl:0", "package-0", 500_000_000, max_range_uj=None)
    rapl = Rapl(root=tmp_path, clock=clock)
    clock.now += 10
    _energy(package, 100)
    assert rapl.watts() is None
    clock.now += 10
    _energy(package, 100 + 300_000_000)
    assert rapl.watts() == 30.0  # measured again from the reading after the reset


def test_rapl_is_skipped_without_zones_naming_why(tmp_path):
    with pytest.raises(Unavailable, match="no RAPL zones"):
        Rapl(root=tmp_path)
    with pytest.raises(Unavailable, match="powercap driver is not loaded"):
        Rapl(root=tmp_path / "missing")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_rapl_readable_by_root_only_is_skipped_saying_how_to_grant_read(tmp_path):
    package = _zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (package / "energy_uj").chmod(0o200)
    with pytest.raises(Unavailable, match="readable by root only"):
        Rapl(root=tmp_path)


def test_this_machines_rapl_counters_give_watts_or_a_reason_to_skip():
    try:
        rapl = Rapl(root=POWERCAP_ROOT)
    except Unavailable as exc:
        pytest.skip(f"RAPL on this machine: {exc}")
    sum(range(200_000))
    watts = rapl.watts()
    assert watts is None or 0 <= watts < 5_000


# --- inlet temperature -------------------------------------------------------------------------


def test_the_inlet_is_the_sensor_labelled_inlet_or_ambient_not_the_cpu(tmp_path):
    _sensor(tmp_path, "hwmon0", 1, "Package id 0", 61_000)
    _sensor(tmp_path, "hwmon1", 1, "CPU Temp", 55_000)
    _sensor(tmp_path, "hwmon1", 2, "Ambient", 23_500)
    sensors = Sensors(powercap_root=tmp_path / "none", hwmon_root=tmp_path, ipmitool="no-such-ipmitool")
    assert sensors.read() == {"inlet_temp_celsius": 23.5}


def test_without_an_inlet_sensor_no_temperature_is_sent_and_the_reason_is_kept(tmp_path):
    _sensor(tmp_path, "hwmon0", 1, "Package id 0", 61_000)
    sensors = Sensors(powercap_root=tmp_path / "none", hwmon_root=tmp_path, ipmitool="no-such-ipmitool")
    assert sensors.read() == {}
    assert "CPU and board sensors are not the inlet air" in sensors.skipped["hwmon inlet"]
    with pytest.raises(Unavailable):
        hwmon_inlet(root=tmp_path / "missing")


def test_an_inlet_reading_out_of_range_is_left_out(tmp_path):
    _sensor(tmp_path, "hwmon0", 1, "Inlet", 255_000)
    sensors = Sensors(powercap_root=tmp_path / "none", hwmon_root=tmp_path, ipmitool="no-such-ipmitool")
    assert sensors.read() == {}


# --- IPMI --------------------------------------------------------------------------------------


def test_ipmi_dcmi_power_wins_over_rapl_and_the_bmc_gives_the_inlet(tmp_path, monkeypatch):
    _ipmitool(tmp_path, monkeypatch, power=DCMI, sdr=SDR)
    _zone(tmp_path / "powercap", "intel-rapl:0", "package-0", 0)
    sensors = Sensors(powercap_root=tmp_path / "powercap", hwmon_root=tmp_path / "none")
    assert sensors.read() == {"power_watts": 220.0, "inlet_temp_celsius": 22.0}
    assert sensors.rapl is None


def test_a_deactivated_dcmi_reading_falls_back_to_rapl(tmp_path, monkeypatch):
    _ipmitool(tmp_path, monkeypatch, power=DCMI.replace("activated", "deactivated"), sdr="")
    clock = Clock()
    package = _zone(tmp_path / "powercap", "intel-rapl:0", "package-0", 0)
    sensors = Sensors(powercap_root=tmp_path / "powercap", hwmon_root=tmp_path / "none", clock=clock)
    clock.now += 10
    _energy(package, 450_000_000)
    assert sensors.read() == {"power_watts": 45.0}
    assert sensors.skipped["ipmi power"] == "the BMC's DCMI power reading is deactivated"


def test_ipmitool_without_a_bmc_is_skipped_with_its_own_message(tmp_path, monkeypatch):
    _ipmitool(tmp_path, monkeypatch, power="", fails="Could not open device at /dev/ipmi0: No such file or directory")
    sensors = Sensors(powercap_root=tmp_path / "none", hwmon_root=tmp_path / "none")
    assert sensors.read() == {}
    assert sensors.skipped["ipmi power"].endswith("Could not open device at /dev/ipmi0: No such file or directory")
    assert set(sensors.skipped) == {"ipmi power", "rapl", "hwmon inlet", "ipmi inlet"}


def test_each_skip_is_logged_once_however_many_samples_follow(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="twin_agent.power")
    sensors = Sensors(powercap_root=tmp_path / "none", hwmon_root=tmp_path / "none", ipmitool="no-such-ipmitool")
    for _ in range(5):
        sensors.read()
    skips = [r.getMessage().split(":")[0] for r in caplog.records if "skipped" in r.getMessage()]
    assert skips == ["ipmi skipped", "rapl skipped", "hwmon inlet skipped"]
    assert sensors.skipped["ipmi"] == "no-such-ipmitool is not installed"


def test_a_source_that_breaks_later_is_dropped_with_its_reason_logged_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="twin_agent.power")
    clock = Clock()
    package = _zone(tmp_path, "intel-rapl:0", "package-0", 0)
    sensors = Sensors(powercap_root=tmp_path, hwmon_root=tmp_path / "none", ipmitool="no-such-ipmitool", clock=clock)
    (package / "energy_uj").unlink()
    for _ in range(3):
        clock.now += 10
        assert "power_watts" not in sensors.read()
    assert sum("rapl skipped" in r.getMessage() for r in caplog.records) == 1


# --- in the sample -----------------------------------------------------------------------------


def test_the_sample_carries_power_and_inlet_as_the_servers_fields(tmp_path):
    clock = Clock()
    package = _zone(tmp_path / "powercap", "intel-rapl:0", "package-0", 0)
    _sensor(tmp_path / "hwmon", "hwmon0", 1, "Inlet Temp", 21_250)
    sensors = Sensors(
        powercap_root=tmp_path / "powercap", hwmon_root=tmp_path / "hwmon", ipmitool="no-such-ipmitool", clock=clock
    )
    collector = Collector(hostname="test-host", sensors=sensors)
    clock.now += 10
    _energy(package, 1_234_000_000)
    sample = collector.sample()
    assert (sample["power_watts"], sample["inlet_temp_celsius"]) == (123.4, 21.25)
    checked = sample_validate(sample_bytes(sample), now=timezone.now(), max_future_skew=timedelta(seconds=300))
    assert isinstance(checked, SampleIn), checked
    assert (checked.power_watts, checked.inlet_temp_celsius) == (123.4, 21.25)

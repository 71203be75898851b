"""LLDP neighbours from ``lldpctl -f json`` (a stand-in script printing what lldpd's prints), and the skip."""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from twin_agent.collect import Collector, interfaces_read, sample_bytes
from twin_agent.lldp import Lldp, neighbours_parse

from metrics.schema import SampleIn, sample_validate

ONE = {
    "lldp": {
        "interface": {
            "eth0": {
                "via": "LLDP",
                "chassis": {"leaf-1": {"id": {"type": "mac", "value": "0c:42:a1:00:00:01"}, "descr": "Cumulus"}},
                "port": {"id": {"type": "ifname", "value": "swp7"}, "descr": "swp7", "ttl": "120"},
            }
        }
    }
}
SEVERAL = {
    "lldp": {
        "interface": [
            {"eth0": ONE["lldp"]["interface"]["eth0"]},
            {
                "eth1": {
                    "chassis": {"leaf-2.dc1.example.com": {"id": {"type": "mac", "value": "0c:42:a1:00:00:02"}}},
                    "port": {"id": {"type": "mac", "value": "0c:42:a1:00:00:99"}, "descr": "Ethernet1/7"},
                }
            },
            {"eth2": {"chassis": {"id": {"type": "mac", "value": "0c:42:a1:00:00:03"}}, "port": {}}},
        ]
    }
}


def _lldpctl(tmp_path: Path, monkeypatch, *, document: dict | None = None, fails: str | None = None) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "lldpctl"
    if fails:
        body = f"echo '{fails}' >&2; exit 1"
    else:
        (bin_dir / "lldp.json").write_text(json.dumps(document))
        body = f'[ "$1 $2" = "-f json" ] && cat {bin_dir}/lldp.json'
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_one_neighbour_gives_its_system_name_and_port():
    assert neighbours_parse(ONE) == {"eth0": {"chassis": "leaf-1", "port": "swp7"}}


def test_several_neighbours_come_as_a_list_and_a_chassis_without_a_name_is_left_out():
    assert neighbours_parse(SEVERAL) == {
        "eth0": {"chassis": "leaf-1", "port": "swp7"},
        "eth1": {"chassis": "leaf-2.dc1.example.com", "port": "Ethernet1/7"},
    }


def test_no_neighbours_is_an_empty_answer():
    assert neighbours_parse({"lldp": {}}) == {} == neighbours_parse({})


def test_without_lldpctl_neighbours_are_skipped_with_the_reason_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="twin_agent.lldp")
    lldp = Lldp(command="no-such-lldpctl")
    assert lldp.neighbours() == {} and lldp.neighbours() == {}
    assert lldp.skipped == "no-such-lldpctl is not installed (lldpd)"
    assert sum("lldp neighbours skipped" in r.getMessage() for r in caplog.records) == 1


def test_lldpctl_without_lldpd_is_skipped_saying_so(tmp_path, monkeypatch):
    _lldpctl(tmp_path, monkeypatch, fails="lldpctl: unable to connect to socket /run/lldpd.socket")
    lldp = Lldp()
    assert lldp.neighbours() == {}
    assert lldp.skipped == "lldpctl failed (is lldpd running?): lldpctl: unable to connect to socket /run/lldpd.socket"


def test_neighbours_are_read_again_only_after_the_refresh(tmp_path, monkeypatch):
    _lldpctl(tmp_path, monkeypatch, document=ONE)
    now = [0.0]
    lldp = Lldp(refresh_seconds=60, clock=lambda: now[0])
    assert lldp.neighbours() == {"eth0": {"chassis": "leaf-1", "port": "swp7"}}
    (tmp_path / "bin" / "lldp.json").write_text(json.dumps(SEVERAL))
    now[0] = 59
    assert len(lldp.neighbours()) == 1
    now[0] = 60
    assert len(lldp.neighbours()) == 2


def test_the_sample_carries_each_nics_neighbour_in_the_servers_shape(tmp_path, monkeypatch):
    nic = interfaces_read()[0]["name"]  # a real interface of this machine
    document = {"lldp": {"interface": {nic: ONE["lldp"]["interface"]["eth0"]}}}
    _lldpctl(tmp_path, monkeypatch, document=document)
    sample = Collector(hostname="test-host", lldp=Lldp()).sample()
    by_name = {i["name"]: i for i in sample["interfaces"]}
    assert by_name[nic]["neighbor"] == {"chassis": "leaf-1", "port": "swp7"}
    assert all("neighbor" not in i for name, i in by_name.items() if name != nic)
    checked = sample_validate(sample_bytes(sample), now=timezone.now(), max_future_skew=timedelta(seconds=300))
    assert isinstance(checked, SampleIn), checked

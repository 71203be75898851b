"""The agent's configuration: a TOML file, flags over it, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from twin_agent.cli import main
from twin_agent.commands import DEFAULT_ALLOW
from twin_agent.config import Config, ConfigError, config_load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_the_file_is_read_and_flags_win_over_it(tmp_path):
    path = write(
        tmp_path,
        'server = "https://twin.example.com"\nrack = "R1"\nposition = {x = 1, y = 0.5, z = -2}\n'
        'interval = 30\nallow = ["ping", "shell"]\nlong_poll = false\n',
    )
    config = config_load(path, {"rack": "R2", "interval": None, "state_dir": str(tmp_path)})
    assert config == Config(
        server="https://twin.example.com",
        state_dir=tmp_path,
        rack="R2",
        position={"x": 1.0, "y": 0.5, "z": -2.0},
        interval=30.0,
        allow=("ping", "shell"),
        long_poll=False,
    )


def test_without_a_file_the_defaults_hold_and_shell_is_not_allowed(tmp_path):
    config = config_load(None, {"state_dir": str(tmp_path)})
    assert config.allow == DEFAULT_ALLOW and "shell" not in config.allow
    assert config.interval is None  # the server's heartbeat


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("intervall = 10\n", "unknown keys ['intervall']"),
        ('server = "twin.example.com"\n', "give the twin's URL"),
        ("interval = 0\n", "interval = 0.0"),
        ("interval = 4000\n", "from 0.1 to 3600"),
        ('allow = ["ping", "reboot"]\n', "unknown actions ['reboot']"),
        ("position = {x = 1, y = 2}\n", "exactly x, y and z"),
        ("spool_max_samples = 0\n", "at least 1"),
        ('batch_max_samples = "many"\n', "not a valid value"),
        ('log_format = "xml"\n', "log_format must be one of"),
        ("server = [\n", "agent.toml"),
    ],
)
def test_a_configuration_that_cannot_work_is_refused_naming_the_key(tmp_path, text, complaint):
    with pytest.raises(ConfigError) as refused:
        config_load(write(tmp_path, text))
    assert complaint in str(refused.value)


def test_the_command_line_reports_a_bad_configuration_and_exits_1(tmp_path, capsys):
    assert main(["status", "--config", str(write(tmp_path, "colour = 1\n"))]) == 1
    assert "unknown keys ['colour']" in capsys.readouterr().err


def test_run_without_enrollment_says_how_to_enroll(tmp_path, capsys):
    assert main(["run", "--state-dir", str(tmp_path / "empty")]) == 1
    assert "twin-agent enroll --server URL --enrollment-key KEY" in capsys.readouterr().err

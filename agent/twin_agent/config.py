"""The agent's configuration: a small TOML file, then command-line flags over it.

Every key of the file is also a flag (``batch_max_samples`` is
``--batch-max-samples``); unknown keys are refused, so a typo is not silently
ignored. ``agent/README.md`` lists them.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from twin_agent.commands import CATALOGUE, DEFAULT_ALLOW

DEFAULT_CONFIG_PATH = Path("/etc/twin-agent/agent.toml")
DEFAULT_STATE_DIR = Path("/var/lib/twin-agent")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """The configuration is unusable; the message names the key and why."""


@dataclass(frozen=True)
class Config:
    """Everything the agent can be told. ``None`` means "ask the server" or "not set"."""

    server: str | None = None  # the twin's base URL, e.g. https://twin.example.com
    state_dir: Path = DEFAULT_STATE_DIR  # credential, spool, commands: keep it across reboots
    hostname: str | None = None  # default: this machine's host name, lower-cased
    display_name: str | None = None
    ip: str | None = None
    rack: str | None = None
    position: dict[str, float] | None = None  # {x, y, z}: x and z on the floor, y the height in the rack
    interval: float | None = None  # seconds between samples; default: the server's heartbeat
    batch_max_samples: int = 500
    spool_max_samples: int = 100_000  # per host; about 11 days at a 10 s interval, ~35 MB on disk
    allow: tuple[str, ...] = DEFAULT_ALLOW  # the actions this agent runs; add "shell" to allow it
    shell_timeout_max: float = 300.0
    long_poll: bool = True  # hold GET /api/commands/pending open for faster commands
    backoff_max: float = 60.0
    request_timeout: float = 15.0
    ca_file: str | None = None  # a CA bundle for a server with a private certificate
    log_format: str = "text"
    log_level: str = "info"


def _check(config: Config) -> Config:
    """Refuse values that cannot work, naming the key."""
    if config.server is not None and not config.server.startswith(("http://", "https://")):
        raise ConfigError(f"server = {config.server!r}: give the twin's URL, e.g. https://twin.example.com")
    if config.interval is not None and not (0.1 <= config.interval <= 3600):
        raise ConfigError(f"interval = {config.interval}: seconds from 0.1 to 3600")
    for name in ("batch_max_samples", "spool_max_samples"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    for name in ("shell_timeout_max", "backoff_max", "request_timeout"):
        if not getattr(config, name) > 0:
            raise ConfigError(f"{name} must be positive")
    unknown = sorted(set(config.allow) - set(CATALOGUE))
    if unknown:
        raise ConfigError(f"allow: unknown actions {unknown}; the catalogue is {list(CATALOGUE)}")
    if config.position is not None:
        if set(config.position) != {"x", "y", "z"}:
            raise ConfigError("position needs exactly x, y and z (metres: x and z on the floor, y the height)")
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in config.position.values()):
            raise ConfigError("position: x, y and z must be finite numbers")
    if config.log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format must be one of {LOG_FORMATS}")
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {LOG_LEVELS}")
    return config


def _coerce(name: str, value: Any) -> Any:
    """Values of a TOML file or a flag, in the field's type."""
    try:
        if name == "state_dir":
            return Path(value)
        if name == "allow":
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            return tuple(str(v) for v in value)
        if name == "position" and value is not None:
            return {k: float(v) for k, v in dict(value).items()}
        if name in ("batch_max_samples", "spool_max_samples"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if name in ("interval", "shell_timeout_max", "backoff_max", "request_timeout") and value is not None:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if name == "long_poll":
            if not isinstance(value, bool):
                raise ValueError
            return value
        return value if value is None else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} = {value!r} is not a valid value") from None


def config_load(path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Read ``path`` (the default file only if it exists) and apply ``overrides`` (flags that were given)."""
    values: dict[str, Any] = {}
    explicit = path is not None
    path = path or DEFAULT_CONFIG_PATH
    if path.exists() or explicit:
        try:
            values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}")
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    config = replace(Config(), **{name: _coerce(name, value) for name, value in values.items()})
    return _check(config)

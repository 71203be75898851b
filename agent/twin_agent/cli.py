"""``twin-agent``: enroll, run, status, simulate."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from twin_agent import __version__
from twin_agent.collect import platform_name
from twin_agent.config import LOG_FORMATS, LOG_LEVELS, Config, ConfigError, config_load
from twin_agent.logs import logging_setup
from twin_agent.protocol import EnrollmentRefused, host_register
from twin_agent.spool import Spool
from twin_agent.state import SPOOL_FILE, StateError, credential_load, credential_save
from twin_agent.transport import Http, TransportError

EXIT_USAGE = 1


def _position(raw: str) -> dict[str, float]:
    try:
        x, y, z = (float(part) for part in raw.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("position is x,y,z in metres, e.g. 1.2,0.4,-0.8") from None
    return {"x": x, "y": y, "z": z}


def _config_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that override keys of the configuration file (same names, dashes for underscores)."""
    parser.add_argument("--config", type=Path, help="TOML configuration file (default /etc/twin-agent/agent.toml)")
    parser.add_argument("--server", help="the twin's base URL, e.g. https://twin.example.com")
    parser.add_argument("--state-dir", type=Path, help="credential and spool (default /var/lib/twin-agent)")
    parser.add_argument("--hostname", help="this host's name on the twin (default: the machine's host name)")
    parser.add_argument("--display-name")
    parser.add_argument("--ip")
    parser.add_argument("--rack")
    parser.add_argument("--position", type=_position, help="x,y,z in metres: x and z on the floor, y the height")
    parser.add_argument("--interval", type=float, help="seconds between samples (default: the server's heartbeat)")
    parser.add_argument("--batch-max-samples", type=int)
    parser.add_argument("--spool-max-samples", type=int)
    parser.add_argument("--allow", help="comma-separated actions this agent runs, e.g. ping,collect-now,shell")
    parser.add_argument("--shell-timeout-max", type=float)
    parser.add_argument(
        "--long-poll", action=argparse.BooleanOptionalAction, default=None, help="hold the commands long poll"
    )
    parser.add_argument("--backoff-max", type=float, help="longest wait between retries, in seconds")
    parser.add_argument("--request-timeout", type=float)
    parser.add_argument("--ca-file")
    parser.add_argument("--log-format", choices=LOG_FORMATS)
    parser.add_argument("--log-level", choices=LOG_LEVELS)


CONFIG_KEYS = tuple(f.name for f in fields(Config))


def _config(args: argparse.Namespace) -> Config:
    return config_load(args.config, {key: getattr(args, key, None) for key in CONFIG_KEYS})


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin-agent", description="The digital twin's reference agent.")
    parser.add_argument("--version", action="version", version=f"twin-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    enroll = commands.add_parser("enroll", help="register this host and store its credential")
    _config_flags(enroll)
    enroll.add_argument(
        "--enrollment-key",
        default=os.environ.get("TWIN_ENROLLMENT_KEY"),
        help="the key an operator created (or TWIN_ENROLLMENT_KEY in the environment)",
    )

    run = commands.add_parser("run", help="collect and send metrics, run commands, until stopped")
    _config_flags(run)

    status = commands.add_parser("status", help="print the credential (without its secret) and the spool, as JSON")
    _config_flags(status)

    simulate = commands.add_parser("simulate", help="drive a fleet of simulated hosts against a twin")
    from twin_agent.simulate import simulate_arguments

    simulate_arguments(simulate)
    return parser


def enroll(args: argparse.Namespace, config: Config) -> int:
    if not args.enrollment_key:
        print("twin-agent enroll: give --enrollment-key (or TWIN_ENROLLMENT_KEY).", file=sys.stderr)
        return EXIT_USAGE
    if not config.server:
        print("twin-agent enroll: give --server (or server in the configuration file).", file=sys.stderr)
        return EXIT_USAGE
    hostname = config.hostname or socket.gethostname().lower()
    http = Http(config.server, timeout=config.request_timeout, ca_file=config.ca_file)
    try:
        credential = host_register(
            http=http,
            enrollment_key=args.enrollment_key,
            hostname=hostname,
            platform=platform_name(),
            agent_version=__version__,
            display_name=config.display_name,
            ip=config.ip,
            rack=config.rack,
            position=config.position,
        )
    except EnrollmentRefused as exc:
        print(f"twin-agent enroll: the server refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TransportError as exc:
        print(f"twin-agent enroll: cannot reach {config.server}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = credential_save(state_dir=config.state_dir, credential=credential)
    print(
        f"Enrolled {credential.hostname} with {credential.server} (twin {credential.twin_id}); "
        f"credential in {path} (mode 0600). Start it with 'twin-agent run --state-dir {config.state_dir}'."
    )
    return 0


def run(config: Config) -> int:
    from twin_agent.agent import Agent

    logging_setup(fmt=config.log_format, level=config.log_level)
    try:
        credential = credential_load(state_dir=config.state_dir)
    except StateError as exc:
        logging.getLogger("twin_agent").error("%s", exc)
        return EXIT_USAGE
    return Agent(config=config, credential=credential).run()


def status(config: Config) -> int:
    try:
        credential = credential_load(state_dir=config.state_dir)
    except StateError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    report: dict[str, Any] = {
        "hostname": credential.hostname,
        "server": credential.server,
        "keyId": credential.key_id,
        "twinId": credential.twin_id,
        "enrolledAt": credential.enrolled_at,
    }
    spool_path = config.state_dir / SPOOL_FILE
    if spool_path.exists():
        spool = Spool(spool_path, max_samples=config.spool_max_samples)
        report["spool"] = {"waiting": spool.depth(credential.hostname), **spool.counters(credential.hostname)}
        spool.close()
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser_build().parse_args(argv)
    if args.command == "simulate":
        from twin_agent.simulate import simulate_main

        return simulate_main(args)
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"twin-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "enroll":
        return enroll(args, config)
    if args.command == "status":
        return status(config)
    return run(config)

"""The host's credential, kept in a state file only its owner can read.

The file holds the signing secret: it is written with mode 0600 into a state
directory of mode 0700, through a temporary file renamed into place, so a
crash never leaves half a credential.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CREDENTIAL_FILE = "credential.json"
SPOOL_FILE = "spool.sqlite3"


class StateError(Exception):
    """The state directory or the credential in it is unusable; the message says what to do."""


@dataclass(frozen=True)
class Credential:
    """What registration gave this host: its name on the twin and its own signing key."""

    server: str
    hostname: str
    key_id: str
    signing_secret: str
    heartbeat_seconds: float
    twin_id: str
    enrolled_at: str


def state_dir_ensure(path: Path) -> Path:
    """Create the state directory (0700) if needed and refuse one others can read."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_file_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable and writable by the owner only."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older file of that name may have had looser bits
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def credential_save(*, state_dir: Path, credential: Credential) -> Path:
    path = state_dir_ensure(state_dir) / CREDENTIAL_FILE
    private_file_write(path, json.dumps(asdict(credential), indent=2).encode() + b"\n")
    return path


def credential_load(*, state_dir: Path) -> Credential:
    """The stored credential, or a ``StateError`` telling how to enroll."""
    path = state_dir / CREDENTIAL_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise StateError(
            f"No credential in {state_dir}: enroll this host first with "
            f"'twin-agent enroll --server URL --enrollment-key KEY --state-dir {state_dir}'."
        ) from None
    except (OSError, ValueError) as exc:
        raise StateError(f"Cannot read {path}: {exc}") from None
    if path.stat().st_mode & 0o077:
        raise StateError(f"{path} is readable by others; run 'chmod 600 {path}' (it holds the signing secret).")
    try:
        return Credential(**raw)
    except TypeError as exc:
        raise StateError(f"{path} is not a credential this agent wrote ({exc}); enroll again.") from None

"""The disk spool: samples wait here, in SQLite (WAL mode), until the server has acknowledged them.

Nothing lost, nothing stored twice:

1. A collected sample is committed to ``samples`` before anything else.
2. Before a send, the oldest samples are numbered into a batch in one
   transaction: they are marked with its ``agent_session`` and ``sequence``,
   from which its body is rebuilt byte for byte. From then on every try (and
   every try after a restart, a ``kill -9`` or a reboot) sends that same
   batch, so a server that stored it already answers ``duplicate`` instead of
   storing it twice.
3. Only an acknowledgement (``2xx``) deletes the batch.

The spool is bounded per stream: past ``max_samples`` waiting samples, the
oldest unbatched ones are deleted, counted and reported. A numbered batch is
never dropped, because the server may have stored it already (its answer was
lost): the bound is ``max_samples`` plus the batch in flight.

One spool serves several *streams* (one per host): the agent has one, the
fleet simulator one per simulated host, through the same code.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so a sample id names one sample for good
    stream TEXT NOT NULL,
    body BLOB NOT NULL,
    session TEXT,                          -- the batch it was numbered into, NULL while unbatched
    sequence INTEGER
);
CREATE INDEX IF NOT EXISTS samples_stream_batch ON samples (stream, sequence, id);
CREATE TABLE IF NOT EXISTS batches (
    stream TEXT NOT NULL,
    session TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (stream, session, sequence)
);
CREATE TABLE IF NOT EXISTS sessions (
    stream TEXT NOT NULL,
    session TEXT NOT NULL,
    last_sequence INTEGER NOT NULL,
    PRIMARY KEY (stream, session)
);
CREATE TABLE IF NOT EXISTS counters (
    stream TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (stream, name)
);
CREATE TABLE IF NOT EXISTS meta (
    stream TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (stream, key)
);
"""

# What the counters count, per stream.
COLLECTED = "collected"  # samples added to the spool
DELIVERED = "delivered"  # samples in batches the server acknowledged (stored now or before)
REJECTED = "rejected"  # samples the server refused, one by one or with their whole batch
DROPPED = "dropped"  # samples deleted unsent because the spool was full
COUNTERS = (COLLECTED, DELIVERED, REJECTED, DROPPED)


@dataclass(frozen=True)
class Batch:
    """A numbered batch: its exact body and the range of spool ids of its samples."""

    stream: str
    session: str
    sequence: int
    body: bytes
    samples: int
    first_id: int
    last_id: int


def batch_body(*, session: str, sequence: int, samples: list[bytes]) -> bytes:
    """The batch as the server reads it (docs/api.md): envelope first, then the samples' own JSON."""
    head = b'{"agent_session":%s,"sequence":%d,"samples":[' % (json.dumps(session).encode(), sequence)
    return head + b",".join(samples) + b"]}"


class Spool:
    """Samples waiting for the server, per stream, in one SQLite file. Thread-safe."""

    def __init__(self, path: Path, *, max_samples: int = 100_000, durable: bool = True) -> None:
        """Open (or create) the spool at ``path``.

        ``durable`` makes every commit wait for the disk (``synchronous=FULL``),
        so a power cut loses no sample the spool took; without it (``NORMAL``,
        the simulator's choice) a power cut may lose the last commits, while a
        killed process still loses nothing.
        """
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self.path = path
        self.max_samples = max_samples
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.executescript(SCHEMA)
        # Depths are kept in memory (one process owns a spool), so the bound costs no COUNT per sample.
        self._unbatched: dict[str, int] = dict(
            self._db.execute("SELECT stream, COUNT(*) FROM samples WHERE sequence IS NULL GROUP BY stream")
        )
        self._batched: dict[str, int] = dict(
            self._db.execute("SELECT stream, COUNT(*) FROM samples WHERE sequence IS NOT NULL GROUP BY stream")
        )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), committed on success, rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def schema_ensure(self, script: str) -> None:
        """Create tables of another module (the commands' invocations) in this database."""
        with self._lock:
            self._db.executescript(script)

    def read(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    @staticmethod
    def _count(db: sqlite3.Connection, stream: str, name: str, n: int) -> None:
        if n:
            db.execute(
                "INSERT INTO counters (stream, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT (stream, name) DO UPDATE SET value = value + excluded.value",
                (stream, name, n),
            )

    def add(self, *, stream: str, sample: bytes) -> tuple[int, int]:
        """Spool one sample (its JSON bytes); return its id and how many old samples the bound dropped."""
        with self.transaction() as db:
            sample_id = db.execute("INSERT INTO samples (stream, body) VALUES (?, ?)", (stream, sample)).lastrowid
            self._count(db, stream, COLLECTED, 1)
            depth = self._unbatched.get(stream, 0) + 1
            dropped = max(0, depth - self.max_samples)
            if dropped:
                db.execute(
                    "DELETE FROM samples WHERE id IN "
                    "(SELECT id FROM samples WHERE stream = ? AND sequence IS NULL ORDER BY id LIMIT ?)",
                    (stream, dropped),
                )
                self._count(db, stream, DROPPED, dropped)
            self._unbatched[stream] = depth - dropped
        assert sample_id is not None
        return sample_id, dropped

    def batch_next(self, *, stream: str, session: str, max_samples: int) -> Batch | None:
        """The batch to send now: the oldest one already numbered, else a new one of the oldest samples.

        Numbering a batch and taking its samples out of the unbatched ones is
        one transaction: after a crash either side, each sample is in exactly
        one place, and a numbered batch's body is rebuilt byte for byte from
        its rows.
        """
        with self.transaction() as db:
            row = db.execute(
                "SELECT session, sequence FROM batches WHERE stream = ? ORDER BY rowid LIMIT 1", (stream,)
            ).fetchone()
            if row is None:
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM samples WHERE stream = ? AND sequence IS NULL ORDER BY id LIMIT ?",
                        (stream, max_samples),
                    )
                ]
                if not ids:
                    return None
                row = (session, self._batch_number(db, stream=stream, session=session, ids=ids))
            return self._batch_read(db, stream=stream, session=row[0], sequence=row[1])

    def _batch_number(self, db: sqlite3.Connection, *, stream: str, session: str, ids: list[int]) -> int:
        """Give the samples ``ids`` the next sequence of the session; return it."""
        last = db.execute(
            "SELECT last_sequence FROM sessions WHERE stream = ? AND session = ?", (stream, session)
        ).fetchone()
        sequence = (last[0] if last else 0) + 1
        db.execute(
            "INSERT INTO sessions (stream, session, last_sequence) VALUES (?, ?, ?) "
            "ON CONFLICT (stream, session) DO UPDATE SET last_sequence = excluded.last_sequence",
            (stream, session, sequence),
        )
        db.execute(
            "INSERT INTO batches (stream, session, sequence, samples, created_at) VALUES (?, ?, ?, ?, ?)",
            (stream, session, sequence, len(ids), time.time()),
        )
        db.executemany(
            "UPDATE samples SET session = ?, sequence = ? WHERE id = ?", [(session, sequence, i) for i in ids]
        )
        self._unbatched[stream] = self._unbatched.get(stream, 0) - len(ids)
        self._batched[stream] = self._batched.get(stream, 0) + len(ids)
        return sequence

    @staticmethod
    def _batch_read(db: sqlite3.Connection, *, stream: str, session: str, sequence: int) -> Batch:
        rows = db.execute(
            "SELECT id, body FROM samples WHERE stream = ? AND sequence = ? AND session = ? ORDER BY id",
            (stream, sequence, session),
        ).fetchall()
        body = batch_body(session=session, sequence=sequence, samples=[r[1] for r in rows])
        return Batch(stream, session, sequence, body, len(rows), rows[0][0], rows[-1][0])

    def batch_done(self, batch: Batch, *, rejected: int = 0) -> None:
        """The server acknowledged the batch (``rejected`` of its samples refused): forget it."""
        with self.transaction() as db:
            key = (batch.stream, batch.session, batch.sequence)
            if not db.execute("DELETE FROM batches WHERE stream = ? AND session = ? AND sequence = ?", key).rowcount:
                return  # already forgotten (two threads flushed the same batch)
            db.execute("DELETE FROM samples WHERE stream = ? AND session = ? AND sequence = ?", key)
            self._count(db, batch.stream, DELIVERED, batch.samples - rejected)
            self._count(db, batch.stream, REJECTED, rejected)
            self._batched[batch.stream] -= batch.samples

    def batch_split(self, batch: Batch, *, session: str) -> None:
        """Renumber a batch the server found too large as two halves; it stored none of it."""
        with self.transaction() as db:
            key = (batch.stream, batch.session, batch.sequence)
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM samples WHERE stream = ? AND session = ? AND sequence = ? ORDER BY id", key
                )
            ]
            db.execute("DELETE FROM batches WHERE stream = ? AND session = ? AND sequence = ?", key)
            self._batched[batch.stream] -= len(ids)
            self._unbatched[batch.stream] = self._unbatched.get(batch.stream, 0) + len(ids)
            half = len(ids) // 2
            self._batch_number(db, stream=batch.stream, session=session, ids=ids[:half])
            self._batch_number(db, stream=batch.stream, session=session, ids=ids[half:])

    def streams(self) -> set[str]:
        """Streams with samples waiting."""
        with self._lock:
            return {s for s in (*self._unbatched, *self._batched) if self.depth(s)}

    def stream_drop(self, stream: str) -> int:
        """Delete every waiting sample of ``stream`` (counted as dropped); return how many."""
        with self.transaction() as db:
            dropped = db.execute("DELETE FROM samples WHERE stream = ?", (stream,)).rowcount
            db.execute("DELETE FROM batches WHERE stream = ?", (stream,))
            self._count(db, stream, DROPPED, dropped)
            self._unbatched[stream] = self._batched[stream] = 0
        return dropped

    def depth(self, stream: str | None = None) -> int:
        """Samples waiting (unbatched and in numbered batches), for one stream or all."""
        with self._lock:
            if stream is not None:
                return self._unbatched.get(stream, 0) + self._batched.get(stream, 0)
            return sum(self._unbatched.values()) + sum(self._batched.values())

    def counters(self, stream: str) -> dict[str, int]:
        values = dict.fromkeys(COUNTERS, 0)
        values.update(self.read("SELECT name, value FROM counters WHERE stream = ?", (stream,)))
        return values

    def meta_get(self, stream: str, key: str) -> str | None:
        rows = self.read("SELECT value FROM meta WHERE stream = ? AND key = ?", (stream, key))
        return rows[0][0] if rows else None

    def meta_set(self, stream: str, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (stream, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (stream, key) DO UPDATE SET value = excluded.value",
                (stream, key, value),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

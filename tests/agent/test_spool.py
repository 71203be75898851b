"""The disk spool: each sample in one place, the same batch after a crash, a bound that drops the oldest."""

from __future__ import annotations

import json
import shutil
import sqlite3

from twin_agent.spool import Spool


def sample(n: int) -> bytes:
    return json.dumps({"hostname": "h", "n": n}, separators=(",", ":")).encode()


def numbers(batch) -> list[int]:
    return [s["n"] for s in json.loads(batch.body)["samples"]]


def test_the_spool_is_sqlite_in_wal_mode(tmp_path):
    Spool(tmp_path / "s.sqlite3").close()
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_batch_carries_the_oldest_samples_numbered_in_its_session(spool):
    for n in range(5):
        spool.add(stream="h", sample=sample(n))
    batch = spool.batch_next(stream="h", session="s1", max_samples=3)
    assert (batch.session, batch.sequence, batch.samples, numbers(batch)) == ("s1", 1, 3, [0, 1, 2])
    envelope = json.loads(batch.body)
    assert (envelope["agent_session"], envelope["sequence"]) == ("s1", 1)
    assert spool.depth("h") == 5


def test_until_acknowledged_the_same_batch_comes_back_byte_for_byte(spool):
    for n in range(3):
        spool.add(stream="h", sample=sample(n))
    first = spool.batch_next(stream="h", session="s1", max_samples=2)
    spool.add(stream="h", sample=sample(3))
    again = spool.batch_next(stream="h", session="s2", max_samples=10)
    assert again == first


def test_an_acknowledged_batch_is_forgotten_and_the_next_takes_the_next_sequence(spool):
    for n in range(3):
        spool.add(stream="h", sample=sample(n))
    first = spool.batch_next(stream="h", session="s1", max_samples=2)
    spool.batch_done(first)
    second = spool.batch_next(stream="h", session="s1", max_samples=2)
    assert (second.sequence, numbers(second)) == (2, [2])
    spool.batch_done(second, rejected=1)
    assert spool.batch_next(stream="h", session="s1", max_samples=2) is None
    assert spool.depth("h") == 0
    assert spool.counters("h") == {"collected": 3, "delivered": 2, "rejected": 1, "dropped": 0}


def test_after_a_kill_the_reopened_spool_resends_the_numbered_batch_under_its_old_session(tmp_path):
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    for n in range(4):
        spool.add(stream="h", sample=sample(n))
    before = spool.batch_next(stream="h", session="before-kill", max_samples=3)
    # What a kill -9 leaves: the committed database files as they are, copied before any close.
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"spool.sqlite3{suffix}").exists():
            shutil.copy(tmp_path / f"spool.sqlite3{suffix}", tmp_path / f"copy.sqlite3{suffix}")
    spool.close()

    reopened = Spool(tmp_path / "copy.sqlite3")
    assert reopened.depth("h") == 4
    after = reopened.batch_next(stream="h", session="after-restart", max_samples=3)
    assert after == before
    reopened.batch_done(after)
    rest = reopened.batch_next(stream="h", session="after-restart", max_samples=3)
    assert (rest.session, rest.sequence, numbers(rest)) == ("after-restart", 1, [3])


def test_a_full_spool_drops_the_oldest_unbatched_samples_and_counts_them(tmp_path):
    spool = Spool(tmp_path / "s.sqlite3", max_samples=3)
    dropped = [spool.add(stream="h", sample=sample(n))[1] for n in range(5)]
    assert dropped == [0, 0, 0, 1, 1]
    assert spool.depth("h") == 3
    assert spool.counters("h")["dropped"] == 2
    assert numbers(spool.batch_next(stream="h", session="s", max_samples=10)) == [2, 3, 4]


def test_a_numbered_batch_is_never_dropped_because_the_server_may_have_stored_it(tmp_path):
    spool = Spool(tmp_path / "s.sqlite3", max_samples=2)
    for n in range(2):
        spool.add(stream="h", sample=sample(n))
    in_flight = spool.batch_next(stream="h", session="s", max_samples=2)
    for n in range(2, 7):
        spool.add(stream="h", sample=sample(n))
    assert spool.batch_next(stream="h", session="s", max_samples=10) == in_flight
    spool.batch_done(in_flight)
    assert numbers(spool.batch_next(stream="h", session="s", max_samples=10)) == [5, 6]
    assert spool.counters("h") == {"collected": 7, "delivered": 2, "rejected": 0, "dropped": 3}


def test_the_bound_counts_survive_a_reopen(tmp_path):
    spool = Spool(tmp_path / "s.sqlite3", max_samples=3)
    for n in range(3):
        spool.add(stream="h", sample=sample(n))
    spool.close()
    spool = Spool(tmp_path / "s.sqlite3", max_samples=3)
    assert spool.add(stream="h", sample=sample(3))[1] == 1
    assert spool.depth("h") == 3


def test_streams_are_bounded_and_numbered_apart(spool):
    spool.add(stream="a", sample=sample(1))
    spool.add(stream="b", sample=sample(2))
    a = spool.batch_next(stream="a", session="s", max_samples=10)
    b = spool.batch_next(stream="b", session="s", max_samples=10)
    assert (a.sequence, numbers(a), b.sequence, numbers(b)) == (1, [1], 1, [2])
    assert spool.depth() == 2


def test_a_batch_too_large_is_split_into_two_new_numbered_halves(spool):
    for n in range(5):
        spool.add(stream="h", sample=sample(n))
    whole = spool.batch_next(stream="h", session="s", max_samples=5)
    spool.batch_split(whole, session="s")
    first = spool.batch_next(stream="h", session="s", max_samples=5)
    spool.batch_done(first)
    second = spool.batch_next(stream="h", session="s", max_samples=5)
    assert [(first.sequence, numbers(first)), (second.sequence, numbers(second))] == [(2, [0, 1]), (3, [2, 3, 4])]


def test_a_stream_can_be_dropped_whole_and_is_counted(spool):
    for n in range(3):
        spool.add(stream="gone", sample=sample(n))
    spool.batch_next(stream="gone", session="s", max_samples=2)
    spool.add(stream="kept", sample=sample(9))
    assert spool.streams() == {"gone", "kept"}
    assert spool.stream_drop("gone") == 3
    assert (spool.streams(), spool.depth(), spool.counters("gone")["dropped"]) == ({"kept"}, 1, 3)
    assert spool.batch_next(stream="gone", session="s", max_samples=5) is None

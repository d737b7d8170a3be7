"""Issue 9: a ledger made before the `retired` state existed (its CHECK refuses it) is migrated when opened,
in one transaction, nothing lost; the old schema is written out here as it shipped."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import psycopg
import pytest

import provision.ledger.sqlite as sqlite_ledger
from provision.errors import InputError
from provision.ledger import open_ledger


def test_a_ledger_made_before_retired_existed_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.ledger.sqlite"
    before = _write_pre_retired_ledger(sqlite3.connect(path))
    ledger = open_ledger(str(path))
    assert [dataclasses.astuple(r) for r in ledger.rows()] == list(before)
    released = ledger.release("board-0001")  # written, then failed: the old CHECK refused this state
    assert released.state == "retired"
    assert ledger.counts()["retired"] == 1 and ledger.counts()["verified"] == 1 and ledger.counts()["free"] == 1
    ledger.close()
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT id FROM triples ORDER BY id")] == [1, 2, 3]
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'triples_free'").fetchone() is not None
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3  # the old history and the release
    db.execute("INSERT INTO triples (product_key, device_name, secret_fingerprint) VALUES ('a1TestProd9', 'n', 'f')")
    assert db.execute("SELECT MAX(id) FROM triples").fetchone()[0] == 4, "ids go on after the copied ones"


def test_a_migration_that_fails_leaves_the_old_ledger_as_it_was(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "old.ledger.sqlite"
    _write_pre_retired_ledger(sqlite3.connect(path))
    image = path.read_bytes()
    monkeypatch.setattr(sqlite_ledger, "TRIPLES_INDEX", "CREATE INDEX triples_free ON no_such_table (id)")
    with pytest.raises(InputError, match="not a usable SQLite ledger"):
        open_ledger(str(path))
    db = sqlite3.connect(path)
    ddl = db.execute("SELECT sql FROM sqlite_master WHERE name = 'triples'").fetchone()[0]
    assert "'retired'" not in ddl and "bound_unless_free CHECK" in ddl
    assert db.execute("SELECT COUNT(*) FROM triples").fetchone()[0] == 3
    assert db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'triples_migrating'").fetchone() is None
    db.close()
    assert len(path.read_bytes()) == len(image)


def test_a_postgresql_ledger_made_before_retired_existed_is_migrated(fresh_pg_db: str) -> None:
    with psycopg.connect(fresh_pg_db) as db:
        for statement in PRE_RETIRED_DDL:
            db.execute(statement.replace("{id}", "BIGSERIAL PRIMARY KEY"))
        for row in PRE_RETIRED_ROWS:
            db.execute(f"INSERT INTO triples ({ROW_INSERT}) VALUES ({', '.join(['%s'] * len(row))})", row)
    ledger = open_ledger(fresh_pg_db)
    assert ledger.release("board-0001").state == "retired"
    assert ledger.counts() == {
        "free": 1, "claimed": 0, "flashing": 0, "flashed": 0, "verified": 1, "failed": 0, "retired": 1
    }  # fmt: skip
    ledger.close()


# The schema of the first ledgers (before `retired`), written out here as it shipped.
PRE_RETIRED_DDL = (
    """CREATE TABLE imports (
        file_sha256 TEXT PRIMARY KEY, file_name TEXT NOT NULL, devices INTEGER NOT NULL, imported_at TEXT NOT NULL)""",
    """CREATE TABLE triples (
        id {id},
        product_key TEXT NOT NULL,
        device_name TEXT NOT NULL,
        secret_fingerprint TEXT NOT NULL,
        mac TEXT,
        state TEXT NOT NULL DEFAULT 'free',
        reason TEXT,
        chip TEXT,
        station TEXT,
        port TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        claimed_at TEXT,
        updated_at TEXT,
        verified_at TEXT,
        CONSTRAINT one_row_per_triple UNIQUE (product_key, device_name),
        CONSTRAINT one_triple_per_mac_per_product UNIQUE (product_key, mac),
        CONSTRAINT known_state CHECK (state IN ('free', 'claimed', 'flashing', 'flashed', 'verified', 'failed')),
        CONSTRAINT bound_unless_free CHECK ((state = 'free') = (mac IS NULL)),
        CONSTRAINT failed_says_why CHECK (state <> 'failed' OR reason IS NOT NULL),
        CONSTRAINT mac_form CHECK (mac IS NULL OR length(mac) = 17))""",
    """CREATE TABLE events (
        id {id}, product_key TEXT NOT NULL, device_name TEXT NOT NULL, mac TEXT, state TEXT NOT NULL,
        reason TEXT, station TEXT, at TEXT NOT NULL)""",
    "CREATE INDEX triples_free ON triples (state, product_key, id)",
)
ROW_INSERT = (
    "id, product_key, device_name, secret_fingerprint, mac, state, reason, chip, station, port, attempts, "
    "claimed_at, updated_at, verified_at"
)
T0, T1 = "2026-11-30T10:00:00.000+00:00", "2026-11-30T10:00:09.000+00:00"
PRE_RETIRED_ROWS = (
    (1, "a1TestProd9", "board-0000", "f0", "02:7e:57:00:00:01", "verified", None, "ESP32", "s1", "p1", 1, T0, T1, T1),
    (2, "a1TestProd9", "board-0001", "f1", "02:7e:57:00:00:02", "failed", "unplugged", "ESP32", "s1", "p2", 1, T0,
     T1, None),
    (3, "a1TestProd9", "board-0002", "f2", None, "free", None, None, None, None, 0, None, None, None),
)  # fmt: skip


def _write_pre_retired_ledger(db) -> tuple[tuple[object, ...], ...]:  # type: ignore[no-untyped-def]
    with db:
        for statement in PRE_RETIRED_DDL:
            db.execute(statement.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"))
        db.executemany(f"INSERT INTO triples ({ROW_INSERT}) VALUES ({', '.join('?' * 14)})", PRE_RETIRED_ROWS)
        db.executemany(
            "INSERT INTO events (product_key, device_name, mac, state, reason, station, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [("a1TestProd9", "board-0000", "02:7e:57:00:00:01", "verified", None, "s1", T1),
             ("a1TestProd9", "board-0001", "02:7e:57:00:00:02", "flashing", None, "s1", T0)],
        )  # fmt: skip
    db.close()
    return tuple(row[1:3] + row[4:] for row in PRE_RETIRED_ROWS)  # as LedgerRow: no id, no fingerprint

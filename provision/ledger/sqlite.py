"""The default ledger: one SQLite file (WAL), every state change in its own IMMEDIATE transaction."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from provision.errors import InputError
from provision.ledger.base import TRIPLE_COLUMNS, TRIPLES_INDEX, SqlLedger, schema, triples_table

__all__ = ["SqliteLedger"]

BUSY_TIMEOUT_S = 60.0
ID_COLUMN = "INTEGER PRIMARY KEY AUTOINCREMENT"


def _migrate_pre_retired(cur: sqlite3.Cursor) -> None:
    """Rebuild a triples table made before the `retired` state, whose CHECKs refuse it.

    SQLite cannot change a CHECK in place, so this is its documented twelve-step rebuild cut to what this
    schema needs (no foreign keys, no views, one index): new table, copy every row with its id, drop the
    old one, rename. It runs inside the caller's BEGIN IMMEDIATE: another station opening the same file
    waits, then finds it migrated; an error leaves the file as it was.
    """
    cur.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'triples'")
    (ddl,) = cur.fetchone()
    if "'retired'" in ddl:
        return
    cur.execute(triples_table(ID_COLUMN, "triples_migrating"))
    cur.execute(
        f"INSERT INTO triples_migrating ({TRIPLE_COLUMNS}) SELECT {TRIPLE_COLUMNS} FROM triples"  # noqa: S608
    )
    cur.execute("DROP TABLE triples")
    cur.execute("ALTER TABLE triples_migrating RENAME TO triples")
    cur.execute(TRIPLES_INDEX)


class SqliteLedger(SqlLedger):
    """A ledger file; one connection per process (each board process opens its own)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"sqlite:{path}"
        # isolation_level=None: this class issues BEGIN IMMEDIATE itself, so the write lock is taken
        # before the first read of a claim and two processes never pick the same free row.
        try:
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._transaction() as cur:
                for statement in schema(ID_COLUMN):
                    cur.execute(statement)
                _migrate_pre_retired(cur)
        except sqlite3.DatabaseError as exc:
            # --ledger pointing at another file or an unreachable place is bad input, not a crash.
            raise InputError(f"{path}: not a usable SQLite ledger ({exc})") from None
        path.chmod(0o600)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    def _serialise_imports(self, cur: sqlite3.Cursor) -> None:
        return None  # BEGIN IMMEDIATE already holds the database's only write lock

    def _pick_free_sql(self, pool_size: int) -> str:
        keys = ", ".join("?" for _ in range(pool_size))
        return (
            "SELECT id, product_key, device_name FROM triples "  # noqa: S608 - only placeholders are interpolated
            f"WHERE state = 'free' AND product_key IN ({keys}) ORDER BY id LIMIT 1"
        )

    def close(self) -> None:
        self._db.close()

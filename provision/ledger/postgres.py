"""A shared ledger on PostgreSQL, so several stations draw from one pool of triples.

A claim locks one free row with `SELECT ... FOR UPDATE SKIP LOCKED`: two stations claiming at the
same moment take different rows instead of waiting on, or both taking, the same one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from provision.errors import EnvironmentProblem, InputError
from provision.ledger.base import PRE_RETIRED_CONSTRAINTS, STATE_CONSTRAINTS, SqlLedger, schema
from provision.ledger.url import host_part, redact_url

__all__ = ["PostgresLedger"]

SCHEMA_LOCK_KEY = 0x616C6979  # pg_advisory_xact_lock keys: concurrent schema creation, concurrent imports
IMPORT_LOCK_KEY = 0x616C697A


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a declared dependency
        raise EnvironmentProblem("PostgreSQL ledgers need psycopg: pip install 'psycopg[binary]'") from exc
    # libpq's messages may quote the URL, password included: none of them is shown, only the host part.
    try:
        return psycopg.connect(url, autocommit=False, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise EnvironmentProblem(
            f"cannot reach the PostgreSQL ledger at {host_part(url)}: {exc.sqlstate or 'no answer'}: "
            "check the host, port, user and password of --ledger"
        ) from None
    except psycopg.Error:
        raise InputError(
            f"--ledger {redact_url(url)}: not a PostgreSQL URL libpq accepts "
            "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE, special characters %-encoded)"
        ) from None


def _migrate_pre_retired(cur: Any) -> None:
    """A ledger made before the `retired` state: swap its state CHECKs for today's, in the open transaction."""
    cur.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'triples'::regclass AND conname = 'known_state'"
    )
    found = cur.fetchone()
    if found is None or "'retired'" in found[0]:
        return
    drops = ", ".join(f"DROP CONSTRAINT IF EXISTS {name}" for name in PRE_RETIRED_CONSTRAINTS)
    adds = ", ".join(f"ADD CONSTRAINT {name} CHECK ({check})" for name, check in STATE_CONSTRAINTS)
    cur.execute(f"ALTER TABLE triples {drops}, {adds}")


def _has_schema(cur: Any) -> bool:
    cur.execute("SELECT to_regclass('triples') IS NOT NULL")
    return bool(cur.fetchone()[0])


class PostgresLedger(SqlLedger):
    placeholder = "%s"

    def __init__(self, url: str, *, create: bool = False) -> None:
        self._db = _connect(url)
        self.description = "postgresql:" + host_part(url)
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            if not create and not _has_schema(cur):
                self._db.close()
                raise InputError(
                    f"{self.description}: this database holds no ledger; a new one is made only on purpose: "
                    "provision ledger init, or --new-ledger on the first run"
                )
            for statement in schema("BIGSERIAL PRIMARY KEY"):
                cur.execute(statement)
            _migrate_pre_retired(cur)

    @staticmethod
    def exists(url: str) -> bool:
        db = _connect(url)
        try:
            with db.cursor() as cur:
                return _has_schema(cur)
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._db.transaction(), self._db.cursor() as cur:
            yield cur

    def _serialise_imports(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (IMPORT_LOCK_KEY,))

    def _pick_free_sql(self, pool_size: int) -> str:
        keys = ", ".join("?" for _ in range(pool_size))
        return (
            "SELECT id, product_key, device_name FROM triples "  # noqa: S608
            f"WHERE state = 'free' AND product_key IN ({keys}) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        )

    def close(self) -> None:
        self._db.close()

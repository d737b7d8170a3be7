"""A shared ledger on PostgreSQL, so several stations draw from one pool of triples.

A claim locks one free row with `SELECT ... FOR UPDATE SKIP LOCKED`: two stations claiming at the
same moment take different rows instead of waiting on, or both taking, the same one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from provision.errors import EnvironmentProblem, InputError
from provision.ledger.base import SqlLedger, schema

__all__ = ["PostgresLedger"]

SCHEMA_LOCK_KEY = 0x616C6979  # pg_advisory_xact_lock keys: concurrent schema creation, concurrent imports
IMPORT_LOCK_KEY = 0x616C697A


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a declared dependency
        raise EnvironmentProblem("PostgreSQL ledgers need psycopg: pip install 'psycopg[binary]'") from exc
    try:
        return psycopg.connect(url, autocommit=False, connect_timeout=10)
    except psycopg.OperationalError as exc:
        # The URL may carry a password: name only the host part in the message.
        where = url.split("@")[-1]
        raise EnvironmentProblem(
            f"cannot reach the PostgreSQL ledger at {where}: {exc.sqlstate or 'no answer'}"
        ) from exc


def _has_schema(cur: Any) -> bool:
    cur.execute("SELECT to_regclass('triples') IS NOT NULL")
    return bool(cur.fetchone()[0])


class PostgresLedger(SqlLedger):
    placeholder = "%s"

    def __init__(self, url: str, *, create: bool = False) -> None:
        self._db = _connect(url)
        self.description = "postgresql:" + url.split("@")[-1]  # the URL may carry a password: host part only
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

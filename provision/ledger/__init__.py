"""Which triple went to which MAC: SQLite by default (a file next to the CSV), PostgreSQL to share.

`open_ledger(url, csv_path)` picks the backend: `postgresql://...` or `postgres://...` opens a shared
ledger; `sqlite:///PATH`, a plain path, or nothing (then `<csv stem>.ledger.sqlite` beside the CSV)
opens a file.
"""

from __future__ import annotations

from pathlib import Path

from provision.ledger.base import (
    STATES,
    Claim,
    ImportResult,
    LedgerRow,
    NoTripleLeft,
    SqlLedger,
    secret_fingerprint,
)

__all__ = [
    "STATES",
    "Claim",
    "ImportResult",
    "LedgerRow",
    "NoTripleLeft",
    "SqlLedger",
    "default_ledger_path",
    "open_ledger",
    "secret_fingerprint",
]


def default_ledger_path(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.stem + ".ledger.sqlite")


def open_ledger(url: str | None, csv_path: Path | None = None) -> SqlLedger:
    """Open (and create when new) the ledger named by `url`, or the default one beside `csv_path`."""
    if url and url.startswith(("postgresql://", "postgres://")):
        from provision.ledger.postgres import PostgresLedger

        return PostgresLedger(url)
    from provision.ledger.sqlite import SqliteLedger

    if url:
        return SqliteLedger(Path(url.removeprefix("sqlite://")))
    if csv_path is None:
        raise ValueError("open_ledger needs a URL or the device CSV's path")
    return SqliteLedger(default_ledger_path(csv_path))

"""Which triple went to which MAC: SQLite by default (a file next to the CSV), PostgreSQL to share.

`open_ledger(url, csv_path)` picks the backend: `postgresql://...` or `postgres://...` opens a shared
ledger; `sqlite:///PATH`, a plain path, or nothing (then `<csv stem>.ledger.sqlite` beside the CSV)
opens a file.
"""

from __future__ import annotations

from pathlib import Path

from provision.errors import InputError
from provision.ledger.base import (
    STATES,
    Claim,
    ImportResult,
    LedgerRow,
    NoTripleLeft,
    SqlLedger,
    secret_fingerprint,
)
from provision.ledger.url import redact_url

__all__ = [
    "STATES",
    "Claim",
    "ImportResult",
    "LedgerRow",
    "NoTripleLeft",
    "SqlLedger",
    "default_ledger_path",
    "ledger_exists",
    "open_ledger",
    "redact_url",
    "secret_fingerprint",
]


def default_ledger_path(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.stem + ".ledger.sqlite")


def _missing(path: Path, csv_path: Path | None) -> InputError:
    where = (csv_path.parent if csv_path else path.parent) or Path(".")
    found = sorted(str(p) for p in where.glob("*.ledger.sqlite")) if where.is_dir() else []
    listing = f"ledgers in {where}: {', '.join(found)}" if found else f"no ledger in {where}"
    return InputError(
        f"{path}: no such ledger ({listing}); a new one is made only on purpose: "
        "provision ledger init, or --new-ledger on the first run"
    )


def open_ledger(url: str | None, csv_path: Path | None = None, *, create: bool = False) -> SqlLedger:
    """Open the ledger named by `url`, or the default one beside `csv_path`.

    Args:
        create: make it when it does not exist yet; otherwise a missing ledger is an error, so a
            typo in --ledger or a renamed CSV never starts an empty ledger that hands out triples again.

    Raises:
        InputError: the ledger does not exist and `create` is false.
    """
    if url and url.startswith(("postgresql://", "postgres://")):
        from provision.ledger.postgres import PostgresLedger

        return PostgresLedger(url, create=create)
    from provision.ledger.sqlite import SqliteLedger

    if url:
        path = Path(url.removeprefix("sqlite://"))
    elif csv_path is not None:
        path = default_ledger_path(csv_path)
    else:
        raise ValueError("open_ledger needs a URL or the device CSV's path")
    if not create and not path.exists():
        raise _missing(path, csv_path)
    return SqliteLedger(path)


def ledger_exists(url: str | None, csv_path: Path | None = None) -> bool:
    if url and url.startswith(("postgresql://", "postgres://")):
        from provision.ledger.postgres import PostgresLedger

        return PostgresLedger.exists(url)
    path = Path(url.removeprefix("sqlite://")) if url else default_ledger_path(csv_path or Path("."))
    return path.exists()

"""The ledger's logic in portable SQL: import a device file once, bind triples to MACs, track each board.

The schema carries the rules, so a bug in this code or a second station cannot break them:
  - UNIQUE (product_key, device_name): a triple is one row, and a row holds at most one MAC;
  - UNIQUE (product_key, mac): a MAC holds at most one triple of a product;
  - CHECK: a row is bound to a MAC exactly when it is not free; a failed row says why.
The DeviceSecret is not stored: the station reads it from the device file by (ProductKey, DeviceName)
when it builds the image. The ledger keeps a SHA-256 fingerprint of (ProductKey, DeviceName,
DeviceSecret) only to tell an identical re-import from a conflicting one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from provision.credentials import Device
from provision.errors import InputError, ProvisionError

__all__ = [
    "PRE_RETIRED_CONSTRAINTS",
    "RETIRED",
    "STATES",
    "STATE_CONSTRAINTS",
    "TRIPLES_INDEX",
    "TRIPLE_COLUMNS",
    "Claim",
    "ImportResult",
    "LedgerRow",
    "NoTripleLeft",
    "SqlLedger",
    "schema",
    "secret_fingerprint",
    "state_constraints_sql",
    "triples_table",
]

FREE = "free"
RETIRED = "retired"
# retired: the triple reached a board that may still hold it, so it is never handed out again; it is
# unbound (mac NULL) so the board may take another, and its reason names the MAC it went to.
STATES = ("free", "claimed", "flashing", "flashed", "verified", "failed", "retired")
UNBOUND_STATES = ("free", "retired")
ROW_COLUMNS = (
    "product_key, device_name, mac, state, reason, chip, station, port, attempts, claimed_at, updated_at, verified_at"
)


class NoTripleLeft(ProvisionError):
    """Every triple of the pool is bound to a board already."""


@dataclass(frozen=True)
class Claim:
    """The triple bound to a MAC: `again` is true when the MAC already held it before this claim."""

    product_key: str
    device_name: str
    mac: str
    again: bool


@dataclass(frozen=True)
class LedgerRow:
    product_key: str
    device_name: str
    mac: str | None
    state: str
    reason: str | None
    chip: str | None
    station: str | None
    port: str | None
    attempts: int
    claimed_at: str | None
    updated_at: str | None
    verified_at: str | None


@dataclass(frozen=True)
class ImportResult:
    file_sha256: str
    added: int
    already_known: int
    was_imported_before: bool


def secret_fingerprint(device: Device) -> str:
    material = "\0".join((device.product_key, device.device_name, device.device_secret)).encode()
    return hashlib.sha256(material).hexdigest()


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


TRIPLE_COLUMNS = (
    "id, product_key, device_name, secret_fingerprint, mac, state, reason, chip, station, port, attempts, "
    "claimed_at, updated_at, verified_at"
)


# The CHECKs that know the states. Ledgers made before `retired` existed carry the first and the two
# named in PRE_RETIRED_CONSTRAINTS without it, and refuse every retirement: opening one migrates it.
STATE_CONSTRAINTS = (
    ("known_state", "state IN ({})".format(", ".join(f"'{state}'" for state in STATES))),
    ("bound_unless_free_or_retired", "(state IN ('free', 'retired')) = (mac IS NULL)"),
    ("failed_or_retired_says_why", "state NOT IN ('failed', 'retired') OR reason IS NOT NULL"),
)
PRE_RETIRED_CONSTRAINTS = ("known_state", "bound_unless_free", "failed_says_why")


def state_constraints_sql() -> str:
    return ",\n            ".join(f"CONSTRAINT {name} CHECK ({check})" for name, check in STATE_CONSTRAINTS)


def triples_table(id_column: str, name: str = "triples") -> str:
    """The triples table's DDL under `name` (a migration builds the new table beside the old one)."""
    return f"""CREATE TABLE IF NOT EXISTS {name} (
            id {id_column},
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
            {state_constraints_sql()},
            CONSTRAINT mac_form CHECK (mac IS NULL OR length(mac) = 17))"""


TRIPLES_INDEX = "CREATE INDEX IF NOT EXISTS triples_free ON triples (state, product_key, id)"


def schema(id_column: str) -> tuple[str, ...]:
    return (
        """CREATE TABLE IF NOT EXISTS imports (
            file_sha256 TEXT PRIMARY KEY,
            file_name TEXT NOT NULL,
            devices INTEGER NOT NULL,
            imported_at TEXT NOT NULL)""",
        triples_table(id_column),
        """CREATE TABLE IF NOT EXISTS events (
            id {id_column},
            product_key TEXT NOT NULL,
            device_name TEXT NOT NULL,
            mac TEXT,
            state TEXT NOT NULL,
            reason TEXT,
            station TEXT,
            at TEXT NOT NULL)""".replace("{id_column}", id_column),
        TRIPLES_INDEX,
    )


class SqlLedger(ABC):
    """Ledger operations; subclasses give the connection, the transaction and the claim query.

    SQL text is only ever assembled from constant column lists and placeholder counts (hence the S608
    waivers); every value travels as a bound parameter.
    """

    placeholder = "?"
    description = ""

    @abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A cursor inside one write transaction, committed on exit, rolled back on error."""

    @abstractmethod
    def _pick_free_sql(self, pool_size: int) -> str:
        """SELECT id, product_key, device_name of one free row of the pool, locked for this transaction."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _serialise_imports(self, cur: Any) -> None:
        """Make concurrent imports (two stations starting at once) run one after the other."""

    def _q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _in(self, values: Sequence[str]) -> str:
        return "(" + ", ".join("?" for _ in values) + ")"

    # --- import ---------------------------------------------------------------------------------

    def import_devices(self, devices: Sequence[Device], *, file_name: str, file_sha256: str) -> ImportResult:
        """Add the file's triples to the pool once; an identical re-import changes nothing.

        Raises:
            InputError: a triple of the file is already in the ledger with another DeviceSecret;
                nothing is imported.
        """
        with self._transaction() as cur:
            self._serialise_imports(cur)
            cur.execute(self._q("SELECT 1 FROM imports WHERE file_sha256 = ?"), (file_sha256,))
            if cur.fetchone() is not None:
                return ImportResult(file_sha256, 0, len(devices), True)
            known: dict[tuple[str, str], str] = {}
            for product_key in sorted({d.product_key for d in devices}):
                cur.execute(
                    self._q("SELECT device_name, secret_fingerprint FROM triples WHERE product_key = ?"),
                    (product_key,),
                )
                known.update({(product_key, name): fp for name, fp in cur.fetchall()})
            conflicts = [
                f"{file_name}:{d.row}: DeviceSecret: differs from the one the ledger holds for "
                f"{d.product_key}/{d.device_name}; this file conflicts with an earlier import"
                for d in devices
                if (d.product_key, d.device_name) in known
                and known[(d.product_key, d.device_name)] != secret_fingerprint(d)
            ]
            if conflicts:
                raise InputError(*conflicts)
            new = [d for d in devices if (d.product_key, d.device_name) not in known]
            cur.executemany(
                self._q("INSERT INTO triples (product_key, device_name, secret_fingerprint) VALUES (?, ?, ?)"),
                [(d.product_key, d.device_name, secret_fingerprint(d)) for d in new],
            )
            cur.execute(
                self._q("INSERT INTO imports (file_sha256, file_name, devices, imported_at) VALUES (?, ?, ?, ?)"),
                (file_sha256, file_name, len(devices), now()),
            )
            return ImportResult(file_sha256, len(new), len(devices) - len(new), False)

    # --- claims and states ----------------------------------------------------------------------

    def claim(self, mac: str, product_keys: Sequence[str], *, station: str, port: str, chip: str) -> Claim:
        """Bind a free triple of the pool to `mac`, or give back the one it already holds.

        Raises:
            NoTripleLeft: the pool has no free triple.
        """
        mac = mac.lower()
        keys = sorted(set(product_keys))
        with self._transaction() as cur:
            cur.execute(
                self._q(
                    f"SELECT product_key, device_name FROM triples WHERE mac = ? AND product_key IN {self._in(keys)}"  # noqa: S608
                ),
                (mac, *keys),
            )
            held = cur.fetchone()
            if held is not None:
                self._set(cur, held[0], held[1], mac, "claimed", None, station=station, port=port, chip=chip)
                return Claim(held[0], held[1], mac, again=True)
            cur.execute(self._q(self._pick_free_sql(len(keys))), tuple(keys))
            free = cur.fetchone()
            if free is None:
                raise NoTripleLeft(f"no free triple left for product {', '.join(keys)}: import more devices")
            stamp = now()
            cur.execute(
                self._q(
                    "UPDATE triples SET mac = ?, state = 'claimed', reason = NULL, station = ?, port = ?, chip = ?, "
                    "claimed_at = ?, updated_at = ? WHERE id = ? AND state = 'free'"
                ),
                (mac, station, port, chip, stamp, stamp, free[0]),
            )
            self._event(cur, free[1], free[2], mac, "claimed", None, station)
            return Claim(free[1], free[2], mac, again=False)

    def set_state(
        self, claim: Claim, state: str, reason: str | None = None, *, station: str, port: str | None = None
    ) -> None:
        """Move the claimed triple to `state` (failed needs a reason), only while `claim.mac` holds it."""
        if state not in STATES or state == FREE:
            raise ValueError(f"not a board state: {state}")
        with self._transaction() as cur:
            self._set(cur, claim.product_key, claim.device_name, claim.mac, state, reason, station=station, port=port)

    def _set(
        self,
        cur: Any,
        product_key: str,
        device_name: str,
        mac: str,
        state: str,
        reason: str | None,
        *,
        station: str,
        port: str | None = None,
        chip: str | None = None,
    ) -> None:
        stamp = now()
        cur.execute(
            self._q(
                "UPDATE triples SET state = ?, reason = ?, station = ?, port = COALESCE(?, port), "
                "chip = COALESCE(?, chip), updated_at = ?, "
                "attempts = attempts + CASE WHEN ? = 'flashing' THEN 1 ELSE 0 END, "
                "verified_at = CASE WHEN ? = 'verified' THEN ? ELSE verified_at END "
                "WHERE product_key = ? AND device_name = ? AND mac = ?"
            ),
            (state, reason, station, port, chip, stamp, state, state, stamp, product_key, device_name, mac),
        )
        if cur.rowcount != 1:
            raise ProvisionError(f"ledger: {product_key}/{device_name} is no longer bound to {mac}")
        self._event(cur, product_key, device_name, mac, state, reason, station)

    def _event(
        self,
        cur: Any,
        product_key: str,
        device_name: str,
        mac: str | None,
        state: str,
        reason: str | None,
        station: str,
    ) -> None:
        cur.execute(
            self._q(
                "INSERT INTO events (product_key, device_name, mac, state, reason, station, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            (product_key, device_name, mac, state, reason, station, now()),
        )

    def release(self, device_name: str, product_key: str | None = None, *, station: str = "ledger") -> LedgerRow:
        """Unbind a triple that was never verified: free when no board holds it, else retired.

        Free when nothing was ever written with it (never reached `flashing`) or the station erased the
        board and read it back blank since the last write (`provision erase`, or the next flash of that
        board); retired (never handed out again) otherwise, since the board may still hold it.

        Raises:
            InputError: unknown or ambiguous device, not bound, or verified once (then it stays bound).
        """
        with self._transaction() as cur:
            row = self._one_row(cur, device_name, product_key)
            if row.verified_at is not None:
                raise InputError(
                    f"ledger: {row.product_key}/{device_name} was verified on {row.mac} at {row.verified_at}; "
                    "a verified triple is never released"
                )
            if row.mac is None:
                raise InputError(f"ledger: {row.product_key}/{device_name} is not bound to any board")
            if row.attempts == 0 or self._erased_since_written(cur, row):
                cur.execute(
                    self._q(
                        "UPDATE triples SET mac = NULL, state = 'free', reason = NULL, station = NULL, port = NULL, "
                        "chip = NULL, claimed_at = NULL, updated_at = ? WHERE product_key = ? AND device_name = ?"
                    ),
                    (now(), row.product_key, device_name),
                )
                self._event(cur, row.product_key, device_name, row.mac, "released", None, station)
                return replace(row, state=FREE)
            reason = f"released after it was written to {row.mac}; the board may still hold it"
            self._retire(cur, row.product_key, device_name, row.mac, reason, station)
            return replace(row, state=RETIRED, reason=reason)

    def _one_row(self, cur: Any, device_name: str, product_key: str | None) -> LedgerRow:
        sql = f"SELECT {ROW_COLUMNS} FROM triples WHERE device_name = ?"  # noqa: S608
        args: tuple[str, ...] = (device_name,)
        if product_key is not None:
            sql += " AND product_key = ?"
            args += (product_key,)
        cur.execute(self._q(sql), args)
        rows = [LedgerRow(*r) for r in cur.fetchall()]
        if not rows:
            raise InputError(f"ledger: no device named {device_name}")
        if len(rows) > 1:
            raise InputError(f"ledger: {device_name} exists in several products: give --product-key")
        return rows[0]

    def _erased_since_written(self, cur: Any, row: LedgerRow) -> bool:
        cur.execute(
            self._q(
                "SELECT state FROM events WHERE product_key = ? AND device_name = ? AND mac = ? "
                "AND state IN ('flashing', 'erased') ORDER BY id DESC LIMIT 1"
            ),
            (row.product_key, row.device_name, row.mac),
        )
        last = cur.fetchone()
        return last is not None and last[0] == "erased"

    def _retire(self, cur: Any, product_key: str, device_name: str, mac: str | None, reason: str, station: str) -> None:
        cur.execute(
            self._q(
                "UPDATE triples SET mac = NULL, state = 'retired', reason = ?, station = ?, updated_at = ? "
                "WHERE product_key = ? AND device_name = ?"
            ),
            (reason, station, now(), product_key, device_name),
        )
        self._event(cur, product_key, device_name, mac, RETIRED, reason, station)

    # --- what a board holds ---------------------------------------------------------------------

    def bound_to(self, mac: str, product_keys: Sequence[str]) -> LedgerRow | None:
        """The triple of one of `product_keys` bound to `mac`, if any."""
        keys = sorted(set(product_keys))
        with self._transaction() as cur:
            cur.execute(
                self._q(
                    f"SELECT {ROW_COLUMNS} FROM triples WHERE mac = ? AND product_key IN {self._in(keys)}"  # noqa: S608
                ),
                (mac.lower(), *keys),
            )
            found = cur.fetchone()
            return LedgerRow(*found) if found else None

    def adopt(self, product_key: str, device_name: str, mac: str, *, station: str, port: str, chip: str) -> None:
        """Record that `mac` holds a free triple of this ledger (the board was provisioned elsewhere).

        Raises:
            InputError: the triple is unknown here or bound to another board or retired.
        """
        mac = mac.lower()
        with self._transaction() as cur:
            stamp = now()
            cur.execute(
                self._q(
                    "UPDATE triples SET mac = ?, state = 'claimed', reason = NULL, station = ?, port = ?, chip = ?, "
                    "claimed_at = ?, updated_at = ? WHERE product_key = ? AND device_name = ? AND state = 'free'"
                ),
                (mac, station, port, chip, stamp, stamp, product_key, device_name),
            )
            if cur.rowcount != 1:
                raise InputError(
                    f"--adopt: {product_key}/{device_name} is not a free triple of this ledger "
                    "(unknown, bound to another board, or retired): use --reprovision to overwrite it"
                )
            self._event(cur, product_key, device_name, mac, "adopted", None, station)

    def overwrite(self, product_key: str, device_name: str, mac: str, *, station: str) -> None:
        """--reprovision of a board holding a triple not bound to it here: retire it if known, record it."""
        mac = mac.lower()
        with self._transaction() as cur:
            cur.execute(
                self._q("SELECT state FROM triples WHERE product_key = ? AND device_name = ?"),
                (product_key, device_name),
            )
            known = cur.fetchone()
            reason = f"overwritten on {mac} by --reprovision"
            if known is not None and known[0] != RETIRED:
                self._retire(cur, product_key, device_name, mac, reason, station)
            else:
                self._event(cur, product_key, device_name, mac, "overwritten", reason, station)

    def record(self, claim: Claim, event: str, reason: str | None, *, station: str) -> None:
        """A history line for `claim` that changes no state (reprovisioned, erased)."""
        with self._transaction() as cur:
            self._event(cur, claim.product_key, claim.device_name, claim.mac, event, reason, station)

    # --- reading --------------------------------------------------------------------------------

    def rows(self) -> list[LedgerRow]:
        with self._transaction() as cur:
            cur.execute(f"SELECT {ROW_COLUMNS} FROM triples ORDER BY product_key, id")  # noqa: S608
            return [LedgerRow(*r) for r in cur.fetchall()]

    def row_for(self, product_key: str, device_name: str) -> LedgerRow | None:
        with self._transaction() as cur:
            cur.execute(
                self._q(f"SELECT {ROW_COLUMNS} FROM triples WHERE product_key = ? AND device_name = ?"),  # noqa: S608
                (product_key, device_name),
            )
            found = cur.fetchone()
            return LedgerRow(*found) if found else None

    def counts(self) -> dict[str, int]:
        with self._transaction() as cur:
            cur.execute("SELECT state, COUNT(*) FROM triples GROUP BY state")
            found = dict(cur.fetchall())
        return {state: int(found.get(state, 0)) for state in STATES}

    def iter_events(self) -> Iterator[tuple[Any, ...]]:
        with self._transaction() as cur:
            cur.execute("SELECT product_key, device_name, mac, state, reason, station, at FROM events ORDER BY id")
            yield from cur.fetchall()

"""The ledger on SQLite and PostgreSQL: imports, claims, constraints, release rules, concurrent claims."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from flash_testlib import write_devices

from provision.credentials import load_devices
from provision.errors import InputError
from provision.ledger import NoTripleLeft, open_ledger


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = str(tmp_path / "test.ledger.sqlite") if request.param == "sqlite" else request.getfixturevalue("fresh_pg_db")
    open_ledger(url, create=True).close()
    return url


def _import(url: str, csv_path: Path):  # type: ignore[no-untyped-def]
    ledger = open_ledger(url)
    digest = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    try:
        return ledger.import_devices(load_devices(csv_path), file_name=str(csv_path), file_sha256=digest)
    finally:
        ledger.close()


def test_import_once_then_noop_and_conflict_refused(ledger_url: str, tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "a.csv", 5)
    first = _import(ledger_url, csv_path)
    assert (first.added, first.was_imported_before) == (5, False)
    again = _import(ledger_url, csv_path)
    assert (again.added, again.was_imported_before) == (0, True)

    # Same names, new secrets: a conflicting file, refused as a whole, ledger unchanged.
    conflicting = write_devices(tmp_path / "b.csv", 6)
    with pytest.raises(InputError) as refused:
        _import(ledger_url, conflicting)
    assert len(refused.value.lines) == 5 and "conflicts" in refused.value.lines[0]
    ledger = open_ledger(ledger_url)
    assert ledger.counts()["free"] == 5
    ledger.close()

    # A new batch of other devices is added.
    more = write_devices(tmp_path / "c.csv", 3, prefix="batch2")
    assert _import(ledger_url, more).added == 3


def test_claim_is_stable_per_mac_and_runs_out(ledger_url: str, tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "a.csv", 2)
    _import(ledger_url, csv_path)
    ledger = open_ledger(ledger_url)
    try:
        a = ledger.claim("02:00:00:00:00:0A", ["a1TestProd9"], station="s", port="p", chip="ESP32")
        b = ledger.claim("02:00:00:00:00:0b", ["a1TestProd9"], station="s", port="p", chip="ESP32")
        assert a.device_name != b.device_name and not a.again
        again = ledger.claim("02:00:00:00:00:0a", ["a1TestProd9"], station="s2", port="q", chip="ESP32")
        assert (again.device_name, again.again) == (a.device_name, True)
        with pytest.raises(NoTripleLeft):
            ledger.claim("02:00:00:00:00:0c", ["a1TestProd9"], station="s", port="p", chip="ESP32")
        ledger.set_state(a, "failed", "test reason", station="s")
        row = ledger.row_for(a.product_key, a.device_name)
        assert row is not None and (row.state, row.reason, row.mac) == ("failed", "test reason", "02:00:00:00:00:0a")
    finally:
        ledger.close()


def test_release_only_unverified(ledger_url: str, tmp_path: Path) -> None:
    _import(ledger_url, write_devices(tmp_path / "a.csv", 2))
    ledger = open_ledger(ledger_url)
    try:
        a = ledger.claim("02:00:00:00:00:01", ["a1TestProd9"], station="s", port="p", chip="ESP32")
        b = ledger.claim("02:00:00:00:00:02", ["a1TestProd9"], station="s", port="p", chip="ESP32")
        ledger.set_state(b, "verified", station="s")
        released = ledger.release(a.device_name)
        assert released.mac == "02:00:00:00:00:01"
        assert ledger.row_for(a.product_key, a.device_name).state == "free"  # type: ignore[union-attr]
        with pytest.raises(InputError, match="never released"):
            ledger.release(b.device_name)
        with pytest.raises(InputError, match="not bound"):
            ledger.release(a.device_name)
        with pytest.raises(InputError, match="no device"):
            ledger.release("nope-0000")
        # The released triple goes to the next board that asks.
        c = ledger.claim("02:00:00:00:00:03", ["a1TestProd9"], station="s", port="p", chip="ESP32")
        assert c.device_name == a.device_name
    finally:
        ledger.close()


def test_schema_itself_refuses_a_triple_on_two_macs_and_two_triples_on_one_mac(tmp_path: Path) -> None:
    url = str(tmp_path / "c.ledger.sqlite")
    open_ledger(url, create=True).close()
    _import(url, write_devices(tmp_path / "a.csv", 2))
    db = sqlite3.connect(url)
    db.execute("UPDATE triples SET mac = '02:00:00:00:00:01', state = 'claimed' WHERE device_name = 'board-0000'")
    with pytest.raises(sqlite3.IntegrityError):  # one MAC, one triple per product
        db.execute("UPDATE triples SET mac = '02:00:00:00:00:01', state = 'claimed' WHERE device_name = 'board-0001'")
    with pytest.raises(sqlite3.IntegrityError):  # a triple is one row: no second row, so no second MAC
        db.execute(
            "INSERT INTO triples (product_key, device_name, secret_fingerprint, mac, state) "
            "VALUES ('a1TestProd9', 'board-0000', 'x', '02:00:00:00:00:09', 'claimed')"
        )
    with pytest.raises(sqlite3.IntegrityError):  # bound exactly when not free
        db.execute("UPDATE triples SET state = 'claimed' WHERE device_name = 'board-0001'")
    with pytest.raises(sqlite3.IntegrityError):  # failed says why
        db.execute("UPDATE triples SET state = 'failed' WHERE device_name = 'board-0000'")
    db.close()


def test_ledger_holds_no_secret(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "a.csv", 4)
    url = str(tmp_path / "s.ledger.sqlite")
    open_ledger(url, create=True).close()
    _import(url, csv_path)
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("s.ledger.sqlite*"))
    for device in load_devices(csv_path):
        assert device.device_secret.encode() not in blob


def _claim_many(url: str, station: int, macs: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = open_ledger(url)
    got = []
    for n in range(macs):
        mac = f"02:aa:{station:02x}:00:{n >> 8:02x}:{n & 0xFF:02x}"
        try:
            claim = ledger.claim(mac, ["a1TestProd9"], station=f"s{station}", port="p", chip="ESP32")
        except NoTripleLeft:
            break
        got.append((claim.device_name, mac))
    ledger.close()
    out.put(got)


def test_concurrent_claims_never_share_a_triple(ledger_url: str, tmp_path: Path) -> None:
    """Four processes race for 60 triples with 20 MACs each: 60 claims, all distinct, none lost."""
    _import(ledger_url, write_devices(tmp_path / "a.csv", 60))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_claim_many, args=(ledger_url, s, 20, out)) for s in range(4)]
    for w in workers:
        w.start()
    claims = [c for _ in workers for c in out.get(timeout=120)]
    for w in workers:
        w.join(timeout=30)
    names = [name for name, _ in claims]
    assert len(claims) == 60 and len(set(names)) == 60
    ledger = open_ledger(ledger_url)
    rows = ledger.rows()
    ledger.close()
    assert {r.device_name: r.mac for r in rows} == dict(claims)


def test_a_file_that_is_not_a_ledger_is_refused_in_one_line(tmp_path: Path) -> None:
    not_a_ledger = write_devices(tmp_path / "a.csv", 1)
    with pytest.raises(InputError, match="not a usable SQLite ledger"):
        open_ledger(str(not_a_ledger))
    with pytest.raises(InputError, match="not a usable SQLite ledger"):
        open_ledger(str(tmp_path / "missing-dir" / "x.ledger.sqlite"), create=True)

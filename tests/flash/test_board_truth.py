"""Issue 9: the board is the truth, ledgers are made on purpose, reached triples retire, reports keep all."""

from __future__ import annotations

import json
from pathlib import Path

from flash_testlib import board_specs, read_secrets, run_cli, write_devices

from provision.emulator import EmulatedRack
from provision.ledger import open_ledger
from provision.station.report import spreadsheet_safe


def _flash(csv_path: Path, url: str, *extra: str) -> object:
    return run_cli("flash", "--csv", str(csv_path), "--no-progress", "--port", url, *extra)


def test_a_board_holding_a_triple_another_ledger_gave_is_never_given_a_second(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    specs = board_specs(tmp_path / "boards", 1)
    with EmulatedRack(specs) as rack:
        first = _flash(csv_path, rack.urls[0], "--new-ledger")
        assert first.code == 0, first.out + first.err
        held = open_ledger(None, csv_path).rows()[0].device_name
        # A second station with its own ledger (or a mistyped --ledger), same device file.
        other = str(tmp_path / "other.ledger.sqlite")
        refused = _flash(csv_path, rack.urls[0], "--ledger", other, "--new-ledger")
        assert refused.code == 1
        assert f"board holds a1TestProd9/{held}" in refused.out and "--adopt" in refused.out
        assert "--reprovision" in refused.out
        assert all(r.mac is None for r in open_ledger(other).rows()), "the other ledger bound nothing"
        adopted = _flash(csv_path, rack.urls[0], "--ledger", other, "--adopt")
        assert adopted.code == 0, adopted.out + adopted.err
        assert {r.device_name: r.state for r in open_ledger(other).rows()}[held] == "verified"
        for secret in read_secrets(csv_path):
            assert secret not in refused.out + refused.err + adopted.out


def test_missing_ledgers_are_errors_listing_those_beside_the_csv(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 1)
    init = run_cli("ledger", "init", "--csv", str(csv_path))
    assert init.code == 0 and "created" in init.out
    again = run_cli("ledger", "init", "--csv", str(csv_path))
    assert again.code == 3 and "exists already" in again.err
    renamed = tmp_path / "renamed.csv"
    renamed.write_bytes(csv_path.read_bytes())
    missing = run_cli("flash", "--csv", str(renamed), "--port", "socket://127.0.0.1:9")
    assert missing.code == 3 and "no such ledger" in missing.err and "devices.ledger.sqlite" in missing.err
    status = run_cli("ledger", "status", "--csv", str(renamed))
    assert status.code == 3 and "no such ledger" in status.err


def test_release_of_a_written_triple_retires_it_and_status_counts_it(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    specs = board_specs(tmp_path / "boards", 1)
    ledger = str(tmp_path / "l.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    with EmulatedRack(specs) as rack:
        # The boot check over socket:// is refused before anything is written.
        refused = _flash(csv_path, rack.urls[0], "--ledger", ledger, "--boot-check", "1")
        assert refused.code == 3 and "socket://" in refused.err
        assert all(r.mac is None for r in open_ledger(ledger).rows())
        ran = _flash(csv_path, rack.urls[0], "--ledger", ledger)
        assert ran.code == 0
    db = open_ledger(ledger)
    row = next(r for r in db.rows() if r.mac)
    db.set_state(
        db.claim(row.mac, [row.product_key], station="t", port="p", chip="ESP32"), "failed", "unplugged", station="t"
    )
    with db._transaction() as cur:  # a failed write: verified_at is only set on success
        cur.execute("UPDATE triples SET verified_at = NULL")
    db.close()
    released = run_cli("ledger", "release", row.device_name, "--ledger", ledger, "--yes", "--json")
    assert released.code == 0, released.err
    assert json.loads(released.out) == {
        "product_key": row.product_key, "device_name": row.device_name, "mac": row.mac, "state": "retired",
        "reason": f"released after it was written to {row.mac}; the board may still hold it",
    }  # fmt: skip
    status = run_cli("ledger", "status", "--ledger", ledger, "--json")
    assert json.loads(status.out)["counts"]["retired"] == 1
    assert json.loads(status.out)["counts"]["free"] == 2


def test_a_verified_board_that_lost_its_triple_needs_reprovision_and_it_is_recorded(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    specs = board_specs(tmp_path / "boards", 1)
    ledger = str(tmp_path / "l.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    with EmulatedRack(specs) as rack:
        assert _flash(csv_path, rack.urls[0], "--ledger", ledger).code == 0
        flash = Path(specs[0].flash_path)
        data = bytearray(flash.read_bytes())
        data[0xF000:0x15000] = b"\xff" * 0x6000  # a repair erased the board
        flash.write_bytes(bytes(data))
        refused = _flash(csv_path, rack.urls[0], "--ledger", ledger)
        assert refused.code == 1 and "--reprovision" in refused.out
        again = _flash(csv_path, rack.urls[0], "--ledger", ledger, "--reprovision", "--station", "repair-bench")
        assert again.code == 0, again.out + again.err
    events = list(open_ledger(ledger).iter_events())
    assert any(e[3] == "reprovisioned" and e[5] == "repair-bench" and e[6] for e in events)


def test_report_cells_a_spreadsheet_would_run_are_escaped() -> None:
    assert spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert spreadsheet_safe("-1+2") == "'-1+2" and spreadsheet_safe("board-1") == "board-1"


def test_xts_nvs_encryption_works_without_a_build_dir(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 1)
    specs = board_specs(tmp_path / "boards", 1)
    with EmulatedRack(specs) as rack:
        run = _flash(csv_path, rack.urls[0], "--new-ledger", "--nvs-encryption", "xts")
    assert run.code == 0, run.out + run.err
    flash = Path(specs[0].flash_path).read_bytes()
    (tmp_path / "nvs.bin").write_bytes(flash[0xF000:0x15000])
    (tmp_path / "keys.bin").write_bytes(flash[0x18000:0x19000])
    plain = run_cli("inspect", str(tmp_path / "nvs.bin"), "--keys", str(tmp_path / "keys.bin"), "--show-secrets")
    assert plain.code == 0 and read_secrets(csv_path)[0] in plain.out


def test_ctrl_c_exits_130_with_the_summary_and_no_traceback(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from flash_testlib import REPO

    csv_path = write_devices(tmp_path / "devices.csv", 2)
    specs = board_specs(tmp_path / "boards", 2, line_baud=115_200)
    with EmulatedRack(specs) as rack:
        ports = [a for u in rack.urls for a in ("--port", u)]
        cmd = [sys.executable, "-m", "provision.cli", "flash", "--csv", str(csv_path), "--new-ledger", *ports]
        cmd += ["--no-progress", "--baud", "115200", "--build-dir", str(_big_build(tmp_path))]
        process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(4)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert "of 0 verified" in out or " verified in " in out
    assert list(tmp_path.glob("devices-flash-report-*.jsonl")), "the report of what finished"


def _big_build(tmp_path: Path) -> Path:
    from provision.emulator.synthetic_build import synthetic_build

    return synthetic_build(tmp_path / "build", chip="esp32", app_size=256 * 1024)


def test_erase_then_release_frees_a_written_triple(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    specs = board_specs(tmp_path / "boards", 1)
    ledger = str(tmp_path / "l.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    with EmulatedRack(specs) as rack:
        assert _flash(csv_path, rack.urls[0], "--ledger", ledger).code == 0
        db = open_ledger(ledger)
        row = next(r for r in db.rows() if r.mac)
        with db._transaction() as cur:  # as if the boot check had failed: written, never verified
            cur.execute(
                "UPDATE triples SET verified_at = NULL, state = 'failed', reason = 'boot check' WHERE mac IS NOT NULL"
            )
        db.close()
        erased = run_cli("erase", "--port", rack.urls[0], "--ledger", ledger)
        assert erased.code == 0 and "read back blank" in erased.out, erased.out + erased.err
        again = run_cli("erase", "--port", rack.urls[0], "--ledger", ledger, "--json")
        assert again.code == 0, again.out + again.err
        assert json.loads(again.out) == {
            "mac": row.mac, "erased": ["fctry", "nvs_keys"], "triple": f"{row.product_key}/{row.device_name}"
        }  # fmt: skip
    flash = Path(specs[0].flash_path).read_bytes()
    assert flash[0xF000:0x15000] == b"\xff" * 0x6000
    released = run_cli("ledger", "release", row.device_name, "--ledger", ledger, "--yes")
    assert released.code == 0 and "free again" in released.out

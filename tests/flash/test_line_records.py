"""Issue 9: nothing the line did is lost (reports per run, rows on record as boards finish) and the board, not
the ledger, decides whether it may be given a triple (an encrypted partition, a second station's copy)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from flash_testlib import REPO, board_specs, read_secrets, run_cli, wait_for, write_devices

from provision.emulator import EmulatedRack
from provision.emulator.synthetic_build import synthetic_build
from provision.ledger import open_ledger
from provision.station.report import RunReport
from provision.station.worker import BoardResult


def _flash(csv_path: Path, url: str, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("flash", "--csv", str(csv_path), "--no-progress", "--port", url, *extra)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_encrypted_partition_whose_keys_are_gone_is_never_given_a_second_triple(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    specs = board_specs(tmp_path / "boards", 1)
    with EmulatedRack(specs) as rack:
        assert _flash(csv_path, rack.urls[0], "--new-ledger", "--nvs-encryption", "xts").code == 0
        flash = Path(specs[0].flash_path)
        data = bytearray(flash.read_bytes())
        data[0x18000:0x19000] = b"\xff" * 0x1000  # nvs_keys lost (a repair, another tool): fctry stays encrypted
        flash.write_bytes(bytes(data))
        other = str(tmp_path / "other.ledger.sqlite")
        for ledger_args in ([], ["--ledger", other, "--new-ledger"]):  # this ledger's own verified board; another
            refused = _flash(csv_path, rack.urls[0], *ledger_args)
            assert refused.code == 1, refused.out + refused.err
            assert "encrypted or unreadable credential partition" in refused.out and "--reprovision" in refused.out
        assert all(r.mac is None for r in open_ledger(other).rows()), "the other ledger bound nothing"
        overwritten = _flash(csv_path, rack.urls[0], "--ledger", other, "--reprovision")
        assert overwritten.code == 0, overwritten.out + overwritten.err
    assert [r.state for r in open_ledger(other).rows()].count("verified") == 1


def test_a_second_station_with_a_copy_of_the_ledger_gives_no_second_triple(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    init = run_cli("ledger", "init", "--csv", str(csv_path))
    assert init.code == 0
    specs = board_specs(tmp_path / "boards", 1)
    with EmulatedRack(specs) as rack:
        # Station B copied the (imported, all free) ledger before station A flashed the board.
        assert _flash(csv_path, "socket://127.0.0.1:9", "--station", "a").code == 1  # imports, no board there
        copy = tmp_path / "station-b.ledger.sqlite"
        shutil.copy(tmp_path / "devices.ledger.sqlite", copy)
        assert _flash(csv_path, rack.urls[0], "--station", "a").code == 0
        held = next(r for r in open_ledger(None, csv_path).rows() if r.mac).device_name
        refused = _flash(csv_path, rack.urls[0], "--ledger", str(copy), "--station", "b")
        assert refused.code == 1 and f"board holds a1TestProd9/{held}" in refused.out, refused.out
        assert all(r.mac is None for r in open_ledger(str(copy)).rows())


def test_each_run_has_its_own_report_named_by_start_and_station(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    run = run_cli("flash", "--csv", str(csv_path), "--emulate", "1", "--no-progress", "--station", "line 1/A")
    assert run.code == 0, run.out + run.err
    names = sorted(p.name for p in tmp_path.glob("devices-flash-report-*"))
    assert len(names) == 2 and all(
        re.fullmatch(r"devices-flash-report-\d{8}T\d{6}Z-line_1_A\.(csv|jsonl)", n) for n in names
    ), names
    assert f"report: {tmp_path / names[0]} and {tmp_path / names[1]}" in run.out
    # Two runs started in the same second by the same station: the second never overwrites the first.
    started = dt.datetime(2026, 12, 2, 3, 0, 0, tzinfo=dt.timezone.utc)
    first = RunReport(tmp_path / "r", station="s", ledger="l", started=started)
    first.add(BoardResult(port="p1", result="verified"))
    first.close(seconds=1.0, interrupted=False)
    kept = first.csv_path.read_text()
    second = RunReport(tmp_path / "r", station="s", ledger="l", started=started)
    second.close(seconds=0.0, interrupted=False)
    assert (first.csv_path.name, second.csv_path.name) == ("r-20261202T030000Z-s.csv", "r-20261202T030000Z-s-2.csv")
    assert first.csv_path.read_text() == kept and "p1" in kept


def test_a_finished_board_is_on_record_when_the_station_is_killed(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    build = synthetic_build(tmp_path / "build", chip="esp32", app_size=256 * 1024)
    fast = board_specs(tmp_path / "boards", 1)
    slow = board_specs(tmp_path / "boards", 1, first=2, line_baud=115_200)
    with EmulatedRack(fast + slow) as rack:
        ports = [a for u in rack.urls for a in ("--port", u)]
        cmd = [sys.executable, "-m", "provision.cli", "flash", "--csv", str(csv_path), "--new-ledger", *ports]
        cmd += ["--no-progress", "--baud", "115200", "--build-dir", str(build), "--report", str(tmp_path / "r")]
        station = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: any('"board"' in p.read_text() for p in tmp_path.glob("r-*.jsonl")), 60)
            station.send_signal(signal.SIGKILL)  # a crash: nothing of the station runs after this
        finally:
            station.wait(timeout=30)
    csv_report = next(tmp_path.glob("r-*.csv"))
    rows = list(csv.DictReader(csv_report.open()))
    assert [(r["port"], r["result"]) for r in rows] == [(rack.urls[0], "verified")]
    lines = _lines(next(tmp_path.glob("r-*.jsonl")))
    assert [next(iter(line)) for line in lines] == ["run", "board"], "no summary: the station died"


def test_a_wrong_port_leaves_the_other_boards_on_record(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    specs = board_specs(tmp_path / "boards", 1)
    with EmulatedRack(specs) as rack:
        run = run_cli(
            "flash", "--csv", str(csv_path), "--new-ledger", "--no-progress", "--report", str(tmp_path / "r"),
            "--port", rack.urls[0], "--port", "socket://127.0.0.1:9",
        )  # fmt: skip
    assert run.code == 1
    rows = {r["port"]: r for r in csv.DictReader(next(tmp_path.glob("r-*.csv")).open())}
    assert rows[rack.urls[0]]["result"] == "verified"
    assert rows["socket://127.0.0.1:9"]["result"] == "failed" and "no answer" in rows["socket://127.0.0.1:9"]["reason"]
    assert run.out.splitlines()[-1].startswith("1 of 2 verified in ")


def test_report_cells_starting_like_a_formula_reach_the_csv_escaped(tmp_path: Path) -> None:
    # A DeviceName may start with @ or - (the platform allows both): a spreadsheet would run either.
    csv_path = write_devices(tmp_path / "devices.csv", 1, prefix="@board")
    run = run_cli("flash", "--csv", str(csv_path), "--emulate", "1", "--no-progress")
    assert run.code == 0, run.out + run.err
    row = next(csv.DictReader(next(tmp_path.glob("devices-flash-report-*.csv")).open()))
    assert row["device_name"] == "'@board-0000"
    jsonl = next(tmp_path.glob("devices-flash-report-*.jsonl"))
    board = next(line["board"] for line in _lines(jsonl) if "board" in line)
    assert board["device_name"] == "@board-0000", "JSON carries the value itself"  # type: ignore[index]
    assert read_secrets(csv_path)[0] not in run.out


def test_ctrl_c_at_any_moment_of_a_run_is_quiet_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C while the command loads, while the emulated boards start, while boards run: one line, exit 130,
    no traceback from the station, the emulator or a board process. (Before ~0.1 s Python itself is still
    starting, ahead of any of the project's code; that window is not the project's to close.)"""
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    codes = []
    for delay_s in (0.3, 0.6, 0.9, 1.2, 1.6):
        run_dir = tmp_path / f"after-{delay_s}"
        run_dir.mkdir()
        copy = shutil.copy(csv_path, run_dir / "devices.csv")
        cmd = [sys.executable, "-m", "provision.cli", "flash", "--csv", str(copy), "--emulate", "2", "--no-progress"]
        process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay_s)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert "Traceback" not in out + err and "Error" not in err, (delay_s, out, err)
        codes.append(process.returncode)
        if process.returncode == -signal.SIGINT:
            # Ended by SIGINT itself, which a shell shows as exit status 130 too. Either Python was still starting
            # (nothing said), or the Ctrl-C landed in code Python runs through exec() of a string (a dataclass
            # being made as a module loads): CPython 3.11 then marks the KeyboardInterrupt unhandled even though
            # the project caught it, and ends by re-sending SIGINT to itself (Python/pythonrun.c,
            # run_eval_code_obj; Modules/main.c, exit_sigint). Either way it says at most the one line.
            assert err == "" or (len(err.splitlines()) == 1 and err.startswith("interrupted")), (delay_s, err)
            assert out == "" or out.startswith("emulated boards:"), (delay_s, out)
        elif process.returncode == 130:
            assert len(err.splitlines()) == 1 and err.startswith("interrupted"), (delay_s, err)
        else:  # the line finished before the signal came
            assert process.returncode == 0 and out.splitlines()[-1].startswith("2 of 2 verified"), (delay_s, out)
    assert 130 in codes, codes


def test_a_full_disk_under_the_report_keeps_the_boards_before_it_and_says_so(tmp_path: Path, monkeypatch) -> None:
    import errno

    import pytest

    from provision.errors import EnvironmentProblem
    from provision.station import LineOptions, Slot, run_line
    from provision.station.build import partitions_only

    syncs = []
    real_sync = RunReport._sync

    def disk_fills_after_the_first_board(self, handle) -> None:  # type: ignore[no-untyped-def]
        syncs.append(handle.name)
        if len(syncs) > 3:  # the run header, then the first board's CSV row and JSON line
            raise OSError(errno.ENOSPC, "No space left on device")
        real_sync(self, handle)

    monkeypatch.setattr(RunReport, "_sync", disk_fills_after_the_first_board)
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    specs = board_specs(tmp_path / "boards", 2)
    options = LineOptions(
        csv_path=csv_path, build=partitions_only(), new_ledger=True, report_prefix=tmp_path / "r", show_progress=False
    )
    with EmulatedRack(specs) as rack, pytest.raises(EnvironmentProblem) as raised:
        run_line(options, [Slot(f"slot-{i}", url) for i, url in enumerate(rack.urls)])
    report = next(tmp_path.glob("r-*.csv"))
    assert raised.value.lines == (
        f"report {report}: no space left on the file system holding {tmp_path} after 1 board on record; the ledger "
        "holds every board (provision ledger export): free space there or give --report another place",
    )
    rows = list(csv.DictReader(report.open()))
    assert rows and rows[0]["result"] == "verified"
    assert [r.state for r in open_ledger(None, csv_path).rows()].count("verified") == 2, "the line went on"

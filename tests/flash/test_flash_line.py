"""`provision flash` against emulated boards driven by the real esptool: the line and its faults."""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flash_testlib import REPO, board_specs, read_secrets, run_cli, wait_for, write_devices

from provision.emulator import BoardSpec, EmulatedRack
from provision.emulator.synthetic_build import synthetic_build
from provision.ledger import open_ledger
from provision.station.build import load_build


def _ports(rack: EmulatedRack) -> list[str]:
    return [arg for url in rack.urls for arg in ("--port", url)]


def _report(prefix: Path) -> list[dict[str, object]]:
    """The boards of the newest run's PREFIX-UTC-STATION.jsonl report."""
    newest = sorted(prefix.parent.glob(prefix.name + "-*.jsonl"), key=lambda p: p.stat().st_mtime)[-1]
    lines = [json.loads(line) for line in newest.read_text().splitlines()]
    return [line["board"] for line in lines if "board" in line]


def _decode_with_inspect(flash: bytes, offset: int, size: int, tmp_path: Path, name: str) -> dict[str, str]:
    """Cut the NVS partition out of a board's flash and decode it with `provision inspect`."""
    image = tmp_path / f"{name}.nvs.bin"
    image.write_bytes(flash[offset : offset + size])
    run = run_cli("inspect", str(image), "--show-secrets")
    assert run.code == 0, run.err
    values: dict[str, str] = {}
    for line in run.out.splitlines():
        for key in ("product_key", "device_name", "device_secret", "region"):
            if f" {key} " in f" {line} ":
                values[key] = line.split()[-1]
    return values


def _secrets_by_name(csv_path: Path) -> dict[str, str]:
    import csv

    with csv_path.open(newline="") as handle:
        return {row["DeviceName"]: row["DeviceSecret"] for row in csv.DictReader(handle)}


def _assert_boards_hold_their_ledger_triples(
    specs: list[BoardSpec], ledger_url: str, csv_path: Path, build_dir: Path, tmp_path: Path
) -> None:
    build = load_build(build_dir)
    ledger = open_ledger(ledger_url)
    rows = {r.mac: r for r in ledger.rows() if r.mac}
    ledger.close()
    secrets_by_name = _secrets_by_name(csv_path)
    assert len({r.device_name for r in rows.values()}) == len(rows), "a triple on two MACs"
    for spec in specs:
        row = rows[spec.mac]
        assert row.state == "verified"
        flash = Path(spec.flash_path).read_bytes()
        decoded = _decode_with_inspect(flash, build.nvs.offset, build.nvs.size, tmp_path, spec.name)
        assert decoded["product_key"] == row.product_key
        assert decoded["device_name"] == row.device_name
        assert decoded["device_secret"] == secrets_by_name[row.device_name]
        for image in build.images:
            assert flash[image.offset : image.offset + len(image.data)] == image.data, image.name


def test_eight_boards_at_once_each_holds_its_ledger_triple(tmp_path: Path, build_dir: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 10)
    specs = board_specs(tmp_path / "boards", 8)
    ledger = str(tmp_path / "line.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    with EmulatedRack(specs) as rack:
        run = run_cli(
            "flash",
            "--csv",
            str(csv_path),
            "--build-dir",
            str(build_dir),
            "--ledger",
            ledger,
            "--report",
            str(tmp_path / "report"),
            "--no-progress",
            *_ports(rack),
        )
    assert run.code == 0, run.out + run.err
    report = _report(tmp_path / "report")
    assert [b["result"] for b in report] == ["verified"] * 8
    assert len({b["device_name"] for b in report}) == 8
    assert all(int(b["bytes_written"]) > 48 * 1024 for b in report)  # type: ignore[call-overload]
    _assert_boards_hold_their_ledger_triples(specs, ledger, csv_path, build_dir, tmp_path)
    # The report's columns, as promised.
    header = next(tmp_path.glob("report-*.csv")).read_text().splitlines()[0]
    assert header == "port,mac,device_name,product_key,chip,seconds,bytes_written,result,reason"
    # Nothing secret in any output, report or ledger.
    reports = [p.read_text() for p in tmp_path.glob("report-*")]
    assert len(reports) == 2, "one .csv and one .jsonl per run"
    outputs = run.out + run.err + "".join(reports)
    ledger_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("line.ledger.sqlite*"))
    for secret in read_secrets(csv_path):
        assert secret not in outputs
        assert secret.encode() not in ledger_bytes


def test_disconnect_mid_write_fails_that_board_only_and_reflash_gets_same_triple(
    tmp_path: Path, build_dir: Path
) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 6)
    specs = board_specs(tmp_path / "boards", 3)
    specs[1] = BoardSpec(**{**specs[1].__dict__, "disconnect_after_bytes": 30 * 1024, "unplugged_s": 3.0})
    ledger = str(tmp_path / "l.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    args = ["flash", "--csv", str(csv_path), "--build-dir", str(build_dir), "--ledger", ledger, "--no-progress"]
    with EmulatedRack(specs) as rack:
        first = run_cli(*args, "--report", str(tmp_path / "r1"), *_ports(rack))
        assert first.code == 1, first.out + first.err
        by_port = {b["port"]: b for b in _report(tmp_path / "r1")}
        broken = by_port[rack.urls[1]]
        assert broken["result"] == "failed" and broken["reason"]
        assert [by_port[rack.urls[i]]["result"] for i in (0, 2)] == ["verified", "verified"]
        row = {r.mac: r for r in _rows(ledger)}[specs[1].mac]
        assert row.state == "failed" and row.reason

        time.sleep(3.0)  # the operator plugs the board back in
        second = run_cli(*args, "--report", str(tmp_path / "r2"), "--port", rack.urls[1])
    assert second.code == 0, second.out + second.err
    again = _report(tmp_path / "r2")[0]
    assert (again["result"], again["device_name"]) == ("verified", broken["device_name"])
    _assert_boards_hold_their_ledger_triples(specs, ledger, csv_path, build_dir, tmp_path)


def _rows(url: str):  # type: ignore[no-untyped-def]
    ledger = open_ledger(url)
    try:
        return ledger.rows()
    finally:
        ledger.close()


def test_sigkill_at_random_points_then_rerun_finishes_everything(tmp_path: Path) -> None:
    """22 runs killed with SIGKILL at random moments, then one run to the end.

    The link is throttled (4 Mbaud) and the synthetic app is 512 KiB so that a run lasts long enough for
    the kill points to land in every phase: start-up, import, connect, claim, write, verify.
    """
    build = synthetic_build(tmp_path / "build", app_size=512 * 1024)
    csv_path = write_devices(tmp_path / "devices.csv", 8)
    specs = board_specs(tmp_path / "boards", 4, line_baud=4_000_000)
    ledger = str(tmp_path / "k.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    rng = random.Random(0x5EED)
    states_seen_after_kills: set[str] = set()
    with EmulatedRack(specs) as rack:
        cmd = [
            sys.executable,
            "-m",
            "provision.cli",
            "flash",
            "--csv",
            str(csv_path),
            "--build-dir",
            str(build),
            "--ledger",
            ledger,
            "--no-progress",
            "--report",
            str(tmp_path / "killed"),
            *_ports(rack),
        ]
        # The kill points cover start-up and the writes however loaded the machine is: a first run, killed
        # at its first claim, measures how long start-up takes here and now.
        process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        began = time.monotonic()
        assert wait_for(lambda: any(r.mac for r in _rows(ledger)), 120), "no board was ever claimed"
        start_up_s = time.monotonic() - began
        process.send_signal(signal.SIGKILL)
        process.wait()
        time.sleep(0.3)
        for _ in range(22):
            process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, start_up_s + 1.5))
            process.send_signal(signal.SIGKILL)
            process.wait()
            rows = [r for r in _rows(ledger) if r.mac]
            states_seen_after_kills.update(r.state for r in rows)
            assert len({r.device_name for r in rows}) == len(rows)
            assert {r.mac for r in rows} <= {s.mac for s in specs}, "a triple bound to a MAC that is not a board"
            time.sleep(0.3)  # the kernel delivers PDEATHSIG to the board processes
        final = run_cli(*cmd[3:], timeout=300)
    assert "flashing" in states_seen_after_kills, "no kill landed in the middle of a write"
    assert final.code == 0, final.out + final.err
    rows = _rows(ledger)
    bound = [r for r in rows if r.mac]
    assert len(bound) == 4 and {r.mac for r in bound} == {s.mac for s in specs}
    assert sum(1 for r in rows if r.state == "free") == 4  # none lost: the other four are still free
    _assert_boards_hold_their_ledger_triples(specs, ledger, csv_path, build, tmp_path)


def test_two_stations_on_one_postgresql_ledger(tmp_path: Path, build_dir: Path, fresh_pg_db: str) -> None:
    open_ledger(fresh_pg_db, create=True).close()
    csv_path = write_devices(tmp_path / "devices.csv", 8)
    specs = board_specs(tmp_path / "boards", 8)
    with EmulatedRack(specs[:4]) as rack_a, EmulatedRack(specs[4:]) as rack_b:
        stations = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "provision.cli",
                    "flash",
                    "--csv",
                    str(csv_path),
                    "--build-dir",
                    str(build_dir),
                    "--ledger",
                    fresh_pg_db,
                    "--station",
                    name,
                    "--no-progress",
                    "--report",
                    str(tmp_path / name),
                    *_ports(rack),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name, rack in (("station-a", rack_a), ("station-b", rack_b))
        ]
        outputs = [s.communicate(timeout=300)[0] for s in stations]
    assert [s.returncode for s in stations] == [0, 0], outputs
    rows = _rows(fresh_pg_db)
    assert len({r.device_name for r in rows if r.mac}) == 8 and all(r.state == "verified" for r in rows)
    assert {r.station for r in rows} == {"station-a", "station-b"}
    _assert_boards_hold_their_ledger_triples(specs, fresh_pg_db, csv_path, build_dir, tmp_path)


def test_bad_csv_is_refused_before_any_board_is_touched(tmp_path: Path, build_dir: Path) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(
        "ProductKey,DeviceName,DeviceSecret\n"
        "a1TestProd9,ok-device-1,0123456789abcdef0123456789abcdef\n"
        "a1TestProd9,x,0123456789abcdef0123456789abcdeX\n"
        ",ok-device-3,\n"
    )
    specs = board_specs(tmp_path / "boards", 2)
    with EmulatedRack(specs) as rack:
        before = [Path(s.flash_path).read_bytes() for s in specs]
        run = run_cli("flash", "--csv", str(csv_path), "--build-dir", str(build_dir), "--no-progress", *_ports(rack))
        after = [Path(s.flash_path).read_bytes() for s in specs]
    assert run.code == 3
    assert "bad.csv:3: DeviceName" in run.err and "bad.csv:4:" in run.err
    assert before == after and all(set(b) == {0xFF} for b in after)
    assert not list(tmp_path.glob("*.ledger.sqlite*")) and not list(tmp_path.glob("*report*"))


def test_reprovisioning_same_app_writes_only_what_changed(tmp_path: Path, build_dir: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    specs = board_specs(tmp_path / "boards", 1)
    ledger = str(tmp_path / "r.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    args = ["flash", "--csv", str(csv_path), "--ledger", ledger, "--no-progress"]
    with EmulatedRack(specs) as rack:
        first = run_cli(*args, "--build-dir", str(build_dir), "--report", str(tmp_path / "a"), *_ports(rack))
        same = run_cli(*args, "--build-dir", str(build_dir), "--report", str(tmp_path / "b"), *_ports(rack))
        new_app = synthetic_build(tmp_path / "build2", app_size=48 * 1024, app_version="2")
        changed = run_cli(*args, "--build-dir", str(new_app), "--report", str(tmp_path / "c"), *_ports(rack))
    assert (first.code, same.code, changed.code) == (0, 0, 0), first.err + same.err + changed.err
    build = load_build(build_dir)
    # Erased-flash images (otadata's initial 0xFF) already match a fresh board and are skipped too.
    total = sum(len(i.data) for i in build.images if set(i.data) != {0xFF}) + build.nvs.size
    assert _report(tmp_path / "a")[0]["bytes_written"] == total
    assert _report(tmp_path / "b")[0]["bytes_written"] == 0
    assert _report(tmp_path / "c")[0]["bytes_written"] == 48 * 1024  # only the application region
    assert len({r["device_name"] for r in (_report(tmp_path / x)[0] for x in "abc")}) == 1


def test_chip_that_does_not_match_the_build_is_failed_and_gets_no_triple(tmp_path: Path) -> None:
    build = synthetic_build(tmp_path / "build", chip="esp32c3", app_size=8 * 1024)
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    ledger = str(tmp_path / "m.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    with EmulatedRack(board_specs(tmp_path / "boards", 1, chip="esp32")) as rack:
        run = run_cli(
            "flash",
            "--csv",
            str(csv_path),
            "--build-dir",
            str(build),
            "--ledger",
            ledger,
            "--no-progress",
            "--report",
            str(tmp_path / "r"),
            *_ports(rack),
        )
    assert run.code == 1
    board = _report(tmp_path / "r")[0]
    assert board["result"] == "failed" and "ESP32 but the build targets esp32c3" in str(board["reason"])
    assert all(r.mac is None for r in _rows(ledger))


def test_emulate_runs_the_whole_line_without_hardware(tmp_path: Path) -> None:
    """The README's first command as written, on a copy of examples/devices.csv so the repository stays clean."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first = next(line for line in readme.splitlines() if line.startswith("scripts/setup && "))
    program, *args = shlex.split(first.split(" && ", 1)[1])
    assert program == ".venv/bin/provision"
    csv_path = tmp_path / "devices.csv"
    csv_path.write_bytes((REPO / "examples" / "devices.csv").read_bytes())
    args[args.index("--csv") + 1] = str(csv_path)
    assert args == ["flash", "--csv", str(csv_path), "--emulate", "4"]
    run = run_cli(*args)
    assert run.code == 0, run.out + run.err
    assert "writing only the per-device partitions" in run.out
    boards = _report(tmp_path / "devices-flash-report")
    assert [b["result"] for b in boards] == ["verified"] * 4
    assert run.out.strip().splitlines()[-1].startswith("4 of 4 verified in ")
    flash = (tmp_path / "devices.emulated-boards" / "emulated-1.flash.bin").read_bytes()
    # The firmware's own table places the triple: fctry at 0xf000 (firmware/partitions.csv), blank otadata.
    decoded = _decode_with_inspect(flash, 0xF000, 0x6000, tmp_path, "emulated-1")
    assert decoded["device_name"] == next(b["device_name"] for b in boards if b["port"] == "emulated-1")
    assert flash[0x15000:0x17000] == b"\xff" * 0x2000
    for secret in read_secrets(csv_path):
        assert secret not in run.out + run.err


@pytest.mark.parametrize(
    ("chip", "spec_extra", "flags", "reason"),
    [
        (
            "esp32c3",
            {"key_purposes": (8, 0, 0, 0, 0, 0)},
            ["--nvs-encryption", "hmac", "--burn-hmac-key"],
            "already holds an HMAC_UP key",
        ),
        ("esp32", {}, ["--nvs-encryption", "hmac", "--burn-hmac-key"], "has no HMAC key purpose"),
        ("esp32", {"flash_crypt_cnt": 1}, ["--enable-flash-encryption"], "already enabled"),
        ("esp32c3", {"key_purposes": (0, 4, 0, 0, 0, 0)}, ["--enable-flash-encryption"], "already burned"),
    ],
)
def test_efuse_steps_refuse_when_done_or_impossible(
    tmp_path: Path, chip: str, spec_extra: dict[str, object], flags: list[str], reason: str
) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    specs = board_specs(tmp_path / "boards", 1, chip=chip, **spec_extra)
    ledger = str(tmp_path / "e.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    with EmulatedRack(specs) as rack:
        run = run_cli(
            "flash",
            "--csv",
            str(csv_path),
            "--ledger",
            ledger,
            "--no-progress",
            *flags,
            "--confirm-efuse-burn",
            "--report",
            str(tmp_path / "r"),
            *_ports(rack),
        )
        flash = Path(specs[0].flash_path).read_bytes()
    assert run.code == 1, run.out + run.err
    board = _report(tmp_path / "r")[0]
    assert board["result"] == "failed" and reason in str(board["reason"])
    assert set(flash) == {0xFF}, "nothing may be written to a refused board"
    assert all(r.mac is None for r in _rows(ledger))


def test_efuse_steps_need_explicit_confirmation(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    specs = board_specs(tmp_path / "boards", 1, chip="esp32c3")
    with EmulatedRack(specs) as rack:
        run = run_cli(
            "flash",
            "--csv",
            str(csv_path),
            "--no-progress",
            "--nvs-encryption",
            "hmac",
            "--burn-hmac-key",
            *_ports(rack),
        )
        flash = Path(specs[0].flash_path).read_bytes()
    assert run.code == 3 and "--confirm-efuse-burn" in run.err
    assert set(flash) == {0xFF}
    assert os.path.exists(csv_path)


def test_boot_check_over_rfc2217_resets_and_sees_the_device_name(tmp_path: Path, build_dir: Path) -> None:
    """rfc2217:// carries DTR/RTS: esptool's reset sequence enters download mode, its hard reset boots the
    (synthetic) application, which prints the connect line naming its DeviceName. (pyserial's RFC 2217
    client waits ~50 ms per port setting and esptool changes its timeout often, so this board takes ~20 s.)"""
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    specs = board_specs(tmp_path / "boards", 1, transport="rfc2217")
    ledger = str(tmp_path / "b.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    with EmulatedRack(specs) as rack:
        assert rack.urls[0].startswith("rfc2217://")
        run = run_cli(
            "flash",
            "--csv",
            str(csv_path),
            "--build-dir",
            str(build_dir),
            "--ledger",
            ledger,
            "--boot-check",
            "10",
            "--no-progress",
            "--report",
            str(tmp_path / "r"),
            *_ports(rack),
        )
    assert run.code == 0, run.out + run.err
    assert _report(tmp_path / "r")[0]["result"] == "verified"


def test_boot_check_on_a_link_without_reset_is_refused_before_anything_is_written(
    tmp_path: Path, build_dir: Path
) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    specs = board_specs(tmp_path / "boards", 1)  # socket://: no reset line, the application never starts
    ledger = str(tmp_path / "b.ledger.sqlite")
    open_ledger(ledger, create=True).close()
    with EmulatedRack(specs) as rack:
        run = run_cli(
            "flash",
            "--csv",
            str(csv_path),
            "--build-dir",
            str(build_dir),
            "--ledger",
            ledger,
            "--boot-check",
            "2",
            "--no-progress",
            "--report",
            str(tmp_path / "r"),
            *_ports(rack),
        )
    assert run.code == 3 and "socket://" in run.err and "rfc2217://" in run.err
    assert all(r.mac is None for r in _rows(ledger)), "nothing claimed"


def test_ports_watch_flashes_boards_as_they_arrive_until_interrupted(tmp_path: Path, build_dir: Path) -> None:
    """The --ports-watch loop: boards handed in one after another are each flashed; Ctrl-C ends the line."""
    from provision.station import LineOptions, Slot, run_line

    csv_path = write_devices(tmp_path / "devices.csv", 4)
    specs = board_specs(tmp_path / "boards", 2)
    with EmulatedRack(specs) as rack:
        arrivals = [[Slot("bench-slot-1", rack.urls[0])], [], [], [Slot("bench-slot-2", rack.urls[1])]]

        def watch(busy: set[str]) -> list[Slot]:
            if arrivals:
                return arrivals.pop(0)
            if not busy:
                raise KeyboardInterrupt  # the operator stops the line once the bench is empty
            return []

        options = LineOptions(
            csv_path=csv_path,
            build=load_build(build_dir),
            ledger_url=str(tmp_path / "w.ledger.sqlite"),
            new_ledger=True,
            report_prefix=tmp_path / "watch",
            show_progress=False,
        )
        summary = run_line(options, [], watch=watch)
    assert sorted((r.port, r.result) for r in summary.results) == [
        ("bench-slot-1", "verified"),
        ("bench-slot-2", "verified"),
    ]
    assert [b["port"] for b in _report(tmp_path / "watch")] == ["bench-slot-1", "bench-slot-2"]

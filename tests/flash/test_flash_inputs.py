"""What the station reads before touching a board: partition tables, flasher_args.json, port slots; and the
ledger commands."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from flash_testlib import REPO, board_specs, read_secrets, run_cli, write_devices

from provision.emulator import EmulatedRack
from provision.emulator.synthetic_build import SYNTHETIC_LABEL, synthetic_build
from provision.errors import EnvironmentProblem, InputError
from provision.station.build import load_build
from provision.station.partition_table import build_table, parse_table, parse_table_csv
from provision.station.ports import discover_slots, resolve_slot, watch_new_slots

FIRMWARE_TABLE = (REPO / "firmware" / "partitions.csv").read_text()


def test_partition_table_csv_to_binary_and_back() -> None:
    partitions = parse_table_csv(FIRMWARE_TABLE)
    by_label = {p.label: p for p in partitions}
    assert (by_label["fctry"].offset, by_label["fctry"].size, by_label["fctry"].subtype) == (0xF000, 0x6000, 0x02)
    assert by_label["nvs_keys"].flags == 0x01  # "encrypted"
    assert (by_label["ota_0"].type, by_label["ota_0"].subtype) == (0x00, 0x10)
    binary = build_table(partitions)
    assert len(binary) == 0xC00 and binary[:2] == b"\xaa\x50"
    assert parse_table(binary) == partitions


def test_partition_table_damage_and_bad_csv_are_refused() -> None:
    binary = bytearray(build_table(parse_table_csv(FIRMWARE_TABLE)))
    binary[10] ^= 0x01
    with pytest.raises(InputError, match="MD5"):
        parse_table(bytes(binary))
    with pytest.raises(InputError, match=r"partitions.csv:2: SubType"):
        parse_table_csv("nvs, data, nvs, 0x9000, 0x6000\nx, data, nope, , 0x1000\n")
    with pytest.raises(InputError, match="Flags"):
        parse_table_csv("nvs, data, nvs, 0x9000, 0x6000, sparkly\n")


def test_csv_offsets_follow_on_with_alignment() -> None:
    table = parse_table_csv("nvs, data, nvs, , 0x6000\nphy_init, data, phy, , 0x1000\nfactory, app, factory, , 1M\n")
    assert [(p.offset, p.size) for p in table] == [(0x9000, 0x6000), (0xF000, 0x1000), (0x10000, 0x100000)]


def test_build_with_the_firmware_partition_table_targets_fctry(tmp_path: Path) -> None:
    build = load_build(synthetic_build(tmp_path / "b", chip="esp32c3", table_csv=FIRMWARE_TABLE))
    assert build.chip == "esp32c3"
    assert (build.nvs.label, build.nvs.offset, build.nvs.size) == ("fctry", 0xF000, 0x6000)
    assert build.nvs_keys is not None and build.nvs_keys.offset == 0x18000
    offsets = {image.name: image.offset for image in build.images}
    assert offsets["synthetic-app.bin"] == 0x20000 and offsets["bootloader/bootloader.bin"] == 0x0
    app = next(i for i in build.images if i.name == "synthetic-app.bin")
    assert app.data.startswith(SYNTHETIC_LABEL) and app.data[0] != 0xE9


def test_flasher_args_problems_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"flasher_args\.json: not found"):
        load_build(tmp_path)
    build = synthetic_build(tmp_path / "b")
    args = json.loads((build / "flasher_args.json").read_text())
    args["flash_files"]["0x9000"] = "partition_table/partition-table.bin"  # collides with nvs
    args["flash_files"]["0x200000"] = "missing.bin"
    (build / "flasher_args.json").write_text(json.dumps(args))
    with pytest.raises(InputError, match=r"missing\.bin does not exist"):
        load_build(build)
    del args["flash_files"]["0x200000"]
    (build / "flasher_args.json").write_text(json.dumps(args))
    with pytest.raises(InputError, match="overlaps partition"):
        load_build(build, nvs_label="nvs")
    (build / "flasher_args.json").write_text("{ not json")
    with pytest.raises(InputError, match=r"flasher_args.json:1: not valid JSON"):
        load_build(build)


def _port(device: str, serial: str | None, location: str | None, vid: int = 0x10C4) -> SimpleNamespace:
    return SimpleNamespace(device=device, serial_number=serial, location=location, vid=vid)


def test_slots_bind_by_usb_serial_or_location_and_survive_renumbering() -> None:
    before = [_port("/dev/ttyUSB0", "A1", "1-1.1"), _port("/dev/ttyUSB1", None, "1-1.2")]
    after = [_port("/dev/ttyUSB3", "A1", "1-1.1"), _port("/dev/ttyUSB2", None, "1-1.2")]
    slots = discover_slots(before)
    assert [s.name for s in slots] == ["usb-serial=A1", "usb-location=1-1.2"]
    assert [resolve_slot(s.name, after).device for s in slots] == ["/dev/ttyUSB3", "/dev/ttyUSB2"]
    assert resolve_slot("socket://127.0.0.1:5000").device == "socket://127.0.0.1:5000"
    with pytest.raises(InputError, match="no connected serial port"):
        resolve_slot("usb-serial=ZZ", after)
    with pytest.raises(EnvironmentProblem, match="--emulate"):
        discover_slots([_port("/dev/ttyS0", None, None, vid=0x1234)])


def test_ports_watch_flashes_each_plug_in_once() -> None:
    plugged: list[SimpleNamespace] = []
    poll = watch_new_slots(lambda: list(plugged))
    assert poll(set()) == []
    plugged.append(_port("/dev/ttyUSB0", "A1", "1-1"))
    assert [s.name for s in poll(set())] == ["usb-serial=A1"]
    assert poll(set()) == []  # still plugged: not again
    plugged.clear()
    assert poll(set()) == []
    plugged.append(_port("/dev/ttyUSB0", "B2", "1-1"))
    assert [s.name for s in poll(set())] == ["usb-serial=B2"]


def test_ledger_commands_status_export_release(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    specs = board_specs(tmp_path / "boards", 2)
    with EmulatedRack(specs) as rack:
        args = ["flash", "--csv", str(csv_path), "--no-progress", "--port", rack.urls[0], "--port", rack.urls[1]]
        run = run_cli(*args, "--new-ledger")
    assert run.code == 0, run.out + run.err
    status = run_cli("ledger", "status", "--csv", str(csv_path))
    assert status.code == 0 and "free 1" in status.out and "verified 2" in status.out
    export = run_cli("ledger", "export", "--csv", str(csv_path))
    lines = export.out.splitlines()
    assert lines[0].startswith("ProductKey,DeviceName,MAC,state") and len(lines) == 4
    for secret in read_secrets(csv_path):
        assert secret not in export.out + status.out + run.out
    verified_name = next(line.split(",")[1] for line in lines[1:] if ",verified," in line)
    refused = run_cli("ledger", "release", verified_name, "--csv", str(csv_path), "--yes")
    assert refused.code == 3 and "never released" in refused.err
    unconfirmed = run_cli("ledger", "release", verified_name, "--csv", str(csv_path))
    assert unconfirmed.code != 0  # no confirmation on stdin: nothing happens
    missing = run_cli("ledger", "status", "--csv", str(tmp_path / "other.csv"))
    assert missing.code == 3 and "no such ledger" in missing.err and "devices.ledger.sqlite" in missing.err


def test_flash_with_firmware_table_and_xts_nvs_encryption_decodes_with_its_keys(tmp_path: Path) -> None:
    build = synthetic_build(tmp_path / "b", chip="esp32", app_size=16 * 1024, table_csv=FIRMWARE_TABLE)
    csv_path = write_devices(tmp_path / "devices.csv", 1)
    specs = board_specs(tmp_path / "boards", 1)
    with EmulatedRack(specs) as rack:
        run = run_cli(
            "flash",
            "--csv",
            str(csv_path),
            "--build-dir",
            str(build),
            "--nvs-encryption",
            "xts",
            "--new-ledger",
            "--no-progress",
            "--port",
            rack.urls[0],
        )
    assert run.code == 0, run.out + run.err
    flash = Path(specs[0].flash_path).read_bytes()
    (tmp_path / "nvs.bin").write_bytes(flash[0xF000:0x15000])
    (tmp_path / "keys.bin").write_bytes(flash[0x18000:0x19000])
    secret = read_secrets(csv_path)[0]
    assert secret.encode() not in flash  # encrypted on the board
    plain = run_cli("inspect", str(tmp_path / "nvs.bin"), "--keys", str(tmp_path / "keys.bin"), "--show-secrets")
    assert plain.code == 0 and secret in plain.out and "board-0000" in plain.out


def test_efuse_burns_go_through_espefuse_to_free_key_blocks() -> None:
    """The burning itself, against espefuse's own virtual eFuse controller (no board can be burned here)."""
    import secrets as random_source

    from espefuse.efuse_interface import init_commands

    from provision.station.efuse import EfusePlan, EfuseRefused, apply_efuse_plan

    commands = init_commands(chip="esp32c3", virt=True, do_not_confirm=True)
    plan = EfusePlan(burn_hmac_key=True, enable_flash_encryption=True, confirmed=True)
    burned = apply_efuse_plan(None, plan, random_source.token_bytes(32), commands=commands)
    purposes = [commands.efuses[f"KEY_PURPOSE_{n}"].get() for n in range(6)]
    assert burned == [0, 1] and purposes[:3] == ["HMAC_UP", "XTS_AES_128_KEY", "USER"]
    with pytest.raises(EfuseRefused, match="needs --nvs-encryption hmac"):
        apply_efuse_plan(None, EfusePlan(burn_hmac_key=True, confirmed=True), None, commands=commands)


def test_bad_csv_with_emulate_creates_no_board(tmp_path: Path) -> None:
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text("ProductKey,DeviceName,DeviceSecret\na1TestProd9,ok-1,short\n")
    run = run_cli("flash", "--csv", str(csv_path), "--emulate", "2")
    assert run.code == 3 and "devices.csv:2: DeviceSecret" in run.err
    made = [p.name for p in tmp_path.iterdir() if p.name.startswith("devices") and p.name != "devices.csv"]
    assert made == [], "no ledger, emulated board or report may exist"


@pytest.mark.parametrize("baud", ["0", "-5"])
def test_a_baud_rate_that_is_not_positive_is_refused_before_any_board(tmp_path: Path, baud: str) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 1)
    run = run_cli("flash", "--csv", str(csv_path), "--emulate", "1", "--baud", baud)
    assert run.code == 2 and "--baud" in run.err
    made = [p.name for p in tmp_path.iterdir() if p.name.startswith("devices") and p.name != "devices.csv"]
    assert made == [], "no ledger, emulated board or report may exist"


def test_a_report_path_that_cannot_be_written_stops_the_line_before_any_board(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 1)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    run = run_cli(
        "flash", "--csv", str(csv_path), "--port", "socket://127.0.0.1:9", "--report", str(blocker / "r" / "line")
    )
    assert run.code == 3 and run.err.startswith(f"--report {blocker}/r/line: cannot create ")
    assert len(run.err.splitlines()) == 1
    made = [p.name for p in tmp_path.iterdir() if p.name.startswith("devices") and p.name != "devices.csv"]
    assert made == [], "no ledger and no board: the line never started"

"""Issue 9: a board provisioned the README's way (`provision flash`, no --build-dir) holds its triple where the
firmware reads it. The emulated board's flash is cut at the offsets of firmware/partitions.csv (the table the
firmware builds with, read here on its own, not through the station's parser) and the host device boots
from what was read back, to `aliyun: online` on the local broker."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from e2e_lines import expect_line

from provision.cloud.broker import REPO_ROOT

ONLINE_S = 10


def _firmware_partitions() -> dict[str, tuple[int, int]]:
    """label -> (offset, size) from firmware/partitions.csv, the way ESP-IDF's gen_esp32part reads a row."""
    table = (REPO_ROOT / "firmware" / "partitions.csv").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    found = {}
    for row in csv.reader(rows):
        label, _type, _subtype, offset, size = (cell.strip() for cell in row[:5])
        found[label] = (int(offset, 0), int(size, 0))
    return found


@pytest.mark.parametrize("encryption", ["none", "xts"])
def test_a_board_flashed_without_build_dir_reads_its_triple_and_goes_online(
    encryption, dut, backend, start_device, suite_devices, tmp_path
):
    if not backend.is_host:
        pytest.skip(f"{backend.name} backend: the host device boots the emulated board's read-back flash")
    device = suite_devices.dut  # the broker knows this triple
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text(f"ProductKey,DeviceName,DeviceSecret\n{device.product_key},{device.device_name},"
                        f"{device.device_secret}\n")  # fmt: skip
    flashed = subprocess.run(
        [sys.executable, "-m", "provision.cli", "flash", "--csv", str(csv_path), "--emulate", "1",
         "--nvs-encryption", encryption, "--no-progress"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert flashed.returncode == 0, flashed.stdout + flashed.stderr
    assert device.device_secret not in flashed.stdout + flashed.stderr
    board = (tmp_path / "devices.emulated-boards" / "emulated-1.flash.bin").read_bytes()
    parts = _firmware_partitions()
    offset, size = parts["fctry"]
    (tmp_path / "fctry.bin").write_bytes(board[offset : offset + size])
    keys_args: tuple[str, ...] = ()
    if encryption == "xts":
        offset, size = parts["nvs_keys"]
        (tmp_path / "nvs_keys.bin").write_bytes(board[offset : offset + size])
        keys_args = ("--nvs-keys", str(tmp_path / "nvs_keys.bin"))
        assert device.device_secret.encode() not in board, "the secret is only in the encrypted image"
    else:
        assert device.device_secret.encode() in board[parts["fctry"][0] : parts["fctry"][0] + parts["fctry"][1]]
    start_device(nvs=tmp_path / "fctry.bin", keys_args=keys_args)
    expect_line(
        dut, f"aliyun: triple loaded: {device.device_name}&{device.product_key}", timeout=backend.timeout(ONLINE_S)
    )
    expect_line(dut, "aliyun: mqtt connected", timeout=backend.timeout(ONLINE_S))
    expect_line(dut, "aliyun: online", timeout=backend.timeout(ONLINE_S))


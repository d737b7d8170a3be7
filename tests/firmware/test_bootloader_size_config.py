"""The bootloader fits below the partition table in every NVS scheme.

partitions.csv keeps ESP-IDF's partition table offset (0x8000, its first partition at 0x9000), so the bootloader has
32 KB. With flash encryption enabled (the NVS flash-encryption scheme needs it) an Info-level bootloader was
0x8290 bytes on ESP-IDF v5.5.5 for esp32c3 and the build stopped (check_sizes.py); at Warning it was 0x7180.
ESP-IDF checks the size when it builds; this holds the committed defaults to it where ESP-IDF cannot run.
"""

from __future__ import annotations

import re
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
# ESP-IDF's CONFIG_BOOTLOADER_LOG_LEVEL choice (components/bootloader/Kconfig.log): the levels at most Warning.
QUIET_LEVELS = {
    "CONFIG_BOOTLOADER_LOG_LEVEL_NONE",
    "CONFIG_BOOTLOADER_LOG_LEVEL_ERROR",
    "CONFIG_BOOTLOADER_LOG_LEVEL_WARN",
}


def _set_options(path: Path) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^(CONFIG_\w+)=y$", path.read_text(), re.MULTILINE)}


def test_the_bootloader_logs_at_most_warnings():
    assert _set_options(FIRMWARE / "sdkconfig.defaults") & QUIET_LEVELS


def test_no_layered_defaults_file_raises_the_bootloader_log_level_again():
    for path in sorted(FIRMWARE.glob("sdkconfig.defaults*")):
        loud = {name for name in _set_options(path) if name.startswith("CONFIG_BOOTLOADER_LOG_LEVEL_")} - QUIET_LEVELS
        assert not loud, f"{path.name} sets {sorted(loud)}"


def test_the_partition_table_stays_where_the_bootloader_size_was_measured():
    first = min(
        int(fields[3], 16)
        for line in (FIRMWARE / "partitions.csv").read_text().splitlines()
        if line.strip() and not line.startswith("#")
        for fields in [[f.strip() for f in line.split(",")]]
        if len(fields) > 3 and fields[3]
    )
    assert first == 0x9000
    assert "CONFIG_PARTITION_TABLE_OFFSET" not in (FIRMWARE / "sdkconfig.defaults").read_text()

"""What an emulated board prints on its console when it boots from flash (after a hard reset).

It models only what the line can check: the ROM's reset banner, then, if the flash holds the synthetic
application (recognised by its label; never real firmware), the line the firmware prints when it
connects, `aliyun: connecting to HOST:PORT as DeviceName&ProductKey`, built from the triple it reads
from the `fctry` (else `nvs`) NVS partition of the flashed partition table, as the firmware does.
"""

from __future__ import annotations

from typing import Any

from provision.emulator.synthetic_build import SYNTHETIC_LABEL
from provision.errors import ProvisionError
from provision.station.partition_table import NVS_KEYS_SUBTYPE, NVS_SUBTYPE, find_partition, parse_table

__all__ = ["boot_console"]

TABLE_OFFSET = 0x8000
ROM_BANNER = b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"


def _triple(flash: Any, partitions: list[Any]) -> tuple[str, str, str] | None:
    from provision.inspect import read_nvs

    nvs = find_partition(partitions, subtype=NVS_SUBTYPE, labels=("fctry", "nvs"))
    if nvs is None:
        return None
    keys = find_partition(partitions, subtype=NVS_KEYS_SUBTYPE, labels=("nvs_keys",))
    image = flash.read(nvs.offset, nvs.size)
    attempts = [None] + ([flash.read(keys.offset, 0x1000)] if keys is not None else [])
    for nvs_keys in attempts:
        try:
            entries = read_nvs(image, nvs_keys=nvs_keys)
        except ProvisionError:
            continue
        values = {e.key.lower().replace("_", ""): e.value for e in entries}
        if {"productkey", "devicename"} <= values.keys():
            region = str(values.get("region") or "cn-shanghai")
            return str(values["productkey"]), str(values["devicename"]), region
    return None


def boot_console(flash: Any) -> bytes:
    """The bytes the board sends after booting from `flash` (a FlashMemory)."""
    out = ROM_BANNER
    try:
        partitions = parse_table(flash.read(TABLE_OFFSET, 0xC00))
    except ProvisionError:
        return out + b"E (emulated) no valid partition table\r\n"
    app = next((p for p in partitions if p.type == 0x00), None)
    if app is None or not flash.read(app.offset, len(SYNTHETIC_LABEL)) == SYNTHETIC_LABEL:
        return out + b"E (emulated) no application image this emulator can run\r\n"
    out += b"synthetic app (not firmware) started\r\n"
    triple = _triple(flash, partitions)
    if triple is None:
        return out + b"aliyun: halted: no readable triple in the factory NVS partition\r\n"
    product_key, device_name, region = triple
    host = f"{product_key}.iot-as-mqtt.{region}.aliyuncs.com"
    return out + f"aliyun: connecting to {host}:8883 as {device_name}&{product_key}\r\n".encode()

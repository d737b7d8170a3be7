"""What a board's credential partition holds before the station gives it anything.

The board, not the ledger, is the truth: a ledger can be lost, renamed, mistyped or be another
station's copy, and each of those would otherwise hand a board that already holds a triple a second
one. Reading the partition (24 KB) names the triple it holds; only ProductKey and DeviceName are taken
from it, never the secret.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from provision.errors import ProvisionError
from provision.inspect import read_nvs
from provision.nvs_format import parse_nvs_keys_partition
from provision.station.build import FirmwareBuild

__all__ = ["BLANK", "TRIPLE", "UNREADABLE", "HeldCredentials", "read_held"]

BLANK = "blank"
TRIPLE = "triple"
UNREADABLE = "unreadable"  # encrypted with keys the station lacks, or not an NVS image

# Key names of the two layouts gen_nvs writes (provision/gen_nvs.py layout_entries).
PRODUCT_KEY_KEYS = ("product_key", "ProductKey")
DEVICE_NAME_KEYS = ("device_name", "DeviceName")


@dataclass(frozen=True)
class HeldCredentials:
    kind: str
    product_key: str = ""
    device_name: str = ""

    @property
    def name(self) -> str:
        return f"{self.product_key}/{self.device_name}"


def decode_held(image: bytes, keys_partition: bytes | None) -> HeldCredentials:
    """Classify a credential partition read from a board (and its nvs_keys partition, when any)."""
    if image.count(0xFF) == len(image):
        return HeldCredentials(BLANK)
    keys = keys_partition if keys_partition and parse_nvs_keys_partition(keys_partition) else None
    if keys_partition is None or keys is not None:
        try:
            entries = read_nvs(image, nvs_keys=keys, source="board")
        except ProvisionError:
            return HeldCredentials(UNREADABLE)
        values = {e.key: e.value for e in entries if isinstance(e.value, str)}
        product_key = next((values[k] for k in PRODUCT_KEY_KEYS if k in values), "")
        device_name = next((values[k] for k in DEVICE_NAME_KEYS if k in values), "")
        if device_name:
            return HeldCredentials(TRIPLE, product_key, device_name)
    return HeldCredentials(UNREADABLE)


def read_held(esp: Any, build: FirmwareBuild) -> HeldCredentials:
    """Read the board's credential partition (and its keys only when the partition is not plain NVS).

    An erased partition is recognised by its MD5 (milliseconds) instead of reading it over the link.
    """
    blank_md5 = hashlib.md5(b"\xff" * build.nvs.size, usedforsecurity=False).hexdigest()
    if esp.flash_md5sum(build.nvs.offset, build.nvs.size) == blank_md5:
        return HeldCredentials(BLANK)
    image = esp.read_flash(build.nvs.offset, build.nvs.size)
    held = decode_held(image, None)
    if held.kind == UNREADABLE and build.nvs_keys is not None:
        held = decode_held(image, esp.read_flash(build.nvs_keys.offset, build.nvs_keys.size))
    return held

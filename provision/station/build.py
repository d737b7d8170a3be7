"""What goes onto every board: the build's images (from flasher_args.json) and where the NVS lands.

An ESP-IDF build directory holds `flasher_args.json` (written by idf.py; keys used here: `flash_files`
offset -> path relative to the build dir, `flash_settings` {flash_mode, flash_size, flash_freq},
`extra_esptool_args.chip`) and the binary partition table it lists (normally
`partition_table/partition-table.bin`). The NVS partition that receives the credentials is found in
that table: the `fctry` data/nvs partition (esp-aliyun's name) when there is one, else `nvs`; the
nvs_keys partition likewise.

Without a build directory only the per-device partitions are written, at the offsets of the partition
table the firmware builds with (`firmware/partitions.csv`: fctry at 0xf000, nvs_keys at 0x18000), or of
the CSV given with --partition-table; its otadata partition is written blank (0xFF), which is what
ESP-IDF's ota_data_initial.bin holds and makes the bootloader start the first app slot (the factory
app, or ota_0 when there is none: ESP-IDF "Over The Air Updates", "OTA Data Partition").
With a build directory the build's own flash_files are written, ota_data_initial.bin among them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import InputError
from provision.station.partition_table import (
    NVS_KEYS_SUBTYPE,
    NVS_SUBTYPE,
    Partition,
    find_partition,
    parse_table,
    parse_table_csv,
)

__all__ = ["FIRMWARE_PARTITIONS", "FirmwareBuild", "Image", "load_build", "partitions_only"]

# The table the firmware is built with (its sdkconfig names it): the one source of the station's layout.
FIRMWARE_PARTITIONS = Path(__file__).resolve().parents[2] / "firmware" / "partitions.csv"
OTA_DATA_SUBTYPE = 0x00
NVS_LABELS = ("fctry", "nvs")
NVS_KEYS_LABELS = ("nvs_keys", "fctry_keys")


@dataclass(frozen=True)
class Image:
    """One application-side image (same on every board)."""

    offset: int
    name: str
    data: bytes = field(repr=False)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class FirmwareBuild:
    """Everything a station needs from a build, read once and shared (no secret in it)."""

    source: str
    chip: str | None
    images: tuple[Image, ...]
    nvs: Partition
    nvs_keys: Partition | None
    flash_size: str
    has_application: bool = True


def partitions_only(table_csv: Path = FIRMWARE_PARTITIONS, *, nvs_label: str | None = None) -> FirmwareBuild:
    """The per-device partitions (credentials, their keys) and blank OTA data, placed by `table_csv`.

    Raises:
        InputError: the table cannot be read or has no data/nvs partition (of `nvs_label`).
    """
    try:
        text = table_csv.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--partition-table {table_csv}: cannot read it ({exc.strerror})") from None
    partitions = parse_table_csv(text, source=str(table_csv))
    nvs = find_partition(partitions, subtype=NVS_SUBTYPE, labels=(nvs_label,) if nvs_label else NVS_LABELS)
    if nvs is None or (nvs_label and nvs.label != nvs_label):
        raise InputError(f"{table_csv}: no data/nvs partition {nvs_label or 'fctry or nvs'} for the credentials")
    keys = find_partition(partitions, subtype=NVS_KEYS_SUBTYPE, labels=NVS_KEYS_LABELS)
    images = tuple(
        Image(p.offset, f"{p.label} (blank OTA data)", b"\xff" * p.size)
        for p in partitions
        if p.type == 0x01 and p.subtype == OTA_DATA_SUBTYPE
    )
    return FirmwareBuild(
        f"no build directory: per-device partitions of {table_csv}", None, images, nvs, keys, "keep", False
    )


def _overlaps(a_offset: int, a_size: int, b_offset: int, b_size: int) -> bool:
    return a_offset < b_offset + b_size and b_offset < a_offset + a_size


def load_build(build_dir: Path, *, nvs_label: str | None = None) -> FirmwareBuild:
    """Read flasher_args.json, its images and partition table.

    Raises:
        InputError: a missing or malformed file, no NVS partition, or an image that overlaps it.
    """
    args_path = build_dir / "flasher_args.json"
    try:
        args = json.loads(args_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{args_path}: not found: give --build-dir the ESP-IDF build directory (idf.py build)"
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{args_path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    files = args.get("flash_files")
    if not isinstance(files, dict) or not files:
        raise InputError(f"{args_path}: flash_files: missing or empty")
    images: list[Image] = []
    table_data: bytes | None = None
    for offset_text, rel in files.items():
        try:
            offset = int(offset_text, 0)
        except ValueError:
            raise InputError(f"{args_path}: flash_files: {offset_text!r} is not an offset") from None
        path = build_dir / rel
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{args_path}: flash_files: {rel} does not exist in {build_dir}") from None
        images.append(Image(offset, rel, data))
        partition_table = args.get("partition-table", {})
        if rel == partition_table.get("file") or Path(rel).name == "partition-table.bin":
            table_data = data
    if table_data is None:
        raise InputError(f"{args_path}: flash_files lists no partition table (partition_table/partition-table.bin)")
    partitions = parse_table(table_data, source=f"{build_dir}/partition-table.bin")
    labels = (nvs_label,) if nvs_label else NVS_LABELS
    nvs = find_partition(partitions, subtype=NVS_SUBTYPE, labels=labels)
    if nvs is None or (nvs_label and nvs.label != nvs_label):
        raise InputError(f"{build_dir}: the partition table has no data/nvs partition {nvs_label or 'fctry or nvs'}")
    keys = find_partition(partitions, subtype=NVS_KEYS_SUBTYPE, labels=NVS_KEYS_LABELS)
    for image in images:
        for part in (nvs, keys):
            if part is not None and _overlaps(image.offset, len(image.data), part.offset, part.size):
                raise InputError(f"{args_path}: {image.name} at 0x{image.offset:x} overlaps partition {part.label}")
    settings = args.get("flash_settings", {})
    chip = args.get("extra_esptool_args", {}).get("chip")
    return FirmwareBuild(
        source=str(build_dir),
        chip=str(chip) if chip else None,
        images=tuple(sorted(images, key=lambda image: image.offset)),
        nvs=nvs,
        nvs_keys=keys,
        flash_size=str(settings.get("flash_size", "keep")),
    )

"""ESP-IDF partition tables: read the binary a build writes, and the CSV it is made from.

Binary format (ESP-IDF components/partition_table/gen_esp32part.py and the "Partition Tables" guide):
32-byte entries `<2sBBLL16sL`: magic b"\\xAA\\x50", type, subtype, offset, size, label (NUL padded),
flags; then an MD5 entry (b"\\xEB\\xEB" + 14 x 0xFF + MD5 of the entries before it); the rest of the
0xC00-byte table is 0xFF. Types: app 0x00, data 0x01. Data subtypes used here: nvs 0x02, nvs_keys 0x04.
CSV columns: Name, Type, SubType, Offset, Size, Flags; `#` starts a comment; an empty offset follows
the previous partition, aligned to 0x1000 (0x10000 for app partitions); sizes take K and M suffixes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import struct
from dataclasses import dataclass
from pathlib import Path

from provision.errors import InputError

__all__ = [
    "DEFAULT_TABLE_OFFSET",
    "Partition",
    "build_table",
    "find_partition",
    "parse_table",
    "parse_table_csv",
    "read_table_file",
]

DEFAULT_TABLE_OFFSET = 0x8000  # CONFIG_PARTITION_TABLE_OFFSET's default
TABLE_MAX_LEN = 0xC00
ENTRY = struct.Struct("<2sBBLL16sL")
MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb" + b"\xff" * 14
TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {
    0x00: {"factory": 0x00, "test": 0x20, **{f"ota_{n}": 0x10 + n for n in range(16)}},
    0x01: {
        "ota": 0x00,
        "phy": 0x01,
        "nvs": 0x02,
        "coredump": 0x03,
        "nvs_keys": 0x04,
        "efuse": 0x05,
        "undefined": 0x06,
        "esphttpd": 0x80,
        "fat": 0x81,
        "spiffs": 0x82,
        "littlefs": 0x83,
    },
}
FLAGS = {"encrypted": 0x01, "readonly": 0x02}  # gen_esp32part.py Partition.FLAGS (bit numbers 0 and 1)
NVS_SUBTYPE = 0x02
NVS_KEYS_SUBTYPE = 0x04


@dataclass(frozen=True)
class Partition:
    label: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0


def parse_table(data: bytes, *, source: str = "partition table") -> list[Partition]:
    """Parse a binary partition table; the MD5 entry, when present, must match."""
    partitions: list[Partition] = []
    for start in range(0, min(len(data), TABLE_MAX_LEN), ENTRY.size):
        raw = data[start : start + ENTRY.size]
        if len(raw) < ENTRY.size or raw == b"\xff" * ENTRY.size:
            break
        if raw[:16] == MD5_MAGIC:
            if raw[16:] != hashlib.md5(data[:start], usedforsecurity=False).digest():
                raise InputError(f"{source}: MD5 entry does not match the table: the file is damaged")
            break
        magic, ptype, subtype, offset, size, label, flags = ENTRY.unpack(raw)
        if magic != MAGIC:
            raise InputError(f"{source}: entry {len(partitions) + 1}: not a partition entry (bad magic)")
        name = label.rstrip(b"\x00").decode("ascii", errors="replace")
        partitions.append(Partition(name, ptype, subtype, offset, size, flags))
    if not partitions:
        raise InputError(f"{source}: no partitions")
    return partitions


def build_table(partitions: list[Partition]) -> bytes:
    """The binary form of `partitions`, with its MD5 entry, padded to 0xC00 bytes with 0xFF."""
    body = b"".join(
        ENTRY.pack(MAGIC, p.type, p.subtype, p.offset, p.size, p.label.encode("ascii")[:16], p.flags)
        for p in partitions
    )
    body += MD5_MAGIC + hashlib.md5(body, usedforsecurity=False).digest()
    return body + b"\xff" * (TABLE_MAX_LEN - len(body))


def _number(text: str, where: str) -> int:
    text = text.strip()
    scale = 1
    if text[-1:].upper() == "K":
        scale, text = 1024, text[:-1]
    elif text[-1:].upper() == "M":
        scale, text = 1024 * 1024, text[:-1]
    try:
        return int(text, 0) * scale
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None


def parse_table_csv(
    text: str, *, source: str = "partitions.csv", table_offset: int = DEFAULT_TABLE_OFFSET
) -> list[Partition]:
    """Parse a partition CSV into partitions with every offset resolved."""
    partitions: list[Partition] = []
    next_free = table_offset + 0x1000  # the table occupies one sector
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not cells[0] or cells[0].startswith("#"):
            continue
        where = f"{source}:{line_no}"
        if len(cells) < 5:
            raise InputError(f"{where}: expected Name, Type, SubType, Offset, Size")
        name, type_text, subtype_text, offset_text, size_text = cells[:5]
        ptype = TYPES.get(type_text) if not type_text[:1].isdigit() else _number(type_text, where)
        if ptype is None:
            raise InputError(f"{where}: Type: {type_text!r} is not app, data or a number")
        subtype = SUBTYPES.get(ptype, {}).get(subtype_text)
        if subtype is None:
            subtype = _number(subtype_text, where) if subtype_text[:1].isdigit() else None
        if subtype is None:
            raise InputError(f"{where}: SubType: {subtype_text!r} is unknown for this type")
        align = 0x10000 if ptype == TYPES["app"] else 0x1000
        offset = _number(offset_text, where) if offset_text else -(-next_free // align) * align
        size = _number(size_text, where)
        flags = 0
        for flag in filter(None, (f.strip() for f in (cells[5] if len(cells) > 5 else "").split(":"))):
            if flag not in FLAGS:
                raise InputError(f"{where}: Flags: {flag!r} is not one of {', '.join(FLAGS)}")
            flags |= FLAGS[flag]
        partitions.append(Partition(name, ptype, subtype, offset, size, flags))
        next_free = offset + size
    return partitions


def find_partition(partitions: list[Partition], *, subtype: int, labels: tuple[str, ...] = ()) -> Partition | None:
    """The data partition of `subtype`, preferring the first label of `labels` that exists."""
    candidates = [p for p in partitions if p.type == TYPES["data"] and p.subtype == subtype]
    for label in labels:
        for partition in candidates:
            if partition.label == label:
                return partition
    return candidates[0] if candidates else None


def read_table_file(path: Path) -> list[Partition]:
    return parse_table(path.read_bytes(), source=str(path))

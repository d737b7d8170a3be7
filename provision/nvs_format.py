"""The ESP-IDF NVS partition format: constants and the two crypto rules, shared by writer and reader.

Sources (ESP-IDF release/v5.5):
- docs/en/api-reference/storage/nvs_flash.rst, "Internals": 4096-byte pages; a 32-byte page header
  (state u32, sequence number u32, version u8, 19 unused bytes, CRC32 of bytes 4..27); a 32-byte entry
  state bitmap (2 bits per entry: 11 empty, 10 written, 00 erased); 126 entries of 32 bytes from offset 64.
  An entry: namespace index u8, type u8, span u8, chunk index u8, CRC32 u32 (of bytes 0..3 and 8..31),
  key char[16] (NUL-terminated, so 15 characters at most), 8 data bytes. Primitive types store the value
  little-endian in the data bytes; strings (SZ) and blob chunks store size u16, 2 reserved bytes and the
  CRC32 of the payload, and the payload fills the next span-1 entries. A v2 blob is an index entry
  (BLOB_IDX: total size u32, chunk count u8, first chunk index u8) plus BLOB_DATA chunks. Namespace
  names are U8 entries in namespace 0 whose value is the namespace index.
- components/nvs_flash/src/nvs_page.hpp / nvs_types.hpp: page states 0xFFFFFFFF uninitialised,
  0xFFFFFFFE active, 0xFFFFFFFC full, 0xFFFFFFF8 freeing, 0xFFFFFFF0 corrupt; version 0xFE = v2.
- CRC32: esp_rom_crc32_le(0xFFFFFFFF, ...) on the chip, which equals Python's
  `zlib.crc32(data, 0xFFFFFFFF)`; nvs_partition_gen.py (esp-idf-nvs-partition-gen) computes it that way.
- docs/en/api-reference/storage/nvs_encryption.rst and components/nvs_flash/src/nvs_encrypted_partition.cpp:
  each 32-byte entry is one XTS-AES sector (the 64-byte key is XTS key || tweak key, i.e. AES-256-XTS,
  `mbedtls_aes_xts_setkey_enc(..., 2 * NVS_KEY_SIZE * 8)`), and the sector number is the entry's address
  relative to the partition start, as a little-endian u32 zero-padded to 16 bytes. Page headers and the
  state bitmap are read and written unencrypted (readRaw/writeRaw).
- nvs_keys partition (nvs_flash_read_security_cfg / nvs_flash_generate_keys in nvs_api.cpp): XTS key 32
  bytes, tweak key 32 bytes, CRC32 of those 64 bytes little-endian, the rest of the 4096 bytes 0xFF.
- HMAC scheme (components/nvs_sec_provider/nvs_sec_provider.c, compute_nvs_keys_with_hmac):
  XTS key = HMAC-SHA256(eFuse key, eight little-endian u32 0xAEBE5A5A), tweak key = HMAC-SHA256(eFuse key,
  eight little-endian u32 0xCEDEA5A5). esp-idf-nvs-partition-gen's generate_key derives the same
  (seed elements b"\\x5A\\x5A\\xBE\\xAE" and b"\\xA5\\xA5\\xDE\\xCE" repeated 8 times).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from typing import Final

__all__ = [
    "ENTRIES_PER_PAGE",
    "ENTRY_SIZE",
    "FIRST_ENTRY_OFFSET",
    "HMAC_KEY_SIZE",
    "NVS_KEYS_PARTITION_SIZE",
    "PAGE_SIZE",
    "XTS_KEY_SIZE",
    "crc32",
    "entry_crc",
    "entry_tweak",
    "hmac_xts_key",
    "nvs_keys_partition",
    "parse_nvs_keys_partition",
]

PAGE_SIZE: Final = 4096
ENTRY_SIZE: Final = 32
BITMAP_OFFSET: Final = 32
BITMAP_SIZE: Final = 32
FIRST_ENTRY_OFFSET: Final = 64
ENTRIES_PER_PAGE: Final = 126

PAGE_UNINITIALIZED: Final = 0xFFFFFFFF
PAGE_ACTIVE: Final = 0xFFFFFFFE
PAGE_FULL: Final = 0xFFFFFFFC
PAGE_FREEING: Final = 0xFFFFFFF8
PAGE_CORRUPT: Final = 0xFFFFFFF0
PAGE_STATE_NAMES: Final = {
    PAGE_ACTIVE: "active",
    PAGE_FULL: "full",
    PAGE_FREEING: "freeing",
}
VERSION_1: Final = 0xFF
VERSION_2: Final = 0xFE

ENTRY_EMPTY: Final = 0b11
ENTRY_WRITTEN: Final = 0b10
ENTRY_ERASED: Final = 0b00

TYPE_SZ: Final = 0x21
TYPE_BLOB_V1: Final = 0x41
TYPE_BLOB_DATA: Final = 0x42
TYPE_BLOB_IDX: Final = 0x48
# type code -> (name, struct format of the little-endian value)
PRIMITIVE_TYPES: Final = {
    0x01: ("u8", "<B"),
    0x11: ("i8", "<b"),
    0x02: ("u16", "<H"),
    0x12: ("i16", "<h"),
    0x04: ("u32", "<I"),
    0x14: ("i32", "<i"),
    0x08: ("u64", "<Q"),
    0x18: ("i64", "<q"),
}
CHUNK_ANY: Final = 0xFF

XTS_KEY_SIZE: Final = 64
HMAC_KEY_SIZE: Final = 32
NVS_KEYS_PARTITION_SIZE: Final = 4096
HMAC_XTS_SEED: Final = struct.pack("<8I", *([0xAEBE5A5A] * 8))
HMAC_TWEAK_SEED: Final = struct.pack("<8I", *([0xCEDEA5A5] * 8))


def crc32(data: bytes) -> int:
    """NVS CRC32 (esp_rom_crc32_le with initial value 0xFFFFFFFF)."""
    return zlib.crc32(data, 0xFFFFFFFF) & 0xFFFFFFFF


def entry_crc(entry: bytes) -> int:
    """CRC32 of an entry's bytes 0..3 and 8..31 (the CRC field itself is left out)."""
    return crc32(entry[0:4] + entry[8:32])


def entry_tweak(page_index: int, entry_index: int) -> bytes:
    """XTS sector number of an entry: its offset from the partition start, u32 little-endian, 16 bytes."""
    relative_address = page_index * PAGE_SIZE + FIRST_ENTRY_OFFSET + entry_index * ENTRY_SIZE
    return relative_address.to_bytes(4, "little") + bytes(12)


def hmac_xts_key(hmac_key: bytes) -> bytes:
    """The 64-byte XTS key (XTS key || tweak key) the chip derives from an eFuse HMAC key."""
    if len(hmac_key) != HMAC_KEY_SIZE:
        raise ValueError(f"an HMAC key is {HMAC_KEY_SIZE} bytes, not {len(hmac_key)}")
    xts = hmac.new(hmac_key, HMAC_XTS_SEED, hashlib.sha256).digest()
    tweak = hmac.new(hmac_key, HMAC_TWEAK_SEED, hashlib.sha256).digest()
    return xts + tweak


def nvs_keys_partition(xts_key: bytes) -> bytes:
    """The 4096-byte nvs_keys partition holding a 64-byte XTS key, its CRC32, then 0xFF."""
    if len(xts_key) != XTS_KEY_SIZE:
        raise ValueError(f"an XTS key is {XTS_KEY_SIZE} bytes, not {len(xts_key)}")
    body = xts_key + struct.pack("<I", crc32(xts_key))
    return body + b"\xff" * (NVS_KEYS_PARTITION_SIZE - len(body))


def parse_nvs_keys_partition(partition: bytes) -> bytes | None:
    """The XTS key in an nvs_keys partition, or None when its size or CRC is wrong."""
    if len(partition) != NVS_KEYS_PARTITION_SIZE:
        return None
    key = partition[:XTS_KEY_SIZE]
    (stored,) = struct.unpack_from("<I", partition, XTS_KEY_SIZE)
    if stored != crc32(key):
        return None
    return key

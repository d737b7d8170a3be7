"""Our own writer of the small NVS images gen-nvs makes: one namespace and a few short strings on page 0.

The format is the one provision.nvs_format describes (its sources are cited there); the bytes are those
esp-idf-nvs-partition-gen writes for the same entries (tests/python/test_nvs_writer.py compares them on
random devices, plain and both encryption schemes). Writing them directly costs a fraction of the
package's CPU: it builds one Python object per entry and one AES-XTS cipher object per 32-byte entry,
while here a whole image is encrypted with two AES-ECB passes (XTS computed from its definition, IEEE
1619: T = AES(K2, sector number), T_j+1 = T_j * alpha in GF(2^128), C_j = AES(K1, P_j ^ T_j) ^ T_j; an entry
is one 32-byte sector, two AES blocks, so no ciphertext stealing is ever needed).
"""

from __future__ import annotations

import struct
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from provision import nvs_format as fmt

__all__ = ["MAX_ENTRIES", "encode_strings"]

MAX_ENTRIES: Final = fmt.ENTRIES_PER_PAGE
_TYPE_U8: Final = 0x01
_NAMESPACE_INDEX: Final = 1
_MASK_128: Final = (1 << 128) - 1
_GF_128_REDUCTION: Final = 0x87


def _header_entry(namespace_index: int, type_code: int, span: int, key: str, data: bytes) -> bytearray:
    entry = bytearray(struct.pack("<BBBB4x16s8s", namespace_index, type_code, span, fmt.CHUNK_ANY, key.encode(), data))
    struct.pack_into("<I", entry, 4, fmt.entry_crc(entry))
    return entry


def _string_entries(key: str, value: str) -> bytes:
    payload = value.encode() + b"\0"
    data_entries = (len(payload) + fmt.ENTRY_SIZE - 1) // fmt.ENTRY_SIZE
    header = _header_entry(
        _NAMESPACE_INDEX,
        fmt.TYPE_SZ,
        1 + data_entries,
        key,
        struct.pack("<HHI", len(payload), 0xFFFF, fmt.crc32(payload)),
    )
    return bytes(header) + payload.ljust(data_entries * fmt.ENTRY_SIZE, b"\xff")


# Page 0's sector numbers, entry after entry: the input of the tweak encryption, the same for every image.
_PAGE0_SECTORS: Final = b"".join(fmt.entry_tweak(0, index) for index in range(fmt.ENTRIES_PER_PAGE))


def _lanes(count: int, value: int) -> int:
    """`value` in every one of `count` 128-bit lanes of a little-endian integer."""
    return int.from_bytes(value.to_bytes(16, "little") * count, "little")


def _xts_encrypt_entries(entries: bytes, xts_key: bytes) -> bytes:
    """Entries 0..n-1 of page 0, each its own XTS sector numbered by its offset in the partition.

    Each lane's T * alpha is computed for all entries at once on one integer: shift left, drop the bit that
    crossed into the next lane, and fold each lane's carry back as 0x87."""
    count = len(entries) // fmt.ENTRY_SIZE
    tweak_cipher = Cipher(algorithms.AES(xts_key[32:]), modes.ECB()).encryptor()  # noqa: S305 - XTS by hand
    first = tweak_cipher.update(_PAGE0_SECTORS[: 16 * count])
    lanes = int.from_bytes(first, "little")
    carries = (lanes >> 127) & _lanes(count, 1)
    second = ((lanes << 1) & _lanes(count, _MASK_128 - 1)) ^ (carries * _GF_128_REDUCTION)
    second_bytes = second.to_bytes(16 * count, "little")
    masks = bytearray(len(entries))
    for index in range(count):
        masks[32 * index : 32 * index + 16] = first[16 * index : 16 * index + 16]
        masks[32 * index + 16 : 32 * index + 32] = second_bytes[16 * index : 16 * index + 16]
    mask = int.from_bytes(masks, "little")
    size = len(entries)
    whitened = (int.from_bytes(entries, "little") ^ mask).to_bytes(size, "little")
    data_cipher = Cipher(algorithms.AES(xts_key[:32]), modes.ECB()).encryptor()  # noqa: S305 - XTS by hand
    return (int.from_bytes(data_cipher.update(whitened), "little") ^ mask).to_bytes(size, "little")


def encode_strings(namespace: str, pairs: list[tuple[str, str]], size: int, xts_key: bytes | None) -> bytes:
    """A `size`-byte NVS v2 image: page 0 active (sequence 0) holding namespace 1 = `namespace` and the string
    entries in order, the other pages erased (0xFF); every entry XTS-encrypted when `xts_key` is given.

    Raises:
        ValueError: the entries do not fit on one page (gen-nvs's fields are at most 64 characters, so
            its images always do), a key longer than 15 characters, or a size of less than one page.
    """
    if size < fmt.PAGE_SIZE or size % fmt.PAGE_SIZE:
        raise ValueError(f"size 0x{size:X} is not a whole number of pages")
    names = [namespace, *(key for key, _ in pairs)]
    if any(len(name.encode()) > 15 for name in names):
        raise ValueError("NVS keys and namespace names are at most 15 bytes")
    entries = bytes(_header_entry(0, _TYPE_U8, 1, namespace, bytes([_NAMESPACE_INDEX]) + b"\xff" * 7))
    entries += b"".join(_string_entries(key, value) for key, value in pairs)
    count = len(entries) // fmt.ENTRY_SIZE
    if count > MAX_ENTRIES:
        raise ValueError(f"{count} entries do not fit on one page of {MAX_ENTRIES}")
    if xts_key is not None:
        entries = _xts_encrypt_entries(entries, xts_key)
    return b"".join((_PAGE0_HEADER, _bitmap(count), entries, b"\xff" * (size - _ENTRIES_START - len(entries))))


def _page0_header() -> bytes:
    """Page 0 of every image: active, sequence number 0, format version 2, then its CRC."""
    header = bytearray(struct.pack("<IIB", fmt.PAGE_ACTIVE, 0, fmt.VERSION_2) + b"\xff" * 23)
    struct.pack_into("<I", header, 28, fmt.crc32(bytes(header[4:28])))
    return bytes(header)


_PAGE0_HEADER: Final = _page0_header()
_ENTRIES_START: Final = fmt.FIRST_ENTRY_OFFSET


def _bitmap(written: int) -> bytes:
    """The entry state bitmap with entries 0..written-1 marked written (0b10), the rest empty (0b11):
    four states a byte, the first in the low bits."""
    whole, rest = divmod(written, 4)
    partial = bytes([0xFF & ~sum(1 << (2 * index) for index in range(rest))]) if rest else b""
    return (b"\xaa" * whole + partial).ljust(fmt.BITMAP_SIZE, b"\xff")

"""Our own writer of the small NVS images gen-nvs makes: one namespace and a few short strings on page 0.

The format is the one provision.nvs_format describes (its sources are cited there); the bytes are those
esp-idf-nvs-partition-gen writes for the same entries (tests/python/test_nvs_writer.py compares them on
random devices, plain and both encryption schemes). Writing them directly costs a fraction of the
package's CPU: it builds one Python object per entry and one AES-XTS cipher object per 32-byte entry,
while here a whole image is encrypted with two AES-ECB passes (XTS computed from its definition, IEEE
1619: T = AES(K2, sector number), T_j+1 = T_j * alpha in GF(2^128), C_j = AES(K1, P_j ^ T_j) ^ T_j; an entry
is one 32-byte sector, two AES blocks, so no ciphertext stealing is ever needed).

A StringImageWriter serves one run: what every image of that run shares (page header, bitmaps and 0xFF
tails per entry count, each key's entry header and its CRC up to the data bytes, the XTS masks' lane
constants) is computed once, so a device costs a few CRCs, two AES-ECB calls and one join.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from provision import nvs_format as fmt

__all__ = ["MAX_ENTRIES", "StringImageWriter", "encode_strings"]

MAX_ENTRIES: Final = fmt.ENTRIES_PER_PAGE
_TYPE_U8: Final = 0x01
_NAMESPACE_INDEX: Final = 1
_CRC_INIT: Final = 0xFFFFFFFF
_GF_128_REDUCTION: Final = 0x87
_ECB: Final = modes.ECB()  # noqa: S305 - XTS computed by hand from two ECB passes (module docstring)
_pack_u32 = struct.Struct("<I").pack
_pack_sz_data = struct.Struct("<HHI").pack

# Each entry's sector number twice (once per AES block of the entry), for all entries of page 0: encrypted
# with the tweak key it gives every block its entry's T, the same input for every image.
_PAGE0_SECTORS_TWICE: Final = b"".join(fmt.entry_tweak(0, index) * 2 for index in range(fmt.ENTRIES_PER_PAGE))


def _lanes(count: int, value: int) -> int:
    """`value` in every one of `count` 128-bit lanes of a little-endian integer."""
    return int.from_bytes(value.to_bytes(16, "little") * count, "little")


class _XtsLanes:
    """Integer masks over the 2 * count AES blocks of `count` entries (block k = bits 128k..128k+127)."""

    def __init__(self, count: int) -> None:
        blocks = 2 * count
        self.sectors = _PAGE0_SECTORS_TWICE[: 16 * blocks]
        self.low_bits = _lanes(blocks, 1)
        self.not_low_bits = _lanes(blocks, (1 << 128) - 2)
        first_blocks = int.from_bytes((b"\xff" * 16 + bytes(16)) * count, "little")
        self.first_blocks = first_blocks
        self.second_blocks = first_blocks << 128


def _xts_encrypt(entries: bytes, xts_key: bytes, lanes: _XtsLanes) -> bytes:
    """Entries 0..n-1 of page 0, each its own XTS sector numbered by its offset in the partition.

    One ECB pass of the tweak key over each sector number twice gives T in both blocks of every entry; the
    second block's T * alpha is computed for all entries at once on one integer: shift every lane left, drop
    the bit that crossed into the next lane, fold each lane's carry back as 0x87, keep it in second blocks."""
    tweaks = Cipher(algorithms.AES(xts_key[32:]), _ECB).encryptor().update(lanes.sectors)
    t = int.from_bytes(tweaks, "little")
    doubled = ((t << 1) & lanes.not_low_bits) ^ (((t >> 127) & lanes.low_bits) * _GF_128_REDUCTION)
    mask = (t & lanes.first_blocks) | (doubled & lanes.second_blocks)
    size = len(entries)
    whitened = (int.from_bytes(entries, "little") ^ mask).to_bytes(size, "little")
    encrypted = Cipher(algorithms.AES(xts_key[:32]), _ECB).encryptor().update(whitened)
    return (int.from_bytes(encrypted, "little") ^ mask).to_bytes(size, "little")


def _bitmap(written: int) -> bytes:
    """The entry state bitmap with entries 0..written-1 marked written (0b10), the rest empty (0b11):
    four states a byte, the first in the low bits."""
    whole, rest = divmod(written, 4)
    partial = bytes([0xFF & ~sum(1 << (2 * index) for index in range(rest))]) if rest else b""
    return (b"\xaa" * whole + partial).ljust(fmt.BITMAP_SIZE, b"\xff")


def _page0_header() -> bytes:
    """Page 0 of every image: active, sequence number 0, format version 2, then its CRC."""
    header = bytearray(struct.pack("<IIB", fmt.PAGE_ACTIVE, 0, fmt.VERSION_2) + b"\xff" * 23)
    struct.pack_into("<I", header, 28, fmt.crc32(bytes(header[4:28])))
    return bytes(header)


_PAGE0_HEADER: Final = _page0_header()


def _key_field(name: str) -> bytes:
    raw = name.encode()
    if len(raw) > 15:
        raise ValueError("NVS keys and namespace names are at most 15 bytes")
    return raw.ljust(16, b"\0")


class StringImageWriter:
    """Builds `size`-byte NVS v2 images of one namespace and string entries, plain or XTS-encrypted.

    Raises:
        ValueError: a size that is not a whole number of pages (at least one).
    """

    _REPEATS_KEPT = 64

    def __init__(self, size: int, *, repeated_keys: Sequence[str] = ()) -> None:
        """Args:
        repeated_keys: keys whose values repeat across images (a CSV's ProductKey, its region): their whole
            entries are kept, a few values each. Never a secret's key: no secret outlives its image.
        """
        if size < fmt.PAGE_SIZE or size % fmt.PAGE_SIZE:
            raise ValueError(f"size 0x{size:X} is not a whole number of pages")
        self._size = size
        self._repeated: dict[str, dict[str, bytes]] = {key: {} for key in repeated_keys}
        self._namespace_entries: dict[str, bytes] = {}
        # (key, span) -> (entry bytes 0..3, CRC32 state after bytes 0..3 and the key field, key field)
        self._string_heads: dict[tuple[str, int], tuple[bytes, int, bytes]] = {}
        # entry count -> (page header + bitmap, the 0xFF tail after the entries); its XTS lane masks
        self._pages: dict[int, tuple[bytes, bytes]] = {}
        self._lanes: dict[int, _XtsLanes] = {}

    def _namespace_entry(self, namespace: str) -> bytes:
        entry = self._namespace_entries.get(namespace)
        if entry is None:
            head = bytes([0, _TYPE_U8, 1, fmt.CHUNK_ANY])
            rest = _key_field(namespace) + bytes([_NAMESPACE_INDEX]) + b"\xff" * 7
            entry = head + _pack_u32(zlib.crc32(rest, zlib.crc32(head, _CRC_INIT))) + rest
            self._namespace_entries[namespace] = entry
        return entry

    def _string_head(self, key: str, span: int) -> tuple[bytes, int, bytes]:
        found = self._string_heads.get((key, span))
        if found is None:
            head = bytes([_NAMESPACE_INDEX, fmt.TYPE_SZ, span, fmt.CHUNK_ANY])
            field = _key_field(key)
            found = (head, zlib.crc32(field, zlib.crc32(head, _CRC_INIT)), field)
            self._string_heads[(key, span)] = found
        return found

    def _page(self, count: int) -> tuple[bytes, bytes]:
        page = self._pages.get(count)
        if page is None:
            if count > MAX_ENTRIES:
                raise ValueError(f"{count} entries do not fit on one page of {MAX_ENTRIES}")
            tail = b"\xff" * (self._size - fmt.FIRST_ENTRY_OFFSET - count * fmt.ENTRY_SIZE)
            page = (_PAGE0_HEADER + _bitmap(count), tail)
            self._pages[count] = page
        return page

    def _xts_lanes(self, count: int) -> _XtsLanes:
        lanes = self._lanes.get(count)
        if lanes is None:
            lanes = self._lanes[count] = _XtsLanes(count)
        return lanes

    def _string_entries(self, key: str, value: str) -> bytes:
        payload = value.encode() + b"\0"
        length = len(payload)
        data_entries = (length + fmt.ENTRY_SIZE - 1) // fmt.ENTRY_SIZE
        head, crc_state, field = self._string_head(key, 1 + data_entries)
        data = _pack_sz_data(length, 0xFFFF, zlib.crc32(payload, _CRC_INIT))
        padded_payload = payload.ljust(data_entries * fmt.ENTRY_SIZE, b"\xff")
        return b"".join((head, _pack_u32(zlib.crc32(data, crc_state)), field, data, padded_payload))

    def image(self, namespace: str, pairs: Sequence[tuple[str, str]], xts_key: bytes | None) -> bytes:
        """Page 0 active (sequence 0) holding namespace 1 = `namespace` and the string entries in order, the
        other pages erased (0xFF); every entry XTS-encrypted with the 64-byte `xts_key` when given.

        Raises:
            ValueError: the entries do not fit on one page (gen-nvs's fields are at most 64 characters, so its
                images always do), or a key or namespace longer than 15 bytes.
        """
        parts = [self._namespace_entry(namespace)]
        for key, value in pairs:
            kept = self._repeated.get(key)
            if kept is None:
                parts.append(self._string_entries(key, value))
                continue
            entries = kept.get(value)
            if entries is None:
                entries = self._string_entries(key, value)
                if len(kept) < self._REPEATS_KEPT:
                    kept[value] = entries
            parts.append(entries)
        entries = b"".join(parts)
        count = len(entries) // fmt.ENTRY_SIZE
        header, tail = self._page(count)
        if xts_key is not None:
            entries = _xts_encrypt(entries, xts_key, self._xts_lanes(count))
        return b"".join((header, entries, tail))


def encode_strings(namespace: str, pairs: list[tuple[str, str]], size: int, xts_key: bytes | None) -> bytes:
    """One image of StringImageWriter(size).image(namespace, pairs, xts_key) (see there)."""
    return StringImageWriter(size).image(namespace, pairs, xts_key)

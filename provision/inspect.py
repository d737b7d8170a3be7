"""Read an NVS partition image back, strictly: every page header and entry CRC, every span, decrypted
when keys are given. The format and its sources are described in provision.nvs_format.

No PyPI package reads NVS images (esp-idf-nvs-partition-gen only writes and decrypts), hence this reader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from provision import nvs_format as fmt
from provision.errors import InputError

__all__ = [
    "CorruptImage",
    "Inspection",
    "NvsEntry",
    "entry_record",
    "format_entries",
    "inspect_files",
    "inspect_image",
    "printable",
    "read_nvs",
]

ENTRY_CRC_MISMATCH = "entry CRC mismatch"
SECRET_KEYS = frozenset({"device_secret", "DeviceSecret", "ProductSecret", "product_secret"})


class CorruptImage(InputError):
    """The image breaks the NVS format: a CRC, a state, a span or a size is wrong."""


@dataclass(frozen=True)
class NvsEntry:
    """One key-value pair: `type` is u8..i64, "string" or "blob"."""

    namespace: str
    key: str
    type: str
    value: int | str | bytes = field(repr=False)


@dataclass(frozen=True)
class _RawItem:
    page: int
    index: int
    namespace_index: int
    type_code: int
    chunk_index: int
    key: str
    data: bytes  # the 8 data bytes of the header entry
    payload: bytes  # span-1 following entries


class _Reader:
    def __init__(self, image: bytes, xts_key: bytes | None, source: str) -> None:
        self.image = image
        self.source = source
        self.xts_key = xts_key

    def fail(self, where: str, what: str) -> CorruptImage:
        hint = ""
        if what == ENTRY_CRC_MISMATCH:  # page headers are never encrypted, entries are
            hint = " (an encrypted image? pass its keys)" if self.xts_key is None else " (wrong keys?)"
        return CorruptImage(f"{self.source}: {where}: {what}{hint}")

    def decrypt(self, raw: bytes, page: int, index: int) -> bytes:
        if self.xts_key is None:
            return raw
        decryptor = Cipher(algorithms.AES(self.xts_key), modes.XTS(fmt.entry_tweak(page, index))).decryptor()
        return decryptor.update(raw) + decryptor.finalize()

    def items(self) -> list[_RawItem]:
        size = len(self.image)
        if size == 0 or size % fmt.PAGE_SIZE:
            raise CorruptImage(f"{self.source}: {size} bytes is not a whole number of 4096-byte pages")
        items: list[_RawItem] = []
        sequences: dict[int, int] = {}
        for page in range(size // fmt.PAGE_SIZE):
            items.extend(self.page_items(page, sequences))
        return items

    def page_items(self, page: int, sequences: dict[int, int]) -> list[_RawItem]:
        base = page * fmt.PAGE_SIZE
        data = self.image[base : base + fmt.PAGE_SIZE]
        state, sequence, version = struct.unpack_from("<IIB", data, 0)
        where = f"page {page}"
        if state == fmt.PAGE_UNINITIALIZED:
            if data.count(0xFF) != fmt.PAGE_SIZE:
                raise self.fail(where, "page marked uninitialised holds data")
            return []
        if state not in fmt.PAGE_STATE_NAMES:
            raise self.fail(where, f"page state 0x{state:08X} is not active, full or freeing")
        (stored_crc,) = struct.unpack_from("<I", data, 28)
        if fmt.crc32(data[4:28]) != stored_crc:
            raise self.fail(where, "page header CRC mismatch")
        if version not in (fmt.VERSION_1, fmt.VERSION_2):
            raise self.fail(where, f"unknown format version 0x{version:02X}")
        if sequence in sequences:
            raise self.fail(where, f"sequence number {sequence} also used by page {sequences[sequence]}")
        sequences[sequence] = page

        bitmap = data[fmt.BITMAP_OFFSET : fmt.BITMAP_OFFSET + fmt.BITMAP_SIZE]
        states = [(bitmap[i // 4] >> ((i % 4) * 2)) & 0b11 for i in range(fmt.ENTRIES_PER_PAGE)]
        items: list[_RawItem] = []
        index = 0
        while index < fmt.ENTRIES_PER_PAGE:
            where = f"page {page} entry {index}"
            offset = fmt.FIRST_ENTRY_OFFSET + index * fmt.ENTRY_SIZE
            raw = data[offset : offset + fmt.ENTRY_SIZE]
            entry_state = states[index]
            if entry_state == fmt.ENTRY_ERASED:
                index += 1
                continue
            if entry_state == fmt.ENTRY_EMPTY:
                if raw.count(0xFF) != fmt.ENTRY_SIZE:
                    raise self.fail(where, "entry marked empty holds data")
                index += 1
                continue
            if entry_state != fmt.ENTRY_WRITTEN:
                raise self.fail(where, "entry state bits 01 are not a valid state")
            entry = self.decrypt(raw, page, index)
            if fmt.entry_crc(entry) != struct.unpack_from("<I", entry, 4)[0]:
                raise self.fail(where, ENTRY_CRC_MISMATCH)
            namespace_index, type_code, span, chunk_index = entry[0], entry[1], entry[2], entry[3]
            if span < 1 or index + span > fmt.ENTRIES_PER_PAGE:
                raise self.fail(where, f"span {span} runs past the end of the page")
            payload = bytearray()
            for follower in range(index + 1, index + span):
                if states[follower] != fmt.ENTRY_WRITTEN:
                    raise self.fail(f"page {page} entry {follower}", "part of a span but not marked written")
                start = fmt.FIRST_ENTRY_OFFSET + follower * fmt.ENTRY_SIZE
                payload += self.decrypt(data[start : start + fmt.ENTRY_SIZE], page, follower)
            key_field = entry[8:24]
            if 0 not in key_field:
                raise self.fail(where, "key is not NUL-terminated within 16 bytes")
            try:
                key = key_field[: key_field.index(0)].decode("ascii")
            except UnicodeDecodeError:
                raise self.fail(where, "key is not ASCII") from None
            items.append(
                _RawItem(page, index, namespace_index, type_code, chunk_index, key, bytes(entry[24:32]), bytes(payload))
            )
            index += span
        return items


def _variable_payload(reader: _Reader, item: _RawItem) -> bytes:
    size, _reserved, data_crc = struct.unpack("<HHI", item.data)
    where = f"page {item.page} entry {item.index} ({item.key})"
    if size > len(item.payload):
        raise reader.fail(where, f"data size {size} exceeds its span of {len(item.payload)} bytes")
    payload = item.payload[:size]
    if fmt.crc32(payload) != data_crc:
        raise reader.fail(where, "data CRC mismatch")
    return payload


def _decode(reader: _Reader, items: list[_RawItem]) -> list[NvsEntry]:
    namespaces: dict[int, str] = {}
    for item in items:
        if item.namespace_index == 0:
            where = f"page {item.page} entry {item.index}"
            if item.type_code != 0x01:
                raise reader.fail(where, f"namespace 0 holds a non-u8 entry {item.key!r}")
            namespaces[item.data[0]] = item.key
    chunks: dict[tuple[int, str, int], bytes] = {}
    used_chunks: set[tuple[int, str, int]] = set()
    for item in items:
        if item.type_code == fmt.TYPE_BLOB_DATA:
            chunk_key = (item.namespace_index, item.key, item.chunk_index)
            if chunk_key in chunks:
                where = f"page {item.page} entry {item.index}"
                raise reader.fail(where, f"blob chunk {item.chunk_index} of {item.key!r} appears twice")
            chunks[chunk_key] = _variable_payload(reader, item)

    entries: list[NvsEntry] = []
    seen: set[tuple[int, str]] = set()
    for item in items:
        if item.namespace_index == 0 or item.type_code == fmt.TYPE_BLOB_DATA:
            continue
        where = f"page {item.page} entry {item.index} ({item.key})"
        namespace = namespaces.get(item.namespace_index)
        if namespace is None:
            raise reader.fail(where, f"namespace index {item.namespace_index} is not defined")
        if (item.namespace_index, item.key) in seen:
            raise reader.fail(where, f"key {item.key!r} appears twice in namespace {namespace!r}")
        seen.add((item.namespace_index, item.key))
        value: int | str | bytes
        if item.type_code in fmt.PRIMITIVE_TYPES:
            type_name, layout = fmt.PRIMITIVE_TYPES[item.type_code]
            (value,) = struct.unpack_from(layout, item.data)
        elif item.type_code == fmt.TYPE_SZ:
            type_name = "string"
            payload = _variable_payload(reader, item)
            if not payload.endswith(b"\0"):
                raise reader.fail(where, "string is not NUL-terminated")
            try:
                value = payload[:-1].decode("utf-8")
            except UnicodeDecodeError:
                raise reader.fail(where, "string is not UTF-8") from None
        elif item.type_code == fmt.TYPE_BLOB_V1:
            type_name, value = "blob", _variable_payload(reader, item)
        elif item.type_code == fmt.TYPE_BLOB_IDX:
            type_name = "blob"
            total, count, first = struct.unpack_from("<IBB", item.data)
            parts = []
            for chunk_index in range(first, first + count):
                chunk_key = (item.namespace_index, item.key, chunk_index)
                if chunk_key not in chunks:
                    raise reader.fail(where, f"blob chunk {chunk_index} is missing")
                used_chunks.add(chunk_key)
                parts.append(chunks[chunk_key])
            value = b"".join(parts)
            if len(value) != total:
                raise reader.fail(where, f"blob chunks hold {len(value)} bytes, the index says {total}")
        else:
            raise reader.fail(where, f"unknown entry type 0x{item.type_code:02X}")
        entries.append(NvsEntry(namespace, item.key, type_name, value))
    orphans = sorted(set(chunks) - used_chunks)
    if orphans:
        _ns, key, chunk_index = orphans[0]
        raise reader.fail("blob", f"chunk {chunk_index} of {key!r} belongs to no blob index")
    return entries


def read_nvs(
    image: bytes,
    *,
    nvs_keys: bytes | None = None,
    hmac_key: bytes | None = None,
    source: str = "image",
) -> list[NvsEntry]:
    """Parse and verify an NVS partition image.

    Args:
        image: the partition image (a whole number of 4096-byte pages).
        nvs_keys: the 4096-byte nvs_keys partition of the flash-encryption scheme.
        hmac_key: the 32-byte eFuse HMAC key of the HMAC scheme (the XTS keys are derived as on the chip).
        source: name used in error messages.

    Returns:
        Data entries in image order (namespace definitions are folded into `namespace`).

    Raises:
        CorruptImage: (an InputError) at the first broken CRC, state, span or size.
        InputError: bad keys.
    """
    if nvs_keys is not None and hmac_key is not None:
        raise InputError(f"{source}: give the nvs_keys partition or the HMAC key, not both")
    xts_key: bytes | None = None
    if nvs_keys is not None:
        xts_key = fmt.parse_nvs_keys_partition(nvs_keys)
        if xts_key is None:
            raise InputError(f"{source}: keys: not an nvs_keys partition (4096 bytes, CRC32 after the 64-byte key)")
    if hmac_key is not None:
        if len(hmac_key) != fmt.HMAC_KEY_SIZE:
            raise InputError(f"{source}: HMAC key: {len(hmac_key)} bytes, expected {fmt.HMAC_KEY_SIZE}")
        xts_key = fmt.hmac_xts_key(hmac_key)
    reader = _Reader(bytes(image), xts_key, source)
    return _decode(reader, reader.items())


def printable(text: str) -> str:
    """`text` with control and other non-printing characters as `\\xNN` / `\\uNNNN` (and `\\` doubled), so an
    image cannot move the cursor, recolour or rewrite the operator's terminal."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return "".join(out)


def is_masked(entry: NvsEntry, show_secrets: bool) -> bool:
    return entry.key in SECRET_KEYS and not show_secrets


def _masked(entry: NvsEntry) -> str:
    if isinstance(entry.value, str):
        size = f"{len(entry.value)} characters"
    elif isinstance(entry.value, bytes):
        size = f"{len(entry.value)} bytes"
    else:
        size = entry.type
    return f"******** ({size}, --show-secrets to reveal)"


def format_entries(entries: list[NvsEntry], *, show_secrets: bool = False) -> list[str]:
    """Human-readable lines `namespace  key  type  value`, secret values masked unless asked; every text
    from the image goes through `printable`."""
    lines = []
    for entry in entries:
        if is_masked(entry, show_secrets):
            shown = _masked(entry)
        elif isinstance(entry.value, bytes):
            shown = entry.value.hex()
        else:
            shown = printable(str(entry.value))
        lines.append(f"{printable(entry.namespace):<15} {printable(entry.key):<15} {entry.type:<6} {shown}")
    return lines


def entry_record(entry: NvsEntry, *, show_secrets: bool = False) -> dict[str, object]:
    """One entry for `inspect --json`: a masked secret has `"value": null, "masked": true`; a blob is hex."""
    value: object = entry.value.hex() if isinstance(entry.value, bytes) else entry.value
    masked = is_masked(entry, show_secrets)
    return {
        "namespace": entry.namespace,
        "key": entry.key,
        "type": entry.type,
        "value": None if masked else value,
        "masked": masked,
    }


def _read_input(path: Path, what: str) -> bytes:
    archive, marker, member = str(path).partition("::")
    if marker and not path.exists() and Path(archive).is_file():  # ARCHIVE::DEVICE/nvs.bin (gen-nvs --archive)
        from provision.nvs_archive import member_bytes

        return member_bytes(archive, member)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what}: {exc.strerror}") from None


@dataclass(frozen=True)
class Inspection:
    """A verified image: what `provision inspect` prints, as lines or as one JSON document."""

    image: str
    pages: int
    scheme: str
    entries: list[NvsEntry]

    def lines(self, *, show_secrets: bool = False) -> list[str]:
        summary = f"{self.image}: {self.pages} pages, {len(self.entries)} entries, all CRCs OK ({self.scheme})"
        return [summary, *format_entries(self.entries, show_secrets=show_secrets)]

    def to_json_dict(self, *, show_secrets: bool = False) -> dict[str, object]:
        return {
            "image": self.image,
            "pages": self.pages,
            "scheme": self.scheme,
            "crc": "ok",
            "entries": [entry_record(entry, show_secrets=show_secrets) for entry in self.entries],
        }


def inspect_image(
    image_path: Path,
    *,
    keys_path: Path | None = None,
    hmac_key_path: Path | None = None,
) -> Inspection:
    """Read and verify an image file (and its keys).

    Raises:
        CorruptImage: the image fails a check. InputError: a file cannot be read or a key is malformed.
    """
    image = _read_input(image_path, "the image")
    nvs_keys = _read_input(keys_path, "the nvs_keys partition") if keys_path is not None else None
    hmac_key = _read_input(hmac_key_path, "the HMAC key") if hmac_key_path is not None else None
    entries = read_nvs(image, nvs_keys=nvs_keys, hmac_key=hmac_key, source=str(image_path))
    scheme = "flash-encryption keys" if nvs_keys else "HMAC key" if hmac_key else "no keys"
    return Inspection(str(image_path), len(image) // fmt.PAGE_SIZE, scheme, entries)


def inspect_files(
    image_path: Path,
    *,
    keys_path: Path | None = None,
    hmac_key_path: Path | None = None,
    show_secrets: bool = False,
) -> list[str]:
    """What `provision inspect` prints: a summary line, then one line per entry (see inspect_image)."""
    return inspect_image(image_path, keys_path=keys_path, hmac_key_path=hmac_key_path).lines(show_secrets=show_secrets)

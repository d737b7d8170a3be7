"""The `gen-nvs --archive` output: one POSIX ustar file, every device at a fixed offset, the manifest inside.

Layout: device k (0-based, CSV order) starts at k * stride: a 512-byte header and DEVICE/nvs.bin (its size
is a multiple of 4096, so no padding), then, when encrypted, a header and DEVICE/nvs_keys.bin (4096 bytes)
or DEVICE/hmac_key.bin (32 bytes padded to 512). After the last device: manifest.json (the directory
output's manifest plus each file's `offset` in the archive), then the two zero blocks that end a tar. Any
tar reads it (`tar -xf`, Python's tarfile); a station can also seek straight to `offset`.

Header fields (POSIX.1-1988 ustar, pax(1) "ustar Interchange Format"): name[100], mode, uid, gid, size (octal),
mtime, chksum (sum of the header's bytes with chksum as 8 spaces, written as 6 octal digits, NUL, space),
typeflag '0', linkname[100], magic "ustar\\0", version "00", uname, gname, devmajor, devminor, prefix[155].
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from collections.abc import Sequence
from typing import BinaryIO, Final

from provision.errors import InputError

__all__ = ["BLOCK", "MemberHeaders", "is_gen_nvs_archive", "member_bytes", "padded", "ustar_header", "write_all"]

BLOCK: Final = 512
_MODE: Final = 0o600
_NAME_FIELD: Final = 100
_CHKSUM_OFFSET: Final = 148
_MAGIC_OFFSET: Final = 257


def padded(size: int) -> int:
    """`size` rounded up to whole 512-byte blocks."""
    return -(-size // BLOCK) * BLOCK


def ustar_header(name: bytes, size: int, mtime: int) -> bytes:
    """The 512-byte header of a regular file `name` (at most 100 bytes) of `size` bytes, mode 0600."""
    if len(name) > _NAME_FIELD:
        raise ValueError("a ustar name field holds at most 100 bytes")
    header = bytearray(BLOCK)
    header[0 : len(name)] = name
    header[100:108] = b"%07o\0" % _MODE
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = b"%011o\0" % size
    header[136:148] = b"%011o\0" % mtime
    header[156:157] = b"0"
    header[_MAGIC_OFFSET:265] = b"ustar\x0000"
    header[_CHKSUM_OFFSET:156] = b" " * 8
    header[_CHKSUM_OFFSET:156] = b"%06o\0 " % sum(header)
    return bytes(header)


class MemberHeaders:
    """Headers of `DEVICE/<file>` members of one size, built from a template: the name and the checksum
    are the only bytes that differ between devices."""

    def __init__(self, file_name: str, size: int, mtime: int) -> None:
        template = ustar_header(b"", size, mtime)
        self._suffix = f"/{file_name}".encode()
        blank = bytearray(template)
        blank[_CHKSUM_OFFSET:156] = b" " * 8
        self._base_sum = sum(blank)
        self._middle = template[_NAME_FIELD:_CHKSUM_OFFSET]
        self._end = template[156:]

    def header(self, device_name: str) -> bytes:
        name = device_name.encode() + self._suffix
        if len(name) > _NAME_FIELD:
            raise ValueError("a ustar name field holds at most 100 bytes")
        checksum = b"%06o\0 " % (self._base_sum + sum(name))
        return b"".join((name.ljust(_NAME_FIELD, b"\0"), self._middle, checksum, self._end))


def is_gen_nvs_archive(path: str | os.PathLike[str]) -> bool:
    """Whether `path` starts as gen-nvs archives do (a ustar member DEVICE/nvs.bin, mode 0600), so that
    --force replaces only what gen-nvs wrote."""
    try:
        with open(path, "rb") as handle:
            first = handle.read(BLOCK)
    except OSError:
        return False
    if len(first) != BLOCK or first[_MAGIC_OFFSET:_MAGIC_OFFSET + 6] != b"ustar\0":
        return False
    name = first[:_NAME_FIELD].rstrip(b"\0")
    return name.endswith(b"/nvs.bin") and first[100:108] == b"%07o\0" % _MODE


def member_bytes(archive: str | os.PathLike[str], member: str) -> bytes:
    """The content of `member` (e.g. `DEVICE/nvs.bin`) in a tar archive (`inspect ARCHIVE::MEMBER`).

    Raises:
        InputError: the archive cannot be read, is not a tar, or holds no such regular file.
    """
    shown = f"{os.fspath(archive)}::{member}"
    try:
        with contextlib.closing(tarfile.open(archive, "r:")) as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise InputError(f"{shown}: no such file in the archive: list it with `tar -tf`") from None
            handle: BinaryIO | None = tar.extractfile(info) if info.isfile() else None
            if handle is None:
                raise InputError(f"{shown}: not a regular file in the archive")
            return handle.read()
    except OSError as exc:
        raise InputError(f"{os.fspath(archive)}: cannot read: {exc.strerror or exc}") from None
    except tarfile.TarError:
        raise InputError(f"{os.fspath(archive)}: not a tar archive") from None


def write_all(fd: int, parts: Sequence[bytes]) -> None:
    """Write `parts` to `fd` in order with writev calls (at most 1024 buffers a call, the Linux IOV_MAX)."""
    for start in range(0, len(parts), 1024):
        batch = parts[start : start + 1024]
        written = os.writev(fd, batch)
        total = sum(len(part) for part in batch)
        if written < total:  # a short write (signal, full disk on the next call): finish the rest plainly
            rest = memoryview(b"".join(batch))[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]


class ArchiveSink:
    """Appends devices to an archive open at `fd` (at offset 0), buffering a few devices per writev.

    `names` and `sizes` are the files of every device, in order; device k's members start at k * stride.
    """

    _FLUSH_PARTS = 24  # 8 encrypted devices a writev: few calls, and little held in memory

    def __init__(self, fd: int, names: Sequence[str], sizes: Sequence[int], mtime: int) -> None:
        self._fd = fd
        self._mtime = mtime
        self._members = [(MemberHeaders(name, size, mtime), b"\0" * (padded(size) - size)) for name, size in
                         zip(names, sizes, strict=True)]
        self.stride = sum(BLOCK + padded(size) for size in sizes)
        self._offset = 0
        self._pending: list[bytes] = []

    def add(self, device_name: str, contents: Sequence[bytes]) -> list[int]:
        """Queue one device's files; returns the offset of each file's data in the archive."""
        offsets = []
        for (headers, pad), data in zip(self._members, contents, strict=True):
            self._pending += (headers.header(device_name), data, pad)
            offsets.append(self._offset + BLOCK)
            self._offset += BLOCK + len(data) + len(pad)
        if len(self._pending) >= self._FLUSH_PARTS:
            self._flush()
        return offsets

    def _flush(self) -> None:
        write_all(self._fd, [part for part in self._pending if part])
        self._pending.clear()

    def finish(self, member: BinaryIO, name: str) -> int:
        """Append `member` (read to its end) as `name`, then the end-of-archive blocks; returns its offset."""
        self._flush()
        size = os.fstat(member.fileno()).st_size
        write_all(self._fd, [ustar_header(name.encode(), size, self._mtime)])
        offset = self._offset + BLOCK
        copied = 0
        while block := member.read(1 << 16):
            write_all(self._fd, [block])
            copied += len(block)
        if copied != size:
            raise OSError(f"{name}: {copied} bytes read of {size}")
        write_all(self._fd, [b"\0" * (padded(size) - size + 2 * BLOCK)])
        self._offset = offset + padded(size) + 2 * BLOCK
        return offset

"""The device CSV a factory receives from Alibaba Cloud: parse, validate, stream.

Accepted files: the console / BatchRegisterDevice export (ProductKey, DeviceName, DeviceSecret, optional
ProductSecret, Region, other columns kept but unused) and the older esp-aliyun mass-manufacturing CSV
(`id,DeviceName,DeviceSecret,ProductKey,ProductSecret`). Headers match by name, ignoring case, spaces,
`_` and `-`. UTF-8 with or without BOM, LF or CRLF, quoted fields; blank lines are skipped.

Rules (Alibaba Cloud IoT Platform, "Create devices in bulk" / RegisterDevice API: DeviceName is 4-32
characters of letters, digits and `-_@.:`): ProductKey and DeviceName identify a device; DeviceSecret is
issued by the platform (32 characters today). Row numbers are the line on which the record starts, so an
editor shows the row at that line. Messages never quote a secret.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from provision.errors import InputError

__all__ = [
    "CheckedDevices",
    "Device",
    "DeviceFileSummary",
    "check_devices",
    "iter_devices",
    "load_devices",
]

PRODUCT_KEY = "ProductKey"
DEVICE_NAME = "DeviceName"
DEVICE_SECRET = "DeviceSecret"  # noqa: S105 - a column name
PRODUCT_SECRET = "ProductSecret"  # noqa: S105 - a column name
REGION = "Region"
_REQUIRED = (PRODUCT_KEY, DEVICE_NAME, DEVICE_SECRET)

# Normalised header text -> canonical column. Normalisation: lower case, no spaces, `_` or `-`.
_HEADER_ALIASES = {
    "productkey": PRODUCT_KEY,
    "devicename": DEVICE_NAME,
    "devicesecret": DEVICE_SECRET,
    "productsecret": PRODUCT_SECRET,
    "region": REGION,
    "regionid": REGION,
}

DEVICE_NAME_RE = re.compile(r"[A-Za-z0-9\-_@.:]{4,32}")
REGION_RE = re.compile(r"[a-z]{2}(-[a-z0-9]+){1,3}")
# Plausible lengths: Alibaba issues 11-character ProductKeys and 32-character secrets; the ranges leave
# room for instance-specific formats while catching truncated cells and pasted garbage.
PRODUCT_KEY_LENGTHS = (6, 32)
SECRET_LENGTHS = (16, 64)


@dataclass(frozen=True)
class Device:
    """One device triple (plus optional ProductSecret and region) from a CSV row."""

    product_key: str
    device_name: str
    device_secret: str = field(repr=False)
    product_secret: str | None = field(repr=False)
    region: str | None
    row: int
    extra: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class DeviceFileSummary:
    """What `check_devices` found in a good file."""

    path: str
    devices: int
    product_keys: tuple[str, ...]
    sha256: str = field(repr=False, default="")

    def line(self) -> str:
        keys = ", ".join(self.product_keys)
        noun = "device" if self.devices == 1 else "devices"
        return f"{self.path}: {self.devices} {noun} OK (ProductKey {keys})"

    def to_json_dict(self) -> dict[str, object]:
        """What `check --json` prints."""
        return {"path": self.path, "devices": self.devices, "product_keys": list(self.product_keys), "ok": True}


def _normalise_header(text: str) -> str:
    return re.sub(r"[\s_\-]", "", text).lower()


_PRINTABLE_RE = re.compile(r"[\x21-\x7e]+")


def _printable_problem(value: str, lengths: tuple[int, int]) -> str | None:
    """Why `value` is not printable ASCII without spaces of a plausible length, or None. Never echoes it."""
    low, high = lengths
    if low <= len(value) <= high and _PRINTABLE_RE.fullmatch(value) is not None:
        return None  # the common case in one regex call; the loop below only explains a failure
    if not value:
        return "empty"
    for position, char in enumerate(value, start=1):
        if char == " ":
            return f"contains a space at character {position}"
        if not ("\x21" <= char <= "\x7e"):
            return f"character {position} is not printable ASCII"
    low, high = lengths
    if not low <= len(value) <= high:
        return f"{len(value)} characters, expected {low}-{high}"
    return None


DEVICE_NAME_RULE = "4-32 characters of A-Z a-z 0-9 - _ @ . :"
PRODUCT_KEY_RE = re.compile(r"[A-Za-z0-9]+")
PRODUCT_KEY_RULE = "letters and digits only"


def product_key_problem(value: str) -> str | None:
    """Why `value` is not a ProductKey, or None. The platform issues letters and digits; `/`, `+`, `#`
    and `&` would change the topics (`/{pk}/{dn}/...`) and the MQTT username (`{dn}&{pk}`) it builds."""
    low, high = PRODUCT_KEY_LENGTHS
    if low <= len(value) <= high and PRODUCT_KEY_RE.fullmatch(value) is not None:
        return None
    if not value:
        return "empty"
    for position, char in enumerate(value, start=1):
        if PRODUCT_KEY_RE.fullmatch(char) is None:
            return f"character {position} is not allowed: a ProductKey is {PRODUCT_KEY_RULE}"
    if not low <= len(value) <= high:
        return f"{len(value)} characters, expected {low}-{high}"
    return None


def device_name_problem(value: str) -> str | None:
    """Why `value` is not a DeviceName, or None. Never echoes it: a secret pasted into the wrong column
    would otherwise end up in an error line."""
    if not value:
        return "empty"
    if DEVICE_NAME_RE.fullmatch(value) is None:
        for position, char in enumerate(value, start=1):
            if DEVICE_NAME_RE.fullmatch(char * 4) is None:
                return f"character {position} is not allowed: must be {DEVICE_NAME_RULE}"
        return f"{len(value)} characters: must be {DEVICE_NAME_RULE}"
    return None


def _region_problem(value: str) -> str | None:
    if REGION_RE.fullmatch(value) is None:
        return "not a region id such as cn-shanghai (lower-case letters, digits and -)"
    return None


_NAME_KIND = 1
_SECRET_KIND = 2
_BARE_NAME_KIND = 3  # a DeviceName under any ProductKey: only for callers that name files by DeviceName


# Rows whose value an earlier row used, per kind (the kind numbers above), as (row, kind, first row).
_REPEATS_QUERY = """
WITH
  names AS (SELECT name AS value, MIN(row) AS first FROM seen GROUP BY name HAVING COUNT(*) > 1),
  secrets AS (SELECT secret AS value, MIN(row) AS first FROM seen GROUP BY secret HAVING COUNT(*) > 1),
  bare_names AS (SELECT bare_name AS value, MIN(row) AS first FROM seen WHERE bare_name IS NOT NULL
                 GROUP BY bare_name HAVING COUNT(*) > 1)
SELECT seen.row, 1, names.first FROM seen JOIN names ON seen.name = names.value WHERE seen.row > names.first
UNION ALL
SELECT seen.row, 2, secrets.first FROM seen JOIN secrets ON seen.secret = secrets.value WHERE seen.row > secrets.first
UNION ALL
SELECT seen.row, 3, bare_names.first FROM seen JOIN bare_names ON seen.bare_name = bare_names.value
  WHERE seen.row > bare_names.first
ORDER BY 1, 2
"""


class _Fingerprints:
    """Finds values used by more than one row, keeping 8 bytes of keyed BLAKE2b per value, not the value.

    The fingerprints go to a private temporary SQLite database (an empty file name: created on disk, deleted
    when closed; see sqlite.org "Temporary Databases") with a 512 KiB page cache, so memory stays flat
    however long the CSV is. They are appended in batches of 256 rows (small enough that even a short CSV
    fills one, so the peak is the same at any length) and the repeats found once at the end by a
    GROUP BY (a sort SQLite does in that bounded cache, spilling to disk), which costs a fraction of an index
    lookup per row. A per-run random key means the database reveals nothing about a secret; a false match
    needs a 64-bit collision (probability about n^2 / 2^65: 3e-8 for a million devices).
    """

    _BATCH = 256

    def __init__(self) -> None:
        # Keyed once; each value hashes on a copy (cheaper than keying a new hash per value).
        self._keyed = hashlib.blake2b(digest_size=8, key=secrets.token_bytes(16))
        self._pending: list[tuple[int, int, int, int | None]] = []
        self._db = sqlite3.connect("")
        self._db.execute("PRAGMA cache_size = -512")
        # One row per device: its row number and the fingerprint of each kind (kind k in column k).
        self._db.execute("CREATE TABLE seen (row INTEGER, name INTEGER, secret INTEGER, bare_name INTEGER)")

    def _fingerprint(self, value: str) -> int:
        hashed = self._keyed.copy()
        hashed.update(value.encode())
        return int.from_bytes(hashed.digest(), "little", signed=True)

    def add(self, row: int, name: str, secret: str, bare_name: str | None) -> None:
        """Remember one row's ProductKey+DeviceName, secret and (when given) DeviceName alone."""
        fingerprint = self._fingerprint
        bare = None if bare_name is None else fingerprint(bare_name)
        self._pending.append((row, fingerprint(name), fingerprint(secret), bare))
        if len(self._pending) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO seen VALUES (?, ?, ?, ?)", self._pending)
        self._pending.clear()

    def repeats(self) -> list[tuple[int, int, int]]:
        """(row, kind, first row with that value) for every row whose value an earlier row used, by row then kind."""
        self._flush()
        return [(int(row), int(kind), int(first)) for row, kind, first in self._db.execute(_REPEATS_QUERY)]

    def close(self) -> None:
        self._db.close()


class _NotUtf8(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _decoded_lines(handle: BinaryIO, digest: hashlib._Hash) -> Iterator[str]:
    """Lines decoded one at a time, so a bad byte is reported at its own line (a UTF-8 BOM is dropped)."""
    for number, raw in enumerate(handle, start=1):
        digest.update(raw)
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _NotUtf8(number) from None


@dataclass
class _Scan:
    """One pass over the file: devices and problems in row order."""

    display: str
    check_duplicates: bool
    check_bare_names: bool = False
    first_reused_name_row: int | None = None
    # (row, line): duplicates are found after the rows, so lines are put in row order when read out.
    problems: list[tuple[int, str]] = field(default_factory=list)
    product_keys: dict[str, None] = field(default_factory=dict)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    def problem(self, row: int, column: str, what: str) -> None:
        self.problems.append((row, f"{self.display}:{row}: {column}: {what}"))

    def problem_lines(self) -> list[str]:
        """Every problem, in row order (a stable sort: a row's own problems keep their order)."""
        return [line for _, line in sorted(self.problems, key=lambda problem: problem[0])]

    def rows(self, path: Path) -> Iterator[Device]:
        """Every row that passed the field checks, in file order; duplicates (when checked) are added to
        `problems` once the last row is read, so a row yielded may still turn out to be a repeat."""
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise InputError(f"{self.display}: cannot read: {exc.strerror}") from None
        seen = _Fingerprints() if self.check_duplicates else None
        try:
            yield from self._records(handle, seen)
            if seen is not None:
                for row, kind, first in seen.repeats():
                    if kind == _BARE_NAME_KIND:
                        if self.first_reused_name_row is None:
                            self.first_reused_name_row = row
                    elif kind == _NAME_KIND:
                        self.problem(row, DEVICE_NAME, f"same ProductKey and DeviceName as row {first}")
                    else:
                        self.problem(row, DEVICE_SECRET, f"same secret as row {first}")
        finally:
            handle.close()
            if seen is not None:
                seen.close()

    def _records(self, handle: BinaryIO, seen: _Fingerprints | None) -> Iterator[Device]:
        previous_line = 0
        reader = csv.reader(_decoded_lines(handle, self.digest))
        columns: dict[str, int] | None = None
        header_width = 0
        extra_columns: list[tuple[int, str]] = []
        while True:
            start = previous_line + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except _NotUtf8 as exc:
                self.problem(exc.line, "(file)", "not UTF-8 text")
                return
            except csv.Error as exc:
                self.problem(start, "(file)", f"not a readable CSV record ({exc})")
                return
            previous_line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if columns is None:
                columns, extra_columns = self._header(record, start)
                header_width = len(record)
                if self.problems:
                    return
                continue
            if len(record) != header_width:
                self.problem(start, "(row)", f"{len(record)} fields, the header has {header_width}")
                continue
            device = self._device(record, columns, extra_columns, start, seen)
            if device is not None:
                yield device
        if columns is None:
            self.problem(1, "(header)", "no header row: the file is empty")

    def _header(self, record: list[str], row: int) -> tuple[dict[str, int], list[tuple[int, str]]]:
        separator = _other_separator(record)
        if separator is not None:
            self.problem(
                row,
                "(header)",
                f"the columns are separated by {separator}, not commas (Excel saves CSV so in many locales): "
                'export as "CSV UTF-8 (Comma delimited)" or replace the separator with commas',
            )
            return {}, []
        columns: dict[str, int] = {}
        extra: list[tuple[int, str]] = []
        for index, text in enumerate(record):
            canonical = _HEADER_ALIASES.get(_normalise_header(text))
            if canonical is None:
                extra.append((index, text))
            elif canonical in columns:
                self.problem(row, canonical, f"column appears twice in the header ({text!r})")
            else:
                columns[canonical] = index
        for name in _REQUIRED:
            if name not in columns:
                self.problem(row, name, "column missing from the header")
        return columns, extra

    def _device(
        self,
        record: list[str],
        columns: dict[str, int],
        extra_columns: list[tuple[int, str]],
        row: int,
        seen: _Fingerprints | None,
    ) -> Device | None:
        before = len(self.problems)
        product_key = record[columns[PRODUCT_KEY]]
        device_name = record[columns[DEVICE_NAME]]
        device_secret = record[columns[DEVICE_SECRET]]
        product_secret = record[columns[PRODUCT_SECRET]] if PRODUCT_SECRET in columns else ""
        region = record[columns[REGION]] if REGION in columns else ""

        checks = (
            (PRODUCT_KEY, product_key_problem(product_key)),
            (DEVICE_NAME, device_name_problem(device_name)),
            (DEVICE_SECRET, _printable_problem(device_secret, SECRET_LENGTHS)),
            (PRODUCT_SECRET, _printable_problem(product_secret, SECRET_LENGTHS) if product_secret else None),
            (REGION, _region_problem(region) if region else None),
        )
        for column, what in checks:
            if what is not None:
                self.problem(row, column, what)
        if len(self.problems) != before:
            return None
        if seen is not None:
            bare_name = device_name if self.check_bare_names else None
            seen.add(row, f"{product_key}\0{device_name}", device_secret, bare_name)
        self.product_keys.setdefault(product_key, None)
        return Device(
            product_key=product_key,
            device_name=device_name,
            device_secret=device_secret,
            product_secret=product_secret or None,
            region=region or None,
            row=row,
            extra=tuple((name, record[index]) for index, name in extra_columns) if extra_columns else (),
        )


_OTHER_SEPARATORS = ((";", "semicolons"), ("\t", "tabs"))


def _other_separator(header: list[str]) -> str | None:
    """Which separator ("semicolons", "tabs") the header row uses, when it names our columns only split so."""
    if sum(_HEADER_ALIASES.get(_normalise_header(text)) is not None for text in header) >= 2:
        return None
    joined = ",".join(header)
    for separator, name in _OTHER_SEPARATORS:
        cells = joined.split(separator)
        if sum(_HEADER_ALIASES.get(_normalise_header(cell.strip('"'))) is not None for cell in cells) >= 2:
            return name
    return None


def _display(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)


class CheckedDevices:
    """check_devices and a stream of its devices in one pass over the file (gen-nvs reads its CSV once).

    Iterating yields, in file order, each device whose row passed the field checks, until the first problem;
    after one it reads on to collect every problem and yields nothing more. A repeated DeviceName or secret
    is known only once the last row is read, so what was yielded counts only when the iteration ends without
    an InputError: then `summary()` is what check_devices returns for the file.

    Raises (at the end of the iteration):
        InputError: the same lines as check_devices, in the same order.
    """

    def __init__(self, path: str | os.PathLike[str], *, find_reused_device_names: bool = False) -> None:
        """Args:
        find_reused_device_names: also find a DeviceName that an earlier row used under another ProductKey
            (allowed on the platform; a problem only for output named by DeviceName): the first such row is
            `first_reused_device_name_row` after the iteration.
        """
        self._path = path
        self._find_reused = find_reused_device_names
        self._summary: DeviceFileSummary | None = None
        self.first_reused_device_name_row: int | None = None

    def summary(self) -> DeviceFileSummary:
        """The file's summary, once an iteration has read it to the end without a problem.

        Raises:
            RuntimeError: no iteration has finished yet.
        """
        if self._summary is None:
            raise RuntimeError("CheckedDevices.summary() before an iteration finished")
        return self._summary

    def __iter__(self) -> Iterator[Device]:
        scan = _Scan(_display(self._path), check_duplicates=True, check_bare_names=self._find_reused)
        count = 0
        for device in scan.rows(Path(self._path)):
            count += 1
            if not scan.problems:
                yield device
        if scan.problems:
            raise InputError(*scan.problem_lines())
        if count == 0:
            raise InputError(f"{scan.display}:2: (row): no devices after the header")
        self.first_reused_device_name_row = scan.first_reused_name_row
        self._summary = DeviceFileSummary(scan.display, count, tuple(scan.product_keys), scan.digest.hexdigest())


def check_devices(path: str | os.PathLike[str]) -> DeviceFileSummary:
    """Validate the whole file in one streaming pass (flat memory: the duplicate index is on disk).

    Raises:
        InputError: every problem, one `FILE:ROW: COLUMN: what is wrong` line each, in row order.
    """
    checked = CheckedDevices(path)
    for _ in checked:
        pass
    return checked.summary()


def iter_devices(path: str | os.PathLike[str], *, expect_sha256: str | None = None) -> Iterator[Device]:
    """Stream the devices of a file that `check_devices` accepted, one at a time.

    Each row is validated again (not for duplicates); a problem means the file changed since the check.

    Args:
        expect_sha256: the `sha256` of check_devices' summary; the file must still have it at the end.

    Raises:
        InputError: at the first bad row, or at the end when the file is no longer the one checked.
    """
    scan = _Scan(_display(path), check_duplicates=False)
    for device in scan.rows(Path(path)):
        if scan.problems:
            break
        yield device
    if scan.problems:
        raise InputError(*scan.problem_lines())
    if expect_sha256 is not None and scan.digest.hexdigest() != expect_sha256:
        raise InputError(f"{scan.display}: changed while it was being read; nothing was written, run again")


def load_devices(path: str | os.PathLike[str]) -> list[Device]:
    """Read and validate every row.

    Returns:
        The devices in file order.

    Raises:
        InputError: every problem at once, one `FILE:ROW: COLUMN: what is wrong` line each.
    """
    scan = _Scan(_display(path), check_duplicates=True)
    devices = list(scan.rows(Path(path)))
    if scan.problems:
        raise InputError(*scan.problem_lines())
    if not devices:
        raise InputError(f"{scan.display}:2: (row): no devices after the header")
    return devices

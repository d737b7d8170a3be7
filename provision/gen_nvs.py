"""Per-device NVS partition images (optionally encrypted), written as a tree or an archive in one pass (where
the output goes, its lock and leftovers: provision/gen_nvs_output.py).

Images are written by provision.nvs_writer, one device at a time, in memory: the same bytes as
esp-idf-nvs-partition-gen's in-process API (nvs_open / write_entry / nvs_close) for the same entries and
keys, at a fraction of its CPU (tests/python/test_nvs_writer.py holds them identical, bench/gen_nvs_bench.py
measures both). Keys come from `secrets` (that package's generate_key uses Python's `random`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from pathlib import Path
from typing import Final, Literal, TextIO

from provision import nvs_format as fmt
from provision.atomic import PRIVATE_DIR_MODE, create_private_file
from provision.credentials import CheckedDevices, Device, DeviceFileSummary, check_devices
from provision.errors import InputError, OutputBusy, UsageProblem
from provision.gen_nvs_output import (
    MANIFEST_FILE,
    check_out_archive,
    check_out_dir,
    make_parents,
    os_problem,
    output_lock,
    remove_leftovers,
    remove_made,
    swap_in,
    sync_file_system,
)
from provision.nvs_archive import ArchiveSink
from provision.nvs_writer import StringImageWriter, encode_strings

__all__ = [
    "DEFAULT_SIZE",
    "LAYOUTS",
    "DeviceFiles",
    "GenerationReport",
    "Layout",
    "PartitionSet",
    "build_partition",
    "layout_entries",
    "parse_size",
    "write_archive",
    "write_partitions",
]

Layout = Literal["aliyun", "esp-aliyun"]
Encryption = Literal["none", "xts", "hmac"]
LAYOUTS: Final = ("aliyun", "esp-aliyun")
ENCRYPTIONS: Final = ("none", "xts", "hmac")
DEFAULT_SIZE: Final = 0x6000
# The partition generator keeps one page free for NVS's own garbage collection (check_size), and a
# read/write NVS partition needs at least 3 pages (ESP-IDF nvs_flash docs, "minimum partition size").
MIN_SIZE: Final = 3 * fmt.PAGE_SIZE
NVS_FILE: Final = "nvs.bin"
NVS_KEYS_FILE: Final = "nvs_keys.bin"
HMAC_KEY_FILE: Final = "hmac_key.bin"


@dataclass(frozen=True)
class PartitionSet:
    """One device's images: the NVS partition, and the key material that decrypts it (if encrypted)."""

    nvs: bytes = field(repr=False)
    nvs_keys: bytes | None = field(repr=False)
    hmac_key: bytes | None = field(repr=False)


def layout_entries(device: Device, layout: str) -> tuple[str, list[tuple[str, str]]]:
    """Namespace and (key, string value) pairs of a layout.

    `aliyun`: namespace `aliyun`, keys product_key, device_name, device_secret, region (when known).
    `esp-aliyun`: Espressif's older esp-aliyun component (its `fctry` partition): namespace `aliyun-key`,
    keys ProductKey, DeviceName, DeviceSecret, ProductSecret (when known).
    """
    if layout == "aliyun":
        pairs = [
            ("product_key", device.product_key),
            ("device_name", device.device_name),
            ("device_secret", device.device_secret),
        ]
        if device.region:
            pairs.append(("region", device.region))
        return "aliyun", pairs
    if layout == "esp-aliyun":
        pairs = [
            ("ProductKey", device.product_key),
            ("DeviceName", device.device_name),
            ("DeviceSecret", device.device_secret),
        ]
        if device.product_secret:
            pairs.append(("ProductSecret", device.product_secret))
        return "aliyun-key", pairs
    raise InputError(f"layout: {layout!r} is not one of {', '.join(LAYOUTS)}")


def check_size(size: int) -> None:
    """Raise UsageProblem unless `size` is a whole number of pages and at least the read/write minimum."""
    if size % fmt.PAGE_SIZE:
        raise UsageProblem(f"--size: 0x{size:X} is not a multiple of 4096")
    if size < MIN_SIZE:
        raise UsageProblem(f"--size: 0x{size:X} is below the read/write NVS minimum of 0x{MIN_SIZE:X} (3 pages)")


def build_partition(
    device: Device,
    *,
    layout: Layout | str = "aliyun",
    size: int = DEFAULT_SIZE,
    encryption: Encryption | str = "none",
) -> PartitionSet:
    """Build one device's NVS partition in memory.

    Args:
        layout: "aliyun" or "esp-aliyun" (see layout_entries).
        size: partition size in bytes, a multiple of 4096, at least 0x3000.
        encryption: "none"; "xts" (flash-encryption scheme: a fresh nvs_keys partition); "hmac" (HMAC
            scheme: a fresh 32-byte eFuse HMAC key, the image encrypted with the keys the chip derives).

    Raises:
        InputError: a bad layout, encryption or size.
    """
    check_size(size)
    namespace, pairs = layout_entries(device, layout)
    if encryption == "none":
        return PartitionSet(encode_strings(namespace, pairs, size, None), None, None)
    if encryption == "xts":
        xts_key = secrets.token_bytes(fmt.XTS_KEY_SIZE)
        return PartitionSet(encode_strings(namespace, pairs, size, xts_key), fmt.nvs_keys_partition(xts_key), None)
    if encryption == "hmac":
        hmac_key = secrets.token_bytes(fmt.HMAC_KEY_SIZE)
        return PartitionSet(encode_strings(namespace, pairs, size, fmt.hmac_xts_key(hmac_key)), None, hmac_key)
    raise InputError(f"encryption: {encryption!r} is not one of {', '.join(ENCRYPTIONS)}")


@dataclass(frozen=True)
class GenerationReport:
    out_dir: Path
    devices: int
    layout: str
    encryption: str
    archive: bool = False

    def line(self) -> str:
        noun = "device" if self.devices == 1 else "devices"
        where = f"{MANIFEST_FILE} inside" if self.archive else MANIFEST_FILE
        return (
            f"{self.out_dir}: {self.devices} {noun} written "
            f"(layout {self.layout}, encryption {self.encryption}, {where})"
        )

    def to_json_dict(self) -> dict[str, str | int]:
        """What `gen-nvs --json` prints (no secret: names and counts)."""
        manifest = f"{self.out_dir}::{MANIFEST_FILE}" if self.archive else str(self.out_dir / MANIFEST_FILE)
        return {
            "out": str(self.out_dir),
            "devices": self.devices,
            "layout": self.layout,
            "encryption": self.encryption,
            "manifest": manifest,
        }


class DeviceFiles:
    """One run's per-device files, in the order they are written: nvs.bin, then its key file when encrypted.

    One StringImageWriter serves the run (what every image shares is computed once); keys come from `secrets`.
    """

    def __init__(self, layout: str, size: int, encryption: str) -> None:
        check_size(size)
        if layout not in LAYOUTS:
            raise InputError(f"layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
        if encryption not in ENCRYPTIONS:
            raise InputError(f"encryption: {encryption!r} is not one of {', '.join(ENCRYPTIONS)}")
        self.layout = layout
        self.size = size
        self.encryption = encryption
        # ProductKey and region repeat across a CSV: their entries are built once (never a secret's).
        self._writer = StringImageWriter(size, repeated_keys=("product_key", "region", "ProductKey"))
        self.names: tuple[str, ...] = (NVS_FILE,) + {"none": (), "xts": (NVS_KEYS_FILE,), "hmac": (HMAC_KEY_FILE,)}[
            encryption
        ]
        self.sizes: tuple[int, ...] = (size,) + {
            "none": (),
            "xts": (fmt.NVS_KEYS_PARTITION_SIZE,),
            "hmac": (fmt.HMAC_KEY_SIZE,),
        }[encryption]

    def files(self, device: Device) -> tuple[bytes, ...]:
        namespace, pairs = layout_entries(device, self.layout)
        if self.encryption == "xts":
            xts_key = secrets.token_bytes(fmt.XTS_KEY_SIZE)
            return self._writer.image(namespace, pairs, xts_key), fmt.nvs_keys_partition(xts_key)
        if self.encryption == "hmac":
            hmac_key = secrets.token_bytes(fmt.HMAC_KEY_SIZE)
            return self._writer.image(namespace, pairs, fmt.hmac_xts_key(hmac_key)), hmac_key
        return (self._writer.image(namespace, pairs, None),)


def file_record(name: str, data: bytes, offset: int | None = None) -> str:
    """One manifest file entry as JSON text (what json.dumps writes for the same dict, without its cost)."""
    where = "" if offset is None else f', "offset": {offset}'
    digest = hashlib.sha256(data).hexdigest()
    return f'{{"name": {_json_string(name)}, "bytes": {len(data)}, "sha256": "{digest}"{where}}}'


def _device_record(device: Device, files: str) -> str:
    return (
        f'{{"device_name": {_json_string(device.device_name)}, "product_key": {_json_string(device.product_key)}, '
        f'"row": {device.row}, "files": [{files}]}}'
    )


def _manifest_header(files: DeviceFiles, **extra: int) -> str:
    header = {"format": 1, "layout": files.layout, "encryption": files.encryption, "size": files.size, **extra}
    return json.dumps(header)[:-1] + ', "devices": [\n'


def _reused_name_error(display: str, row: int) -> InputError:
    return InputError(
        f"{display}:{row}: DeviceName: the same DeviceName is already used under another ProductKey; gen-nvs names "
        "directories by DeviceName, split the CSV per ProductKey"
    )


def _count_records(csv_path: str | os.PathLike[str]) -> int:
    """Devices in the CSV for a progress line's total, counted by a bare CSV read (validation is the pass)."""
    with open(csv_path, encoding="utf-8", errors="replace", newline="") as handle:
        return max(0, sum(1 for record in csv.reader(handle) if any(cell.strip() for cell in record)) - 1)


class _TreeSink:
    """Writes STAGING/<DeviceName>/<file> (directories 0700, files 0600 from creation)."""

    def __init__(self, staging: str, names: tuple[str, ...]) -> None:
        self._staging = staging
        self._names = names

    def add(self, device_name: str, contents: tuple[bytes, ...]) -> str | None:
        """The device's manifest file entries, or None when its directory exists (a DeviceName reused)."""
        # Strings, not pathlib: pathlib interns each path part, so memory would grow per device.
        directory = f"{self._staging}/{device_name}"
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:
            return None
        records = []
        for name, data in zip(self._names, contents, strict=True):
            create_private_file(f"{directory}/{name}", data)
            records.append(file_record(f"{device_name}/{name}", data))
        return ", ".join(records)


def _generate(
    checked: CheckedDevices,
    files: DeviceFiles,
    add: Callable[[str, tuple[bytes, ...]], str | None],
    manifest: TextIO,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> tuple[int, int | None]:
    """The one pass: validate each row, write its device, stream its manifest entry. Returns the devices
    written and the first row whose DeviceName was already written (then nothing more is written).

    Raises:
        InputError: every problem in the CSV (from `checked`, at the end of the pass).
    """
    written = 0
    reused_at: int | None = None
    for device in checked:
        if reused_at is not None:
            continue  # read on: problems in the CSV come first, as check_devices would report them
        records = add(device.device_name, files.files(device))
        if records is None:
            reused_at = device.row
            continue
        manifest.write(("," if written else " ") + _device_record(device, records) + "\n")
        written += 1
        if progress is not None:
            progress(written, max(total, written))
    manifest.write("]}\n")
    return written, reused_at


def _csv_problems_first(csv_path: str | os.PathLike[str]) -> None:
    """Raise the CSV's problems, if any: they are reported before any problem with the output, as when the
    whole file was checked before anything else (a bad file and a busy or existing OUT: the file's lines)."""
    check_devices(csv_path)


def write_partitions(
    csv_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    layout: Layout | str = "aliyun",
    size: int = DEFAULT_SIZE,
    encryption: Encryption | str = "none",
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationReport:
    """Validate the CSV and write `OUT/<DeviceName>/nvs.bin` (+ nvs_keys.bin or hmac_key.bin) per device
    and `OUT/manifest.json` (files, sizes, SHA-256; no secret), in one pass over the CSV.

    Everything is built in a hidden sibling staging directory (mode 0700, files created 0600) and renamed
    into place at the end, so a problem anywhere in the CSV, a failure or an interrupt leaves OUT as it was
    and no key behind; leftovers of a killed run are removed by the next one. Devices are streamed from the
    CSV: memory does not grow with the number of devices (the duplicate index is on disk).

    Raises:
        InputError: a bad CSV (every problem, as check_devices reports them), size, layout, encryption, or an
            existing OUT without force.
    """
    out = Path(out_dir)
    files = DeviceFiles(layout, size, encryption)
    return _run(csv_path, out, files, force, progress, archive=False)


def write_archive(
    csv_path: str | os.PathLike[str],
    archive_path: str | os.PathLike[str],
    *,
    layout: Layout | str = "aliyun",
    size: int = DEFAULT_SIZE,
    encryption: Encryption | str = "none",
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationReport:
    """write_partitions into one tar file instead of a tree (provision/nvs_archive.py: fixed offsets, the
    manifest inside). Built as a hidden 0600 sibling file, fsynced and renamed into place at the end.

    Raises:
        InputError: as write_partitions; an existing ARCHIVE that gen-nvs did not write is never replaced.
    """
    out = Path(archive_path)
    files = DeviceFiles(layout, size, encryption)
    return _run(csv_path, out, files, force, progress, archive=True)


def _run(
    csv_path: str | os.PathLike[str],
    out: Path,
    files: DeviceFiles,
    force: bool,
    progress: Callable[[int, int], None] | None,
    *,
    archive: bool,
) -> GenerationReport:
    check_out = check_out_archive if archive else check_out_dir
    try:
        check_out(out, force)
    except InputError:
        _csv_problems_first(csv_path)
        raise
    created: list[Path] = []
    try:
        created = make_parents(out.parent)
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(output_lock(out))
                check_out(out, force)  # again: the run that held the lock may have just created OUT
            except (InputError, OutputBusy):
                _csv_problems_first(csv_path)
                raise
            remove_leftovers(out)
            total = _count_records(csv_path) if progress is not None else 0
            write = _write_archive if archive else _write_tree
            written = write(csv_path, out, files, progress, total)
    except OSError as exc:
        remove_made(created)
        _csv_problems_first(csv_path)
        raise os_problem(out, exc) from None
    except BaseException:
        remove_made(created)
        raise
    return GenerationReport(out, written, files.layout, files.encryption, archive)


def _check_unchanged(csv_path: str | os.PathLike[str], summary: DeviceFileSummary) -> None:
    if _file_sha256(csv_path) != summary.sha256:
        raise InputError(f"{summary.path}: changed while it was being read; nothing was written, run again")


def _write_tree(
    csv_path: str | os.PathLike[str],
    out: Path,
    files: DeviceFiles,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> int:
    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir(mode=PRIVATE_DIR_MODE)
    try:
        checked = CheckedDevices(csv_path)
        # The manifest is streamed (it grows with the CSV), so it gets its own temp name and rename.
        manifest_tmp = staging / f".{MANIFEST_FILE}.tmp"
        manifest_fd = os.open(manifest_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(manifest_fd, "w", encoding="utf-8") as manifest:
            manifest.write(_manifest_header(files))
            sink = _TreeSink(os.fspath(staging), files.names)
            written, reused_at = _generate(checked, files, sink.add, manifest, progress, total)
        summary = checked.summary()
        if reused_at is not None:
            raise _reused_name_error(summary.path, reused_at)
        os.rename(manifest_tmp, staging / MANIFEST_FILE)
        _check_unchanged(csv_path, summary)
        # One sync for the whole tree instead of an fsync per file: nothing is visible before the rename.
        sync_file_system(staging)
        swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def _write_archive(
    csv_path: str | os.PathLike[str],
    out: Path,
    files: DeviceFiles,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> int:
    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            checked = CheckedDevices(csv_path, find_reused_device_names=True)
            sink = ArchiveSink(fd, files.names, files.sizes, int(time.time()))

            # The manifest follows the devices in the archive, so it is streamed to an unnamed temp file
            # first (names, sizes and hashes: nothing secret; it vanishes when closed).
            def add(device_name: str, contents: tuple[bytes, ...]) -> str:
                offsets = sink.add(device_name, contents)
                return ", ".join(
                    file_record(f"{device_name}/{name}", data, offset)
                    for name, data, offset in zip(files.names, contents, offsets, strict=True)
                )

            with tempfile.TemporaryFile("w+", encoding="utf-8", dir=out.parent) as manifest:
                manifest.write(_manifest_header(files, stride=sink.stride))
                written, _ = _generate(checked, files, add, manifest, progress, total)
                summary = checked.summary()
                if checked.first_reused_device_name_row is not None:
                    raise _reused_name_error(summary.path, checked.first_reused_device_name_row)
                manifest.flush()
                manifest.seek(0)
                sink.finish(manifest.buffer, MANIFEST_FILE)
            _check_unchanged(csv_path, summary)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(staging, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        raise
    return written


def _file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_size(text: str) -> int:
    """The `--size` flag: decimal or 0x-prefixed hex bytes.

    Raises:
        InputError: not a number.
    """
    try:
        return int(text, 0)
    except ValueError:
        raise UsageProblem(f"--size: {text!r} is not a number of bytes (e.g. 0x6000)") from None

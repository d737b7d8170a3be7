"""Per-device NVS partition images (optionally encrypted) and the output directory that holds them.

Images are written by provision.nvs_writer, one device at a time, in memory: the same bytes as
esp-idf-nvs-partition-gen's in-process API (nvs_open / write_entry / nvs_close) for the same entries and
keys, at a fraction of its CPU (tests/python/test_nvs_writer.py holds them identical, bench/gen_nvs_bench.py
measures both). Keys come from `secrets` (that package's generate_key uses Python's `random`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from provision import nvs_format as fmt
from provision.atomic import PRIVATE_DIR_MODE, create_private_file
from provision.credentials import Device, DeviceFileSummary, check_devices, iter_devices
from provision.errors import EnvironmentProblem, InputError, OutputBusy, UsageProblem
from provision.nvs_writer import encode_strings

__all__ = [
    "DEFAULT_SIZE",
    "LAYOUTS",
    "GenerationReport",
    "Layout",
    "PartitionSet",
    "build_partition",
    "layout_entries",
    "output_lock",
    "parse_size",
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
MANIFEST_FILE: Final = "manifest.json"


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

    def line(self) -> str:
        noun = "device" if self.devices == 1 else "devices"
        return (
            f"{self.out_dir}: {self.devices} {noun} written "
            f"(layout {self.layout}, encryption {self.encryption}, {MANIFEST_FILE})"
        )

    def to_json_dict(self) -> dict[str, str | int]:
        """What `gen-nvs --json` prints (no secret: names and counts)."""
        return {
            "out": str(self.out_dir),
            "devices": self.devices,
            "layout": self.layout,
            "encryption": self.encryption,
            "manifest": str(self.out_dir / MANIFEST_FILE),
        }


def _check_out_dir(out_dir: Path, force: bool) -> None:
    if not out_dir.exists():
        return
    if not force:
        raise InputError(f"{out_dir}: already exists; pass --force to replace it")
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory")
    if any(out_dir.iterdir()) and not (out_dir / MANIFEST_FILE).is_file():
        raise InputError(f"{out_dir}: not empty and holds no {MANIFEST_FILE}: not replacing what gen-nvs did not write")


def _file_record(name: str, data: bytes) -> dict[str, str | int]:
    return {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


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
    """Validate the CSV, then write `OUT/<DeviceName>/nvs.bin` (+ nvs_keys.bin or hmac_key.bin) per device
    and `OUT/manifest.json` (files, sizes, SHA-256; no secret).

    Everything is built in a hidden sibling staging directory (mode 0700, files created 0600) and renamed
    into place at the end, so a failure or interrupt leaves OUT as it was and no key behind; leftovers of a
    killed run are removed by the next one.
    Devices are streamed from the CSV: memory does not grow with the number of devices beyond the
    duplicate index of the validation pass.

    Raises:
        InputError: a bad CSV (every problem), size, layout, encryption, or an existing OUT without force.
    """
    out = Path(out_dir)
    check_size(size)
    if layout not in LAYOUTS:
        raise InputError(f"layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    if encryption not in ENCRYPTIONS:
        raise InputError(f"encryption: {encryption!r} is not one of {', '.join(ENCRYPTIONS)}")
    summary = check_devices(csv_path)
    _check_out_dir(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(out):
            _check_out_dir(out, force)  # again: the run that held the lock may have just created OUT
            _remove_leftovers(out)
            written = _write_tree(csv_path, out, summary, layout, size, encryption, progress)
    except OSError as exc:
        raise _os_problem(out, exc) from None
    return GenerationReport(out, written, layout, encryption)


def lock_path(out: Path) -> Path:
    """The lock file beside OUT; it holds the holder's pid (nothing secret) and is removed by its holder."""
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold OUT's lock for the whole run, or fail at once: two runs on one OUT would each remove the other's
    staging directory (the leftover clean-up) and both fail. flock dies with its process, so a killed run
    never leaves a stale lock; the holder unlinks the file before it lets go, so a run that opened the old
    file re-checks that what it locked is still the file at that path.

    Raises:
        OutputBusy: another process holds it.
    """
    path = lock_path(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputBusy(
                f"{out}: another gen-nvs (pid {holder}) is writing this output; nothing was changed: "
                "wait for it to finish, or choose another --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _os_problem(out: Path, exc: OSError) -> EnvironmentProblem:
    """One line naming a path the user gave (OUT or one of its parents, never the staging or temp name the OS
    saw), the cause and what to do."""
    named = out
    if exc.filename is not None:
        seen = Path(os.fsdecode(exc.filename))
        if seen == out or seen in out.parents:
            named = seen
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return EnvironmentProblem(
            f"{out}: no space left on the file system holding {out.parent}; "
            "nothing was written: free space there or choose another --out"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EnvironmentProblem(
            f"{named}: cannot write there ({exc.strerror}); nothing was written: "
            "choose a directory you may write, or fix its permissions"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and named != out:
        return EnvironmentProblem(f"{named}: is a file, not a directory; nothing was written: choose another --out")
    return EnvironmentProblem(f"{named}: cannot write ({exc.strerror or exc}); nothing was written: check the path")


def _write_tree(
    csv_path: str | os.PathLike[str],
    out: Path,
    summary: DeviceFileSummary,
    layout: str,
    size: int,
    encryption: str,
    progress: Callable[[int, int], None] | None,
) -> int:
    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir(mode=PRIVATE_DIR_MODE)
    written = 0
    try:
        # The manifest is streamed (it grows with the CSV), so it gets its own temp name and rename.
        manifest_tmp = staging / f".{MANIFEST_FILE}.tmp"
        manifest_fd = os.open(manifest_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(manifest_fd, "w", encoding="utf-8") as manifest:
            header = {"format": 1, "layout": layout, "encryption": encryption, "size": size}
            manifest.write(json.dumps(header)[:-1] + ', "devices": [\n')
            for device in iter_devices(csv_path, expect_sha256=summary.sha256):
                # os.path, not pathlib: pathlib interns each path part, so memory would grow per device.
                device_dir = os.path.join(staging, device.device_name)
                try:
                    os.mkdir(device_dir, PRIVATE_DIR_MODE)
                except FileExistsError:
                    raise InputError(
                        f"{summary.path}:{device.row}: DeviceName: the same DeviceName is already used under another "
                        "ProductKey; gen-nvs names directories by DeviceName, split the CSV per ProductKey"
                    ) from None
                parts = build_partition(device, layout=layout, size=size, encryption=encryption)
                files = [(NVS_FILE, parts.nvs)]
                if parts.nvs_keys is not None:
                    files.append((NVS_KEYS_FILE, parts.nvs_keys))
                if parts.hmac_key is not None:
                    files.append((HMAC_KEY_FILE, parts.hmac_key))
                for name, data in files:
                    create_private_file(os.path.join(device_dir, name), data)
                record = {
                    "device_name": device.device_name,
                    "product_key": device.product_key,
                    "row": device.row,
                    "files": [_file_record(f"{device.device_name}/{name}", data) for name, data in files],
                }
                manifest.write(("," if written else " ") + json.dumps(record) + "\n")
                written += 1
                if progress is not None:
                    progress(written, summary.devices)
            manifest.write("]}\n")
        os.rename(manifest_tmp, staging / MANIFEST_FILE)
        if _file_sha256(csv_path) != summary.sha256:
            raise InputError(f"{summary.path}: changed while it was being read; nothing was written, run again")
        # One sync for the whole tree instead of an fsync per file: nothing is visible before the rename.
        os.sync()
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def _file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove_leftovers(out: Path) -> list[Path]:
    """Delete staging and swapped-out directories that a killed run (SIGKILL, power loss) left beside OUT.

    They hold per-device keys, so they must not outlive the run that made them; the next run over the same
    OUT is the first moment anyone can clean them up. Returns what was removed.
    """
    removed = []
    for pattern in (f".{out.name}.partial-*", f".{out.name}.old-*"):
        for leftover in out.parent.glob(pattern):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
                removed.append(leftover)
    return removed


def _swap_in(staging: Path, out: Path) -> None:
    old: Path | None = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
        os.rename(out, old)
    os.rename(staging, out)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def parse_size(text: str) -> int:
    """The `--size` flag: decimal or 0x-prefixed hex bytes.

    Raises:
        InputError: not a number.
    """
    try:
        return int(text, 0)
    except ValueError:
        raise UsageProblem(f"--size: {text!r} is not a number of bytes (e.g. 0x6000)") from None

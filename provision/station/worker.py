"""One board, start to finish, inside its own process (esptool keeps one logger per process).

connect -> detect chip (must match the build) -> read MAC -> eFuse guards -> what the board holds -> claim
a triple for the MAC -> build its NVS image in memory -> write only the regions whose MD5 differs (esptool
checks each written region's MD5) -> check again what a write may have touched besides -> (optional boot
check) -> verified. Every ledger state change happens as it happens, so a station
killed at any point leaves a ledger a rerun can finish from: the same MAC gets the same triple back.

The DeviceSecret is read from the device file inside this process and leaves it only inside the image
sent to the board; nothing this module logs, reports or raises contains it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.queues import Queue
from typing import Any

from provision.credentials import Device, load_devices
from provision.errors import ProvisionError
from provision.gen_nvs import build_partition
from provision.station.board_link import DeflatedImages, close_port, lighten_board_process
from provision.station.board_state import BLANK, TRIPLE, UNREADABLE, HeldCredentials, read_held
from provision.station.build import FirmwareBuild
from provision.station.efuse import EfusePlan, apply_efuse_plan, check_efuse_plan
from provision.station.ports import Slot

__all__ = ["PRELOAD_MODULES", "BoardResult", "Region", "StationJob", "flash_board", "run_port"]

PR_SET_PDEATHSIG = 1  # linux/prctl.h
SECTOR = 0x1000  # SPI flash erase sector: the stub erases whole sectors before writing into them

# What a board process imports, for the server board processes are forked from to import once
# (provision.station.line): esptool and the ledger stores are imported lazily here, the station's own
# process never needs them. A module missing from this list is still imported, by every board.
PRELOAD_MODULES = (
    "provision.station.worker",
    "provision.station.board_link",
    "esptool.cmds",
    "esptool.loader",
    "esptool.logger",
    "provision.ledger",
    "provision.ledger.sqlite",
    "provision.ledger.postgres",
    "serial.urlhandler.protocol_socket",
    "serial.rfc2217",
    "logging",
)


@dataclass(frozen=True)
class StationJob:
    """What every board process needs; picklable and free of secrets."""

    csv_path: str
    ledger_url: str | None
    station: str
    build: FirmwareBuild
    product_keys: tuple[str, ...]
    layout: str = "aliyun"
    encryption: str = "none"
    baud: int = 460800
    connect_mode: str = "default-reset"
    efuse: EfusePlan = field(default_factory=EfusePlan)
    boot_check_s: float | None = None
    adopt: bool = False
    reprovision: bool = False


@dataclass
class BoardResult:
    port: str
    mac: str = ""
    device_name: str = ""
    product_key: str = ""
    chip: str = ""
    seconds: float = 0.0
    bytes_written: int = 0
    result: str = "failed"
    reason: str = ""
    cpu_seconds: float = 0.0  # this board's work, from connect to verified
    process_cpu_seconds: float = 0.0  # the whole board process, from its fork: start-up and imports included
    regions_skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Region:
    name: str
    offset: int
    data: bytes = field(repr=False)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


class BoardFailed(Exception):
    """A board-level failure whose message is safe to show and store (no secret)."""


def _die_with_station(station_pid: int) -> None:
    """A SIGKILLed station must not leave board processes writing on.

    The kernel kills this process when its parent goes: the fork server, which exits as soon as the
    station is gone (multiprocessing's "alive" pipe reaches EOF). A station already gone before the
    request was armed is caught by asking after it directly.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        os.kill(station_pid, 0)
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:
        pass  # it exists, under another user


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if isinstance(exc, (BoardFailed, ProvisionError)):
        return first[:240]
    return f"{type(exc).__name__}: {first}"[:240]


class _QueueLogger:
    """esptool logger that forwards write progress to the station and keeps the last lines for errors."""

    def __init__(self) -> None:
        from esptool.logger import TemplateLogger

        outer = self

        class Logger(TemplateLogger):
            def print(self, *args: Any, **kwargs: Any) -> None:
                outer.last = " ".join(str(a) for a in args)[:200]
                if "Lost connection" in outer.last:
                    outer.link_lost = True

            def note(self, message: str) -> None:
                outer.last = message[:200]

            def warning(self, message: str) -> None:
                outer.last = message[:200]

            def error(self, message: str) -> None:
                outer.last = message[:200]

            def stage(self, finish: bool = False) -> None:
                return None

            def progress_bar(
                self, cur_iter: int, total_iters: int, prefix: str = "", suffix: str = "", bar_length: int = 30
            ) -> None:
                if outer.on_progress is not None and total_iters:
                    outer.on_progress(cur_iter / total_iters)

            def set_verbosity(self, verbosity: str) -> None:
                return None

        self.last = ""
        self.link_lost = False
        self.on_progress: Any = None
        self.logger = Logger()


def _region_progress(emit: Any, port: str, base: int, size: int, total: int) -> Any:
    def report(fraction: float) -> None:
        emit("progress", port, base + int(fraction * size), total)

    return report


def flash_board(slot: Slot, job: StationJob, devices: dict[tuple[str, str], Device], emit: Any) -> BoardResult:
    """Provision the board in `slot`; never raises for a board problem, returns a failed result instead."""
    from esptool.cmds import attach_flash, detect_chip, write_flash
    from esptool.logger import log

    from provision.ledger import open_ledger

    started = time.monotonic()
    cpu_started = time.process_time()
    port = slot.name
    result = BoardResult(port=port)
    qlog = _QueueLogger()
    log.set_logger(qlog.logger)
    ledger = None
    claim = None
    esp = None
    phase = "connecting"
    try:
        emit("stage", port, "connecting")
        try:
            esp = detect_chip(slot.device, 115200, connect_mode=job.connect_mode, connect_attempts=3)
        except Exception as exc:
            raise BoardFailed(f"no answer from a board in download mode ({_short(exc)}): check BOOT/EN wiring") from exc
        result.chip = esp.CHIP_NAME
        if job.build.chip and esp.CHIP_NAME.lower().replace("-", "") != job.build.chip.lower().replace("-", ""):
            raise BoardFailed(f"chip is {esp.CHIP_NAME} but the build targets {job.build.chip}")
        phase = "reading the chip"
        result.mac = ":".join(f"{b:02x}" for b in esp.read_mac())
        check_efuse_plan(esp, job.efuse)
        esp = esp.run_stub()
        if job.baud != 115200:
            esp.change_baud(job.baud)
        attach_flash(esp)

        phase = "claiming a triple"
        ledger = open_ledger(job.ledger_url, None) if job.ledger_url else None
        if ledger is None:
            raise BoardFailed("no ledger configured")
        phase = "reading the credential partition"
        held = _held_credentials(esp, job, ledger, result.mac, devices)
        phase = "claiming a triple"
        reprovisioning = _reconcile(ledger, held, result, job, port)
        claim = ledger.claim(result.mac, job.product_keys, station=job.station, port=port, chip=result.chip)
        result.product_key, result.device_name = claim.product_key, claim.device_name
        if held.kind == BLANK and claim.again:
            ledger.record(claim, "erased", "read back blank by the station before writing", station=job.station)
        if reprovisioning:
            ledger.record(claim, "reprovisioned", f"--reprovision on port {port}", station=job.station)
        device = devices.get((claim.product_key, claim.device_name))
        if device is None:
            raise BoardFailed(f"the ledger gave {claim.product_key}/{claim.device_name}, which {job.csv_path} lacks")
        emit("stage", port, f"{claim.device_name}{' (again)' if claim.again else ''}")
        ledger.set_state(claim, "flashing", station=job.station, port=port)

        parts = build_partition(device, layout=job.layout, size=job.build.nvs.size, encryption=job.encryption)
        regions = [Region(image.name, image.offset, image.data) for image in job.build.images]
        regions.append(Region(f"{job.build.nvs.label} (NVS)", job.build.nvs.offset, parts.nvs))
        if parts.nvs_keys is not None:
            if job.build.nvs_keys is None:
                raise BoardFailed("the NVS is encrypted but the partition table has no nvs_keys partition")
            regions.append(Region(job.build.nvs_keys.label, job.build.nvs_keys.offset, parts.nvs_keys))
        apply_efuse_plan(esp, job.efuse, parts.hmac_key)
        del device, parts

        phase = "comparing regions"
        changed = [r for r in regions if esp.flash_md5sum(r.offset, len(r.data)) != r.md5]
        result.regions_skipped = len(regions) - len(changed)
        total = sum(len(r.data) for r in changed) or 1
        done = 0
        for region in changed:
            phase = f"writing {region.name}"
            qlog.on_progress = _region_progress(emit, port, done, len(region.data), total)
            write_flash(esp, [(region.offset, region.data)], flash_size="keep", compress=True)
            if qlog.link_lost:
                # esptool reconnected on its own and carried on with a new loader object we never see;
                # a board that dropped off mid-write is not trusted in this run.
                raise BoardFailed(f"link lost while writing {region.name}: board reset mid-write; flash it again")
            done += len(region.data)
            result.bytes_written = done
            emit("progress", port, done, total)
        ledger.set_state(claim, "flashed", station=job.station, port=port)

        phase = "verifying"
        emit("stage", port, "verifying")
        unverified = _regions_to_verify(regions, changed, verified_by_write=not esp.secure_download_mode)
        bad = [r.name for r in unverified if esp.flash_md5sum(r.offset, len(r.data)) != r.md5]
        if bad:
            raise BoardFailed(f"MD5 mismatch after writing: {', '.join(bad)}")
        if job.boot_check_s is not None:
            _boot_check(esp, claim.device_name, job.boot_check_s)
        ledger.set_state(claim, "verified", station=job.station, port=port)
        result.result = "verified"
    except Exception as exc:  # every failure of this board ends here, others go on
        result.reason = _short(exc) if isinstance(exc, (BoardFailed, ProvisionError)) else f"{phase}: {_short(exc)}"
        if ledger is not None and claim is not None:
            try:
                ledger.set_state(claim, "failed", result.reason, station=job.station, port=port)
            except Exception as ledger_exc:
                result.reason += f"; the ledger could not record it: {_short(ledger_exc)}"
    finally:
        if esp is not None:
            try:
                close_port(esp._port)
            except Exception:  # noqa: S110 - the port may already be gone with the board
                pass
        if ledger is not None:
            ledger.close()
        result.seconds = round(time.monotonic() - started, 3)
        result.cpu_seconds = round(time.process_time() - cpu_started, 4)
    return result


def _held_credentials(
    esp: Any, job: StationJob, ledger: Any, mac: str, devices: dict[tuple[str, str], Device]
) -> HeldCredentials:
    """What the board's credential partition holds, read over the link only when its MD5 does not say.

    A board back on the line usually holds the very image this station makes for the triple the ledger
    bound to its MAC (a plain NVS image is the same bytes every time it is made): when the partition's MD5
    is that image's, it holds that triple, and the 24 KiB read and its decoding are skipped. Anything else
    (no binding, another image, an encrypted NVS whose keys are fresh each time) is read as before.
    """
    bound = ledger.bound_to(mac, job.product_keys) if job.encryption == "none" else None
    device = devices.get((bound.product_key, bound.device_name)) if bound is not None else None
    if bound is not None and device is not None:
        own = build_partition(device, layout=job.layout, size=job.build.nvs.size, encryption="none").nvs
        if esp.flash_md5sum(job.build.nvs.offset, job.build.nvs.size) == Region("", 0, own).md5:
            return HeldCredentials(TRIPLE, bound.product_key, bound.device_name)
    return read_held(esp, job.build)


def _regions_to_verify(regions: list[Region], written: list[Region], *, verified_by_write: bool) -> list[Region]:
    """The regions whose MD5 is not already known good after writing.

    Every region's MD5 was compared just before writing; esptool's `write_flash` compares each region it
    writes again afterwards and raises on a mismatch (unless secure download mode hides the flash). What
    is left: a region skipped as unchanged that shares a 4 KiB sector with a written one (the stub erases
    whole sectors before it writes), and written regions esptool could not check. On a board that needed
    nothing written, nothing is left: no second pass over a megabyte of flash.
    """
    written_sectors = {
        sector for r in written for sector in range(r.offset // SECTOR, -(-(r.offset + len(r.data)) // SECTOR))
    }
    written_ids = {id(r) for r in written}
    left = []
    for region in regions:
        if id(region) in written_ids:
            if not verified_by_write:
                left.append(region)
            continue
        sectors = range(region.offset // SECTOR, -(-(region.offset + len(region.data)) // SECTOR))
        if any(sector in written_sectors for sector in sectors):
            left.append(region)
    return left


def _reconcile(ledger: Any, held: HeldCredentials, result: BoardResult, job: StationJob, port: str) -> bool:
    """Compare what the board holds with what the ledger says its MAC holds, before any claim.

    Returns:
        whether this is an explicit re-provisioning of a verified device (to be recorded).

    Raises:
        BoardFailed: the board holds a triple (or an unreadable partition) this ledger has not bound to
            its MAC, or is a verified device that lost its triple, and neither --adopt nor --reprovision says
            what to do.
    """
    bound = ledger.bound_to(result.mac, job.product_keys)
    if held.kind == TRIPLE:
        if bound is not None and (bound.product_key, bound.device_name) == (held.product_key, held.device_name):
            return False  # the board holds what the ledger gave it: a rerun, nothing to decide
        if job.adopt and bound is None:
            ledger.adopt(
                held.product_key, held.device_name, result.mac, station=job.station, port=port, chip=result.chip
            )
            return False
        if job.reprovision:
            ledger.overwrite(held.product_key, held.device_name, result.mac, station=job.station)
            return False
        raise BoardFailed(
            f"board holds {held.name}, which this ledger has not bound to {result.mac} (another station's ledger, "
            "a renamed CSV or a mistyped --ledger?): --adopt records that binding, --reprovision overwrites it "
            "and retires the old triple"
        )
    if held.kind == UNREADABLE:
        if bound is not None and bound.state != "verified":
            return False  # this ledger's own earlier write, cut short
        if not job.reprovision:
            raise BoardFailed(
                "board holds an encrypted or unreadable credential partition whose keys this ledger lacks: "
                "--reprovision overwrites it (--adopt needs a readable one)"
            )
        return bound is not None
    if bound is not None and bound.state == "verified":
        if not job.reprovision:
            raise BoardFailed(
                f"board is {bound.product_key}/{bound.device_name}, verified at {bound.verified_at}, but now "
                "holds no triple: --reprovision writes that triple again (recorded in the ledger)"
            )
        return True
    return False


def _boot_check(esp: Any, device_name: str, timeout_s: float) -> None:
    """Reset into the application (RTS) and wait for a console line that names the device."""
    esp.hard_reset()
    port = esp._port
    port.timeout = 0.2
    deadline = time.monotonic() + timeout_s
    seen = b""
    while time.monotonic() < deadline:
        seen = (seen + port.read(256))[-4096:]
        if any(device_name.encode() in line for line in seen.split(b"\n")[:-1]):
            return
    hint = (
        " (a socket:// link carries no reset line: use rfc2217:// or a serial port)"
        if str(port.port).startswith("socket://")
        else ""
    )
    raise BoardFailed(f"boot check: no console line naming {device_name} within {timeout_s:g} s{hint}")


def run_port(
    slot: Slot, job: StationJob, deflated: DeflatedImages, queue: Queue[Any], station_pid: int, station_cwd: str
) -> None:
    """Process entry: one board in `slot`; the result goes back through `queue`.

    Args:
        deflated: the build's images as the station compressed them once for every board.
        station_pid: the station's process, which this one must not outlive.
        station_cwd: the station's working directory now (the fork server's may be older), so a relative
            ledger path means what it meant to the station.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the station's to handle
    _die_with_station(station_pid)
    os.chdir(station_cwd)
    lighten_board_process(job.build.images, deflated)
    port = slot.name

    def emit(kind: str, where: str, *payload: Any) -> None:
        queue.put((kind, where, *payload))

    try:
        devices = {(d.product_key, d.device_name): d for d in load_devices(job.csv_path)}
    except ProvisionError as exc:
        emit("result", port, BoardResult(port=port, reason=exc.lines[0]).as_dict())
        return
    result = flash_board(slot, job, devices, emit)
    result.process_cpu_seconds = round(time.process_time(), 4)
    emit("result", port, result.as_dict())

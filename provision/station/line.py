"""The factory line: check everything, import the device file into the ledger, flash every port at once.

Order matters: the device file and the build are read and validated, and the ledger opened and fed,
before any board is touched; a bad file stops the line with nothing written anywhere.
Then one process per port (its own process, so each has its own esptool logger and a board that kills
its process fails alone) provisions its board and reports progress through a queue; this process draws
one bar per port and an overall bar, then the table and the report files. Board processes are forked
from a server that imported esptool and the worker once, started before the inputs are read, so a
board's process starts in milliseconds instead of importing everything again.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.forkserver
import os
import queue as queue_module
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.credentials import load_devices
from provision.errors import InputError
from provision.ledger import default_ledger_path, ledger_exists, open_ledger, redact_url
from provision.station.board_link import ImageDeflater
from provision.station.build import FirmwareBuild
from provision.station.efuse import EfusePlan
from provision.station.ports import Slot
from provision.station.report import RunReport
from provision.station.worker import PRELOAD_MODULES, BoardResult, StationJob, run_port

__all__ = ["LineOptions", "LineSummary", "run_line"]

ENCRYPTIONS = ("none", "xts", "hmac")


@dataclass(frozen=True)
class LineOptions:
    csv_path: Path
    build: FirmwareBuild
    ledger_url: str | None = None
    report_prefix: Path | None = None
    station: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    layout: str = "aliyun"
    encryption: str = "none"
    baud: int = 460800
    connect_mode: str = "default-reset"
    efuse: EfusePlan = field(default_factory=EfusePlan)
    boot_check_s: float | None = None
    show_progress: bool = True
    new_ledger: bool = False  # create the ledger; it must not exist yet
    create_missing_ledger: bool = False  # create it only if missing (--emulate: boards of its own)
    adopt: bool = False
    reprovision: bool = False


@dataclass(frozen=True)
class LineSummary:
    results: tuple[BoardResult, ...]
    report_csv: Path
    report_json: Path
    ledger: str
    imported: int
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if r.result != "verified")

    @property
    def verified(self) -> int:
        return len(self.results) - self.failed

    @property
    def line(self) -> str:
        stopped = " (interrupted)" if self.interrupted else ""
        return f"{self.verified} of {len(self.results)} verified in {self.seconds:.1f} s{stopped}"


def _ledger_url(options: LineOptions) -> str:
    if options.ledger_url:
        return options.ledger_url
    return str(default_ledger_path(options.csv_path).resolve())


def _report_prefix(options: LineOptions) -> Path:
    return options.report_prefix or options.csv_path.with_name(options.csv_path.stem + "-flash-report")


def _check_report_location(prefix: Path) -> None:
    """The report is written after the last board: a place it cannot go must stop the line before the first."""
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--report {prefix}: cannot create {exc.filename}: {exc.strerror}") from None
    if not os.access(prefix.parent, os.W_OK | os.X_OK):
        raise InputError(f"--report {prefix}: {prefix.parent} is not writable")


def prepare(options: LineOptions) -> tuple[StationJob, int, str]:
    """Validate inputs and import the device file into the ledger; touches no board.

    Returns:
        the job for board processes, how many triples this import added, the ledger's description.

    Raises:
        InputError: bad device file, options, or a file conflicting with the ledger.
    """
    if options.encryption not in ENCRYPTIONS:
        raise InputError(f"--nvs-encryption: {options.encryption!r} is not one of {', '.join(ENCRYPTIONS)}")
    if options.encryption == "xts" and options.build.nvs_keys is None:
        raise InputError("--nvs-encryption xts: the partition table has no nvs_keys partition to hold the keys")
    if options.efuse.burn_hmac_key and options.encryption != "hmac":
        raise InputError("--burn-hmac-key: needs --nvs-encryption hmac (the key the NVS is encrypted with)")
    if options.encryption == "hmac" and not options.efuse.burn_hmac_key:
        raise InputError("--nvs-encryption hmac: the board needs the key in eFuse: add --burn-hmac-key")
    if options.efuse.wanted and not options.efuse.confirmed:
        raise InputError("eFuse burning is permanent: add --confirm-efuse-burn to allow it")
    devices = load_devices(options.csv_path)
    _check_report_location(_report_prefix(options))
    digest = hashlib.sha256(options.csv_path.read_bytes()).hexdigest()
    url = _ledger_url(options)
    exists = ledger_exists(url, options.csv_path)
    if options.new_ledger and exists:
        raise InputError(f"--new-ledger: {redact_url(url)} exists already: leave out --new-ledger to use it")
    ledger = open_ledger(url, options.csv_path, create=options.new_ledger or options.create_missing_ledger)
    try:
        imported = ledger.import_devices(devices, file_name=str(options.csv_path), file_sha256=digest)
        description = ledger.description
    finally:
        ledger.close()
    job = StationJob(
        csv_path=str(options.csv_path.resolve()),
        ledger_url=url,
        station=options.station,
        build=options.build,
        product_keys=tuple(sorted({d.product_key for d in devices})),
        layout=options.layout,
        encryption=options.encryption,
        baud=options.baud,
        connect_mode=options.connect_mode,
        efuse=options.efuse,
        boot_check_s=options.boot_check_s,
        adopt=options.adopt,
        reprovision=options.reprovision,
    )
    return job, imported.added, description


def _board_process_server() -> Any:
    """The multiprocessing context board processes are forked from, its server started now.

    The server imports `PRELOAD_MODULES` once while this process goes on reading inputs; each board's
    process is a fork of it (issue 13: a spawned process spent 0.36 s of CPU per board importing them).
    It starts with SIGINT ignored, which it and every board process keep: Ctrl-C is the station's to
    handle, and a board process interrupted mid-write would leave its board half-written.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD_MODULES))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)
    return ctx


class _Board:
    def __init__(self, slot: Slot, process: Any) -> None:
        self.slot = slot
        self.process = process
        self.result: BoardResult | None = None


def run_line(
    options: LineOptions,
    slots: Sequence[Slot],
    *,
    watch: Callable[[set[str]], list[Slot]] | None = None,
    console: Any = None,
) -> LineSummary:
    """Provision the boards in `slots` in parallel (and, with `watch`, each newly plugged one until Ctrl-C).

    Args:
        watch: called about twice a second with the slot names busy now; returns new slots to start.
        console: a rich Console for progress and the table (default: stdout).

    Returns:
        every board's result and where the report went. Never raises for a board's failure.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    if options.boot_check_s is not None:
        no_reset = [slot.name for slot in slots if slot.device.startswith("socket://")]
        if no_reset:
            raise InputError(
                f"--boot-check: {', '.join(no_reset)} is a socket:// link, which carries no reset line: "
                "use rfc2217:// or a serial port, or leave out --boot-check"
            )
    started = time.monotonic()
    ctx = _board_process_server()
    job, imported, ledger_description = prepare(options)
    deflater = ImageDeflater(job.build.images, ctx)
    report = RunReport(_report_prefix(options), station=options.station, ledger=ledger_description)
    console = console or Console()
    events: Any = ctx.Queue()
    boards: dict[str, _Board] = {}
    done: list[BoardResult] = []
    progress = Progress(
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not options.show_progress,
    )
    tasks: dict[str, Any] = {}
    expected = [len(slots)]
    # The overall bar counts boards (its bytes column shows nothing: total is a board count).
    overall = progress.add_task(f"boards 0/{len(slots)}", total=max(len(slots), 1), stage="")
    if not options.build.has_application:
        console.print(
            f"no --build-dir: writing only the per-device partitions "
            f"(NVS {options.build.nvs.label} at {options.build.nvs.offset:#x}, no application image)"
        )

    def start(slot: Slot) -> None:
        # Ctrl-C waits until the process is on record: one interrupted between its fork and `boards` would be
        # neither stopped nor waited for, and would find the station's queue and events gone as it unpickles
        # them (a traceback from the fork server).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process = ctx.Process(
                target=run_port,
                args=(slot, job, deflater.shared, events, os.getpid(), os.getcwd()),
                name=f"board {slot.name}",
            )
            process.start()
            boards[slot.name] = _Board(slot, process)
            tasks[slot.name] = progress.add_task(slot.name, total=None, stage="starting")
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def handle(event: tuple[Any, ...]) -> None:
        kind, name = event[0], event[1]
        if name not in tasks:
            return
        if kind == "progress":
            progress.update(tasks[name], completed=event[2], total=event[3])
        elif kind == "stage":
            progress.update(tasks[name], stage=event[2])
        elif kind == "result":
            result = BoardResult(**event[2])
            boards[name].result = result
            done.append(result)
            report.add(result)
            progress.update(tasks[name], stage=result.result if not result.reason else f"failed: {result.reason[:60]}")
            progress.update(overall, advance=1, description=f"boards {len(done)}/{expected[0]}")

    interrupted = False
    try:
        with progress:
            for slot in slots:
                start(slot)
            while True:
                try:
                    handle(events.get(timeout=0.5))
                except queue_module.Empty:
                    pass
                for name, board in list(boards.items()):
                    if board.result is None and not board.process.is_alive():
                        # Drain what it may have sent just before exiting, then judge.
                        while board.result is None:
                            try:
                                handle(events.get(timeout=0.5))
                            except queue_module.Empty:
                                break
                        if board.result is None:
                            handle(
                                (
                                    "result",
                                    name,
                                    BoardResult(
                                        port=name, reason=f"board process died (exit {board.process.exitcode})"
                                    ).as_dict(),
                                )
                            )
                    if board.result is not None and not board.process.is_alive():
                        board.process.join()
                        if watch is not None:
                            del boards[name]
                if watch is not None:
                    for slot in watch(set(boards)):
                        expected[0] += 1
                        progress.update(overall, total=expected[0])
                        start(slot)
                elif all(b.result is not None for b in boards.values()):
                    break
    except KeyboardInterrupt:
        interrupted = watch is None or any(b.result is None for b in boards.values())
        for board in boards.values():
            if board.process.is_alive():
                board.process.terminate()
        for board in boards.values():
            board.process.join(5)
    seconds = time.monotonic() - started
    report.close(seconds=seconds, interrupted=interrupted)
    deflater.close()
    return LineSummary(
        tuple(done), report.csv_path, report.json_path, ledger_description, imported, seconds, interrupted
    )

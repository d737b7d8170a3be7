"""Benchmark the factory line against emulated boards on a throttled link (a real serial line's speed).

Prints:
  - the tool's own CPU time per board (board phase: connect -> verified, in the board's process; and the
    whole board process including interpreter start-up and imports), goal < 100 ms for the board phase;
  - wall time of the whole line for 1, 4 and 8 boards (goal: 8 boards in <= 1.3x the time of one);
  - bytes written per board: first flash, then re-provisioning a board that already holds the same app
    (goal: only the changed regions are written).

The emulated link runs at the ROM's 115200 baud until esptool switches, then at --baud (default 921600,
as a USB-UART bridge runs), 10 bits per byte. The build is synthetic (labelled so inside every image):
a 1 MiB application that compresses about 2:1, like real firmware.

Run: .venv/bin/python bench/flash_bench.py [--baud 921600] [--app-kib 1024] [--boards 1,4,8]
"""

from __future__ import annotations

import argparse
import csv
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from provision.emulator import EmulatedRack
from provision.emulator.board import BoardSpec
from provision.emulator.synthetic_build import synthetic_build
from provision.station import LineOptions, Slot, load_build, run_line
from provision.station.worker import BoardResult


def write_devices(path: Path, count: int) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ProductKey", "DeviceName", "DeviceSecret", "Region"])
        for n in range(count):
            writer.writerow(["a1BenchProd", f"bench-{n:05d}", secrets.token_hex(16), "cn-shanghai"])
    return path


def run_batch(
    work: Path, build_dir: Path, csv_path: Path, boards: int, baud: int, tag: str
) -> tuple[float, list[BoardResult]]:
    specs = [
        BoardSpec(
            name=f"{tag}-{n}",
            chip="esp32",
            mac=f"02:be:{boards:02x}:00:00:{n:02x}",
            flash_path=str(work / "boards" / f"{boards}-{n}.bin"),
            line_baud=baud,
        )
        for n in range(boards)
    ]
    options = LineOptions(
        csv_path=csv_path,
        build=load_build(build_dir),
        ledger_url=str(work / "bench.ledger.sqlite"),
        create_missing_ledger=True,
        report_prefix=work / f"report-{tag}",
        baud=baud,
        show_progress=False,
    )
    with EmulatedRack(specs) as rack:
        slots = [Slot(spec.name, url) for spec, url in zip(specs, rack.urls, strict=True)]
        started = time.monotonic()
        summary = run_line(options, slots)
        wall = time.monotonic() - started
    failed = [r for r in summary.results if r.result != "verified"]
    if failed:
        raise SystemExit(f"bench: {len(failed)} boards failed: {failed[0].reason}")
    return wall, list(summary.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=921600)
    parser.add_argument("--app-kib", type=int, default=1024)
    parser.add_argument("--boards", default="1,4,8")
    args = parser.parse_args()
    counts = [int(n) for n in args.boards.split(",")]

    with tempfile.TemporaryDirectory(prefix="flash-bench-") as tmp:
        work = Path(tmp)
        build_dir = synthetic_build(work / "build", app_size=args.app_kib * 1024)
        csv_path = write_devices(work / "devices.csv", sum(counts) + 8)
        print(f"synthetic build: {args.app_kib} KiB app + bootloader + partition table; link {args.baud} baud")

        walls: dict[int, float] = {}
        first_results: list[BoardResult] = []
        for count in counts:
            wall, results = run_batch(work, build_dir, csv_path, count, args.baud, f"first{count}")
            walls[count] = wall
            first_results += results
            print(
                f"{count} board(s), first flash: wall {wall:6.2f} s   per-board seconds "
                f"{min(r.seconds for r in results):.2f}..{max(r.seconds for r in results):.2f}"
            )

        again_wall, again = run_batch(work, build_dir, csv_path, counts[-1], args.baud, "again")
        cpu_board = [r.cpu_seconds * 1000 for r in first_results]
        cpu_process = [r.process_cpu_seconds * 1000 for r in first_results]
        print()
        print(
            f"tool CPU per board, board phase (connect..verified): median {statistics.median(cpu_board):.0f} ms, "
            f"max {max(cpu_board):.0f} ms  (goal < 100 ms)"
        )
        print(
            f"tool CPU per board process incl. Python start-up and imports: median "
            f"{statistics.median(cpu_process):.0f} ms"
        )
        if 1 in walls and counts[-1] in walls:
            ratio = walls[counts[-1]] / walls[1]
            print(f"wall time {counts[-1]} boards / 1 board: {ratio:.2f}x  (goal <= 1.3x)")
        first_bytes = statistics.median(r.bytes_written for r in first_results)
        again_bytes = statistics.median(r.bytes_written for r in again)
        print(
            f"bytes written per board: first flash {first_bytes:,.0f}; re-provisioning the same app "
            f"{again_bytes:,.0f} (regions skipped by MD5: {again[0].regions_skipped}); "
            f"re-provision wall for {counts[-1]} boards {again_wall:.2f} s"
        )


if __name__ == "__main__":
    main()

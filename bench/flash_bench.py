"""Benchmark the factory line against emulated boards on a throttled link (a real serial line's speed).

Prints, for each of --repeat rounds (machine load beside each) and their median:
  - one board's phase (connect -> verified, the board process's own clock) against its wire floor: the
    bytes that crossed its link, counted by the emulator at the UART in each direction under the baud rate
    in force (the ROM's 115200 until esptool switches, then --baud), times 10 bits a byte (8N1);
    goal <= 1.15x;
  - wall time of the whole line (run_line) for 1, 4 and 8 boards; goal: 8 boards <= 1.3x one;
  - re-provisioning boards that need nothing written (every region's MD5 matches): line wall time for 1
    and for 8 boards, goal <= 1.5 s, and the bytes that still crossed the link;
  - CPU: per board phase, per board process from its start (fork) to its result, so the difference is
    the cost of starting a board's process (imports included); the fork server's imports (once); the
    emulator's own CPU per round.
The first line of this process starts the server board processes are forked from; that start is timed
on its own ("cold") and the rounds after it run warm, as a station does after its first board.

The emulated link is real time: each byte takes 10 / baud seconds to arrive (provision/emulator/board.py
`_Link`). The build is synthetic (labelled so inside every image): a 1 MiB application that compresses
about 2:1, like real firmware.

Run: .venv/bin/python bench/flash_bench.py [--baud 921600] [--app-kib 1024] [--boards 1,4,8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from provision.emulator import EmulatedRack
from provision.emulator.board import BoardSpec
from provision.emulator.synthetic_build import synthetic_build
from provision.station import LineOptions, Slot, load_build, run_line
from provision.station.worker import BoardResult


@dataclass
class Batch:
    wall_s: float
    results: list[BoardResult]
    wire_s: dict[str, float]  # board name -> wire floor of its connection(s) in this batch
    link_bytes: dict[str, int]
    emulator_cpu_s: float


def write_devices(path: Path, count: int) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ProductKey", "DeviceName", "DeviceSecret", "Region"])
        for n in range(count):
            writer.writerow(["a1BenchProd", f"bench-{n:05d}", secrets.token_hex(16), "cn-shanghai"])
    return path


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run_batch(work: Path, build_dir: Path, csv_path: Path, boards: int, baud: int, tag: str, flash: str) -> Batch:
    """Run the line once on `boards` emulated boards whose flash files are named by `flash` (reused = rerun)."""
    logs = work / "links" / tag
    logs.mkdir(parents=True, exist_ok=True)
    specs = [
        BoardSpec(
            name=f"{flash}-{n}",
            chip="esp32",
            mac="02:be:" + ":".join(f"{b:02x}" for b in hashlib.sha256(flash.encode()).digest()[:3]) + f":{n:02x}",
            flash_path=str(work / "boards" / f"{flash}-{n}.bin"),
            line_baud=baud,
            link_log_path=str(logs / f"{flash}-{n}.jsonl"),
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
        assert rack._process is not None
        slots = [Slot(spec.name, url) for spec, url in zip(specs, rack.urls, strict=True)]
        cpu_before = _process_cpu_s(rack._process.pid)
        started = time.monotonic()
        summary = run_line(options, slots)
        wall = time.monotonic() - started
        emulator_cpu = _process_cpu_s(rack._process.pid) - cpu_before
    failed = [r for r in summary.results if r.result != "verified"]
    if failed:
        raise SystemExit(f"bench: {len(failed)} boards failed: {failed[0].reason}")
    wire: dict[str, float] = {}
    link_bytes: dict[str, int] = {}
    for spec in specs:  # the rack has stopped: every connection has logged its tally
        assert spec.link_log_path is not None
        tallies = [json.loads(line) for line in Path(spec.link_log_path).read_text().splitlines()]
        wire[spec.name] = sum(t["wire_s"] for t in tallies)
        link_bytes[spec.name] = sum(sum(t[d].values()) for t in tallies for d in ("to_board", "to_host"))
    by_port = {r.port: r for r in summary.results}
    return Batch(wall, [by_port[s.name] for s in specs], wire, link_bytes, emulator_cpu)


def server_start_cpu_s() -> float | None:
    """CPU of a fresh interpreter importing what the fork server preloads, less a bare interpreter's start:
    what the station pays once per process (and, before the fork server, every board paid)."""
    from provision.station import worker

    modules = getattr(worker, "PRELOAD_MODULES", None)
    if modules is None:
        return None
    cpu = []
    for code in ("pass", "import " + ", ".join(modules)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return cpu[1] - cpu[0]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min, {os.cpu_count()} cores)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=921600)
    parser.add_argument("--app-kib", type=int, default=1024)
    parser.add_argument("--boards", default="1,4,8")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.boards.split(",")]
    most = max(counts)

    with tempfile.TemporaryDirectory(prefix="flash-bench-") as tmp:
        work = Path(tmp)
        build_dir = synthetic_build(work / "build", app_size=args.app_kib * 1024)
        csv_path = write_devices(work / "devices.csv", args.repeat * (sum(counts) + most) + 2)
        print(f"synthetic build: {args.app_kib} KiB app + bootloader + partition table; link {args.baud} baud")
        print(f"start: {_load()}")
        cold = run_batch(work, build_dir, csv_path, 1, args.baud, "cold", "cold")
        print(f"cold line (first of this process, board-process server start included): 1 board {cold.wall_s:.2f} s")
        preload = server_start_cpu_s()
        if preload is not None:
            print(f"fork server's imports, once per station process: {preload * 1000:.0f} ms CPU")

        phase_ratio: list[float] = []
        scale: list[float] = []
        again_1: list[float] = []
        again_n: list[float] = []
        cpu_board: list[float] = []
        cpu_start: list[float] = []
        for round_no in range(1, args.repeat + 1):
            walls: dict[int, Batch] = {}
            for count in counts:
                walls[count] = run_batch(
                    work, build_dir, csv_path, count, args.baud, f"r{round_no}n{count}", f"r{round_no}n{count}"
                )
            one = walls[counts[0]]
            board = one.results[0]
            floor = one.wire_s[board.port]
            phase_ratio.append(board.seconds / floor)
            if 1 in walls:
                scale.append(walls[most].wall_s / walls[1].wall_s)
            rerun_1 = run_batch(work, build_dir, csv_path, 1, args.baud, f"r{round_no}a1", f"r{round_no}n1")
            rerun_n = run_batch(
                work, build_dir, csv_path, most, args.baud, f"r{round_no}a{most}", f"r{round_no}n{most}"
            )
            again_1.append(rerun_1.wall_s)
            again_n.append(rerun_n.wall_s)
            first = [r for batch in walls.values() for r in batch.results]
            cpu_board += [r.cpu_seconds for r in first]
            cpu_start += [r.process_cpu_seconds - r.cpu_seconds for r in first]
            print(f"round {round_no} ({_load()}):")
            print(
                f"  bytes written per board, first flash {board.bytes_written:,}; regions skipped by MD5 when "
                f"nothing changed {rerun_1.results[0].regions_skipped}"
            )
            print(
                f"  one board's phase {board.seconds:.2f} s, wire floor {floor:.2f} s "
                f"({one.link_bytes[board.port]:,} bytes on its link): {board.seconds / floor:.3f}x  (goal <= 1.15x)"
            )
            print(
                "  line wall "
                + ", ".join(f"{n} board(s) {b.wall_s:.2f} s" for n, b in walls.items())
                + (f": {most} / 1 = {scale[-1]:.2f}x  (goal <= 1.3x)" if 1 in walls else "")
            )
            print(
                f"  nothing to write (all MD5s match): line wall 1 board {rerun_1.wall_s:.2f} s "
                f"(board phase {rerun_1.results[0].seconds:.2f} s, wire floor "
                f"{rerun_1.wire_s[rerun_1.results[0].port]:.2f} s), {most} boards {rerun_n.wall_s:.2f} s  "
                f"(goal <= 1.5 s); bytes written {sum(r.bytes_written for r in rerun_n.results)}"
            )
            print("  emulator CPU " + ", ".join(f"{n} board(s) {b.emulator_cpu_s:.2f} s" for n, b in walls.items()))

        print()
        print(f"median of {args.repeat} rounds ({_load()}):")
        print(f"  one board's phase / its wire floor: {statistics.median(phase_ratio):.3f}x  (goal <= 1.15x)")
        if scale:
            print(f"  line wall {most} boards / 1 board: {statistics.median(scale):.2f}x  (goal <= 1.3x)")
        print(
            f"  nothing to write: line wall 1 board {statistics.median(again_1):.2f} s, {most} boards "
            f"{statistics.median(again_n):.2f} s  (goal <= 1.5 s)"
        )
        print(
            f"  CPU per board phase (connect..verified): median {statistics.median(cpu_board) * 1000:.0f} ms; "
            f"board process start-up (process CPU minus its phase): median "
            f"{statistics.median(cpu_start) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()

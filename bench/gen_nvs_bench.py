"""Benchmark `provision gen-nvs --encrypt`: CPU seconds against the anchor (esp-idf-nvs-partition-gen's
in-process API making the same encrypted images and nvs_keys partitions, keys from `secrets`) in one run,
for the default directory tree and for --archive, then peak memory at two CSV sizes (it streams: the peak
should not grow with the CSV).

Run: .venv/bin/python bench/gen_nvs_bench.py [--devices 10000] [--rounds 5] [--small 1000] [--large 100000]
     [--dir /dev/shm]

Each measurement is its own process (a fresh interpreter: one run cannot warm or inflate another), and the
three jobs alternate round by round (anchor, tree, archive, anchor, ...) so that load from other users of
the machine falls on all of them alike; the figures are medians over the rounds. CPU is user + system time
of that process (resource.getrusage), from after the CSV is written to the end of the job: for gen-nvs the
whole command (validation, images, keys, files, manifest, sync), for the anchor only making the images in
memory from rows parsed beforehand (no validation, no files): the goal is gen-nvs at most 0.40x of it.
A second anchor, `package-files`, is the same library work plus writing what the tree holds (a 0700
directory per device with its nvs.bin and nvs_keys.bin): the part of gen-nvs's output the library's API
leaves to its caller, so its ratio compares the same files written (still no validation, no manifest).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import string
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

ALPHABET = string.ascii_letters + string.digits
JOBS = ("package", "package-files", "tree", "archive")


def write_csv(path: Path, devices: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("ProductKey,DeviceName,DeviceSecret,Region\r\n")
        for index in range(devices):
            secret = "".join(secrets.choice(ALPHABET) for _ in range(32))
            out.write(f"a1BenchPK01,bench-{index:06d},{secret},cn-shanghai\r\n")


def _cpu_s() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _package_image(namespace: str, pairs: list[tuple[str, str]], size: int, xts_key: bytes) -> bytes:
    import io

    from esp_idf_nvs_partition_gen import nvs_partition_gen as package

    out = io.BytesIO()
    nvs = package.nvs_open(out, size - 4096, package.Page.VERSION2, is_encrypt=True, key=xts_key)
    package.write_entry(nvs, namespace, "namespace", "", "")
    for key, value in pairs:
        package.write_entry(nvs, key, "data", "string", value)
    package.nvs_close(nvs)
    return out.getvalue()


def _write_device_files(directory: str, image: bytes, keys: bytes) -> None:
    """The tree's files with the same system calls gen-nvs makes (mkdir, then open, one write, close)."""
    os.mkdir(directory, 0o700)
    for name, data in (("nvs.bin", image), ("nvs_keys.bin", keys)):
        fd = os.open(f"{directory}/{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def measure_cpu(job: str, devices: int, base: str | None) -> dict[str, float]:
    """CPU of one job in this (fresh) process: `package` (the anchor), `package-files` (the anchor writing
    the tree's files), `tree` (gen-nvs --out) or `archive` (gen-nvs --archive), output in `base`."""
    from provision import nvs_format
    from provision.credentials import iter_devices
    from provision.gen_nvs import DEFAULT_SIZE, layout_entries, write_archive, write_partitions

    with tempfile.TemporaryDirectory(dir=base) as work:
        csv_path = Path(work) / "devices.csv"
        write_csv(csv_path, devices)
        if job in ("package", "package-files"):
            rows = list(iter_devices(csv_path))
            tree = f"{work}/out"
            os.mkdir(tree)
            start = _cpu_s()
            for device in rows:
                namespace, pairs = layout_entries(device, "aliyun")
                xts_key = secrets.token_bytes(nvs_format.XTS_KEY_SIZE)
                image = _package_image(namespace, pairs, DEFAULT_SIZE, xts_key)
                keys = nvs_format.nvs_keys_partition(xts_key)
                if job == "package-files":
                    _write_device_files(f"{tree}/{device.device_name}", image, keys)
        elif job == "tree":
            start = _cpu_s()
            write_partitions(csv_path, Path(work) / "out", encryption="xts")
        else:
            start = _cpu_s()
            write_archive(csv_path, Path(work) / "out.tar", encryption="xts")
        return {"devices": devices, "cpu_s": _cpu_s() - start}


def measure_memory(devices: int, job: str, base: str | None) -> dict[str, float]:
    """Peak of the Python heap (tracemalloc) while gen-nvs writes `devices` devices (size 0x3000)."""
    from provision.gen_nvs import write_archive, write_partitions

    with tempfile.TemporaryDirectory(dir=base) as work:
        csv_path = Path(work) / "devices.csv"
        write_csv(csv_path, devices)
        tracemalloc.start()
        if job == "tree":
            write_partitions(csv_path, Path(work) / "out", encryption="xts", size=0x3000)
        else:
            write_archive(csv_path, Path(work) / "out.tar", encryption="xts", size=0x3000)
        peak_kib = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
    return {"devices": devices, "peak_kib": peak_kib}


def measure_rss(devices: int, job: str, base: str | None) -> dict[str, float]:
    """Max resident set of a process that only runs gen-nvs (no tracemalloc, whose own tables grow)."""
    from provision.gen_nvs import write_archive, write_partitions

    with tempfile.TemporaryDirectory(dir=base) as work:
        csv_path = Path(work) / "devices.csv"
        write_csv(csv_path, devices)
        if job == "tree":
            write_partitions(csv_path, Path(work) / "out", encryption="xts", size=0x3000)
        else:
            write_archive(csv_path, Path(work) / "out.tar", encryption="xts", size=0x3000)
        return {"devices": devices, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def profile_run(devices: int, base: str | None) -> list[str]:
    """Top functions by own time in one gen-nvs --out run (where the time goes)."""
    import cProfile
    import io
    import pstats

    from provision.gen_nvs import write_partitions

    with tempfile.TemporaryDirectory(dir=base) as work:
        csv_path = Path(work) / "devices.csv"
        write_csv(csv_path, devices)
        profiler = cProfile.Profile()
        profiler.enable()
        write_partitions(csv_path, Path(work) / "out", encryption="xts")
        profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(10)
    return [line for line in text.getvalue().splitlines() if line.strip()][-11:]


def run_worker(kind: str, job: str, devices: int, base: str | None) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", kind, "--job", job, "--devices", str(devices)]
    done = subprocess.run([*command, *(["--dir", base] if base else [])], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--dir", default=None, help="Where the output goes (default /dev/shm, a tmpfs, if present).")
    parser.add_argument("--worker", choices=["cpu", "memory", "rss", "profile"])
    parser.add_argument("--job", choices=JOBS, default="tree")
    args = parser.parse_args()
    if args.worker is not None:
        worker = {"cpu": measure_cpu, "memory": measure_memory, "rss": measure_rss}
        if args.worker == "profile":
            print(json.dumps({"lines": profile_run(args.devices, args.dir)}))
        elif args.worker == "cpu":
            print(json.dumps(measure_cpu(args.job, args.devices, args.dir)))
        else:
            print(json.dumps(worker[args.worker](args.devices, args.job, args.dir)))
        return

    base = args.dir if args.dir is not None else ("/dev/shm" if Path("/dev/shm").is_dir() else None)
    where = base or tempfile.gettempdir()
    cpu: dict[str, list[float]] = {job: [] for job in JOBS}
    for _ in range(args.rounds):
        for job in JOBS:
            cpu[job].append(run_worker("cpu", job, args.devices, base)["cpu_s"])
    median = {job: statistics.median(values) for job, values in cpu.items()}
    print(
        f"CPU seconds, {args.devices} devices, --encrypt, output in {where}, "
        f"median of {args.rounds} alternating rounds:"
    )
    labels = {
        "package": "anchor: esp-idf-nvs-partition-gen in-process API, images in memory",
        "package-files": "anchor writing the tree's files (the same API, then mkdir, nvs.bin, nvs_keys.bin)",
        "tree": "provision gen-nvs --out DIR (default: validation, images, files, manifest)",
        "archive": "provision gen-nvs --archive FILE.tar (same, one file)",
    }
    for job in JOBS:
        rounds = ", ".join(f"{value:.2f}" for value in cpu[job])
        print(f"  {labels[job]:<78} {median[job]:6.2f} s  (rounds: {rounds})")
    for job in ("tree", "archive"):
        per_round = ", ".join(f"{ours / anchor:.2f}" for ours, anchor in zip(cpu[job], cpu["package"], strict=True))
        print(
            f"  ratio {job:<7} / anchor: {median[job] / median['package']:.2f}x "
            f"(per round: {per_round}; goal: at most 0.40x)"
        )
        print(f"  ratio {job:<7} / anchor writing the same files: {median[job] / median['package-files']:.2f}x")
    print(f"peak memory at {args.small} and {args.large} devices (--size 0x3000, output in {where}):")
    for job in ("tree", "archive"):
        for size in (args.small, args.large):
            peak = run_worker("memory", job, size, base)["peak_kib"]
            rss = run_worker("rss", job, size, base)["maxrss_kib"]
            print(
                f"  {job:<7} {size:>7} devices: Python heap peak {peak:7.0f} KiB (tracemalloc), "
                f"max RSS {rss / 1024:.1f} MiB"
            )
    print("where gen-nvs --out spends its time (1,000 devices, cProfile, by own time):")
    for line in run_worker("profile", "tree", 1_000, base)["lines"]:
        print("  " + line)


if __name__ == "__main__":
    main()

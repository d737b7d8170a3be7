"""Benchmark `provision gen-nvs --encrypt`: CPU seconds against the anchor (esp-idf-nvs-partition-gen's
in-process API making the same encrypted images, keys from `secrets`, in the same run), devices per second,
where the time goes, and peak memory at two CSV sizes (it streams: memory should stay flat).

Run: .venv/bin/python bench/gen_nvs_bench.py [--devices 10000] [--small 1000] [--large 100000]
Each measurement runs in its own process so one does not inflate the other's peak; CPU is that process's
user + system time (resource.getrusage, itself and its children).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import secrets
import string
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

from provision.credentials import Device

ALPHABET = string.ascii_letters + string.digits


def write_csv(path: Path, devices: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("ProductKey,DeviceName,DeviceSecret,Region\r\n")
        for index in range(devices):
            secret = "".join(secrets.choice(ALPHABET) for _ in range(32))
            out.write(f"a1BenchPK01,bench-{index:06d},{secret},cn-shanghai\r\n")


def measure_time(devices: int, base: str | None) -> dict[str, float]:
    from provision.credentials import check_devices, iter_devices
    from provision.gen_nvs import build_partition, write_partitions

    with tempfile.TemporaryDirectory(dir=base) as work:
        csv_path = Path(work) / "devices.csv"
        write_csv(csv_path, devices)
        start = time.perf_counter()
        check_devices(csv_path)
        check_s = time.perf_counter() - start
        start = time.perf_counter()
        for device in iter_devices(csv_path):
            build_partition(device, encryption="xts")
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        write_partitions(csv_path, Path(work) / "out", encryption="xts")
        total_s = time.perf_counter() - start
    return {"devices": devices, "check_s": check_s, "build_in_memory_s": build_s, "total_s": total_s}


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


def measure_cpu(devices: int, base: str | None, which: str) -> dict[str, float]:
    """CPU of one job in a fresh process: `package` (the anchor: the library's API, images in memory) or
    `gen_nvs` (the whole command: validation, images, files and manifest in `base`)."""
    from provision import nvs_format
    from provision.credentials import iter_devices
    from provision.gen_nvs import DEFAULT_SIZE, layout_entries, write_partitions

    with tempfile.TemporaryDirectory(dir=base) as work:
        csv_path = Path(work) / "devices.csv"
        write_csv(csv_path, devices)
        if which == "package":
            rows = list(iter_devices(csv_path))
            start = _cpu_s()
            for device in rows:
                namespace, pairs = layout_entries(device, "aliyun")
                xts_key = secrets.token_bytes(nvs_format.XTS_KEY_SIZE)
                _package_image(namespace, pairs, DEFAULT_SIZE, xts_key)
                nvs_format.nvs_keys_partition(xts_key)
        else:
            start = _cpu_s()
            write_partitions(csv_path, Path(work) / "out", encryption="xts")
        return {"devices": devices, "cpu_s": _cpu_s() - start}


def _build_all(devices: Iterator[Device], build: Callable[..., object]) -> None:
    for device in devices:
        build(device, encryption="xts")


def measure_memory(devices: int) -> dict[str, float]:
    from provision.credentials import check_devices, iter_devices
    from provision.gen_nvs import build_partition, write_partitions

    with tempfile.TemporaryDirectory() as work:
        csv_path = Path(work) / "devices.csv"
        write_csv(csv_path, devices)
        # Warm up: first-use allocations (cipher backends, templates) are not per-device memory.
        _build_all(itertools.islice(iter_devices(csv_path), 1), build_partition)
        peaks = {}
        for label, job in (
            ("check_only", lambda: check_devices(csv_path)),
            ("stream_build_only", lambda: _build_all(iter_devices(csv_path), build_partition)),
            ("gen_nvs", lambda: write_partitions(csv_path, Path(work) / "out", encryption="xts", size=0x3000)),
        ):
            tracemalloc.start()
            job()
            peaks[label] = tracemalloc.get_traced_memory()[1] / 1024
            tracemalloc.stop()
    return {"devices": devices, **peaks}


def measure_rss(devices: int) -> dict[str, float]:
    """Max resident set of a process that only runs gen-nvs (no tracemalloc, whose own tables grow)."""
    from provision.gen_nvs import write_partitions

    with tempfile.TemporaryDirectory() as work:
        csv_path = Path(work) / "devices.csv"
        write_csv(csv_path, devices)
        write_partitions(csv_path, Path(work) / "out", encryption="xts", size=0x3000)
        return {"devices": devices, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def profile_build(devices: int) -> list[str]:
    """Top functions by own time while building images in memory (where the time goes)."""
    import cProfile
    import io
    import pstats

    from provision.credentials import Device
    from provision.gen_nvs import build_partition

    device = Device("a1BenchPK01", "bench-000001", "x" * 32, None, "cn-shanghai", 2)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(devices):
        build_partition(device, encryption="xts")
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(8)
    return [line for line in text.getvalue().splitlines() if line.strip()][-9:]


def run_worker(kind: str, devices: int, base: str | None = None) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--devices", str(devices), *(["--dir", base] if base else [])],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--worker", choices=["time", "memory", "rss", "cpu-package", "cpu-gen_nvs"])
    parser.add_argument("--dir", default=None, help="Where the output goes (default: the temp dir, on disk).")
    args = parser.parse_args()
    if args.worker in ("cpu-package", "cpu-gen_nvs"):
        print(json.dumps(measure_cpu(args.devices, args.dir, args.worker.removeprefix("cpu-"))))
        return
    if args.worker == "time":
        print(json.dumps(measure_time(args.devices, args.dir)))
        return
    if args.worker == "memory":
        print(json.dumps(measure_memory(args.devices)))
        return
    if args.worker == "rss":
        print(json.dumps(measure_rss(args.devices)))
        return

    tmpfs = "/dev/shm" if args.dir is None and Path("/dev/shm").is_dir() else args.dir
    package_cpu = run_worker("cpu-package", args.devices, tmpfs)["cpu_s"]
    ours_cpu = run_worker("cpu-gen_nvs", args.devices, tmpfs)["cpu_s"]
    print(f"CPU, {args.devices} devices, --encrypt, output in {tmpfs or tempfile.gettempdir()}:")
    print(f"  anchor: esp-idf-nvs-partition-gen in-process API, images in memory  {package_cpu:.2f} s")
    print(f"  provision gen-nvs (validation, images, files, manifest)            {ours_cpu:.2f} s")
    print(f"  ratio gen-nvs / anchor: {ours_cpu / package_cpu:.2f}x (goal: at most 0.40x)")
    # The disk run depends on the file system (20,000 files + 10,000 directories); tmpfs shows the CPU cost.
    bases = [(args.dir or tempfile.gettempdir(), "disk")]
    if args.dir is None and Path("/dev/shm").is_dir():
        bases.append(("/dev/shm", "tmpfs"))
    for base, kind in bases:
        timing = run_worker("time", args.devices, base)
        n = timing["devices"]
        print(f"gen-nvs --encrypt, {n:.0f} devices, one process (one core), output in {base} ({kind}):")
        print(f"  total            {timing['total_s']:.2f} s  = {n / timing['total_s']:.0f} devices/s")
        print(f"  CSV check pass   {timing['check_s']:.2f} s")
        print(f"  images in memory {timing['build_in_memory_s']:.2f} s  (nvs_writer + XTS, keys from secrets)")
        rest = timing["total_s"] - timing["check_s"] - timing["build_in_memory_s"]
        print(f"  files, manifest  {rest:.2f} s  (validation pass again, atomic 0600 writes, one sync)")
    print("peak memory (tracemalloc, Python heap) and max RSS of the process:")
    for size in (args.small, args.large):
        memory = run_worker("memory", size)
        memory["maxrss_kib"] = run_worker("rss", size)["maxrss_kib"]
        print(
            f"  {size:>6} devices: gen-nvs {memory['gen_nvs']:.0f} KiB; alone: validation pass (duplicate index) "
            f"{memory['check_only']:.0f} KiB, streaming build {memory['stream_build_only']:.0f} KiB; "
            f"max RSS {memory['maxrss_kib'] / 1024:.1f} MiB"
        )
    print("where the in-memory build spends its time (1,000 devices, cProfile, by own time):")
    for line in profile_build(1_000):
        print("  " + line)


if __name__ == "__main__":
    main()

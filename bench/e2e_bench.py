"""End-to-end figures: the host device (firmware core, no sanitizers) against the local broker.

Prints:
- start to subscribed: process start -> "aliyun: online" (goal < 300 ms), over several runs, with
  TCP_NODELAY on (the broker's setting) and, in alternating runs against a second broker, off: the ratio
  on/off is the anchor of issue 13 item 3;
- reconnect after a broker restart: broker listening again -> "aliyun: online", for a few outage lengths,
  with the backoff ceiling that bounds it;
- attempts during an outage (default 300 s, real time, the firmware's default backoff 2 s .. 300 s):
  counted connect attempts vs the most the backoff policy allows.

    .venv/bin/python bench/e2e_bench.py [--runs 20] [--outage-s 300]   (--outage-s 0: connect figures only)
"""

from __future__ import annotations

import argparse
import atexit
import os
import queue
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from provision.atomic import write_private_file
from provision.cloud.broker import REPO_ROOT, BrokerProcess, BrokerSettings, build_plugin, die_with_parent
from provision.cloud.certs import ensure_certificates
from provision.credentials import Device
from provision.gen_nvs import build_partition

BUILD = REPO_ROOT / "build" / "host-release"
DEVICE = BUILD / "device" / "aliyun_device"
# the firmware's defaults (alink_config_defaults / Kconfig): 2 s base, 300 s cap
BASE_MS, CAP_MS = 2000, 300_000


def build_device() -> Path:
    for command in (
        ["cmake", "-S", str(REPO_ROOT / "firmware" / "host"), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release",
         "-DALIYUN_SANITIZE=OFF"],
        ["cmake", "--build", str(BUILD), "--target", "aliyun_device", "-j", str(os.cpu_count() or 1)],
    ):  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
    return DEVICE


class RunningDevice:
    """aliyun_device with its stdout read line by line into a queue of (monotonic time, line)."""

    def __init__(self, command: list[str]) -> None:
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=die_with_parent
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return at
        raise TimeoutError(f"no {text!r} within {timeout_s} s")

    def drain(self) -> list[tuple[float, str]]:
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def policy_max_attempts(outage_s: float, base_ms: int, cap_ms: int) -> int:
    """Most attempts the policy allows in an outage: every delay at its minimum (half its ceiling)."""
    attempts, elapsed_ms, ceiling = 1, 0.0, base_ms  # the attempt that found the broker gone
    while True:
        elapsed_ms += ceiling / 2
        if elapsed_ms > outage_s * 1000:
            return attempts
        attempts += 1
        ceiling = min(cap_ms, ceiling * 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--outage-s", type=float, default=300.0)
    args = parser.parse_args()

    device_bin = build_device()
    plugin = build_plugin()
    work = Path(tempfile.mkdtemp(prefix="e2e-bench-"))
    # It holds the plaintext NVS image and its keys: gone on every way out (an error, Ctrl-C, the end).
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    dut = Device("a1BenchPK00", "bench-lamp-01", secrets.token_hex(16), None, None, 0)
    partitions = build_partition(dut, encryption="xts")
    assert partitions.nvs_keys is not None
    write_private_file(work / "nvs.bin", partitions.nvs)
    write_private_file(work / "nvs_keys.bin", partitions.nvs_keys)
    certs = ensure_certificates(work / "certs")
    settings = BrokerSettings(devices=(dut,), certs=certs, port=0, plugin=plugin)
    broker = BrokerProcess(settings, log_to=work / "mosquitto.log")
    broker.start()
    nagle = BrokerProcess(replace(settings, tcp_nodelay=False), log_to=work / "mosquitto-nagle.log")
    nagle.start()

    def command(*extra: str, port: int | None = None) -> list[str]:
        return [str(device_bin), "--nvs", str(work / "nvs.bin"), "--nvs-keys", str(work / "nvs_keys.bin"),
                "--endpoint", "127.0.0.1", "--port", str(port or broker.port), "--ca", str(certs.ca_cert),
                *extra]  # fmt: skip

    try:
        times_ms: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.runs):
            for nodelay, target in ((True, broker), (False, nagle)):  # alternating: drift hits both alike
                device = RunningDevice(command(port=target.port))
                times_ms[nodelay].append((device.wait_for("aliyun: online", 10) - device.started) * 1000)
                device.stop()
        nagle.stop()
        for nodelay in (True, False):
            runs = sorted(times_ms[nodelay])
            p90 = runs[max(0, int(len(runs) * 0.9) - 1)]
            print(f"start to subscribed, TCP_NODELAY {'on ' if nodelay else 'off'} ({args.runs} runs): "
                  f"median {statistics.median(runs):.1f} ms, p90 {p90:.1f} ms, max {runs[-1]:.1f} ms "
                  f"(goal < 300 ms)")  # fmt: skip
        ratio = statistics.median(times_ms[True]) / statistics.median(times_ms[False])
        print(f"start to subscribed: TCP_NODELAY on / off = {ratio:.2f}x (medians, same run)")
        if args.outage_s <= 0:
            return 0

        for outage_s in (1.0, 5.0, 20.0):
            device = RunningDevice(command())
            device.wait_for("aliyun: online", 10)
            broker.stop()
            device.wait_for("aliyun: mqtt disconnected", 10)
            time.sleep(outage_s)
            delays = [int(line.rsplit(" ", 2)[1]) for _, line in device.drain() if "reconnecting in" in line]
            broker.start()
            back = time.monotonic()
            online = device.wait_for("aliyun: online", CAP_MS / 1000 + 10)
            bound_s = max(delays) / 1000 if delays else 0.0
            # bound: the pending delay, plus one 100 ms tick of the host shell and one TLS connect
            print(f"reconnect after a {outage_s:.0f} s outage: {online - back:.2f} s after the broker was back "
                  f"(bound: pending {bound_s:.2f} s + a tick + a connect; delays so far {delays} ms)")  # fmt: skip
            device.stop()

        device = RunningDevice(command())
        device.wait_for("aliyun: online", 10)
        broker.stop()
        started = time.monotonic()
        time.sleep(args.outage_s)
        lines = device.drain()
        attempts = sum(1 for at, line in lines if "aliyun: connecting to" in line and at >= started)
        device.stop()
        allowed = policy_max_attempts(args.outage_s, BASE_MS, CAP_MS)
        print(f"attempts during a {args.outage_s:.0f} s outage: {attempts} "
              f"(backoff {BASE_MS} ms .. {CAP_MS} ms allows at most {allowed})")  # fmt: skip
        return 0 if attempts <= allowed else 1
    finally:
        broker.stop()
        nagle.stop()


if __name__ == "__main__":
    sys.exit(main())

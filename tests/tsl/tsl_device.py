"""The host device built with the every-type TSL, a running `provision broker`, and line readers for both
(tests/tsl/test_console_e2e.py). Every process started here is stopped by its fixture's finalizer."""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.cloud.broker import REPO_ROOT, die_with_parent
from provision.cloud.endpoint import CONSOLE_FILE
from provision.credentials import Device

EVERY_TYPE_TSL = REPO_ROOT / "tests" / "tsl" / "every_type.json"
# Its own build tree, and only the device target: the suite's build/host stays the example product's.
BUILD = REPO_ROOT / "build" / "host-every-type"
PRODUCT_KEY = "a1EveryType"
DEVICE_NAME = "every-type-0001"


def build_device() -> Path:
    """aliyun_device over the every-type TSL (rendered into the build tree by the CMake option)."""
    for command in (
        ["cmake", "-S", str(REPO_ROOT / "firmware" / "host"), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Debug",
         f"-DALIYUN_THING_MODEL={EVERY_TYPE_TSL}"],
        ["cmake", "--build", str(BUILD), "--target", "aliyun_device", "-j", str(os.cpu_count() or 1)],
    ):  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return BUILD / "device" / "aliyun_device"


class Lines:
    """The lines a process writes to its stdout, read on a thread, so a test can wait for one."""

    def __init__(self, stream: Any) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, match: Callable[[str], bool], timeout_s: float = 10.0) -> str:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if match(line):
                return line
        raise AssertionError(f"no matching line within {timeout_s} s; last lines: {self.seen[-15:]}")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Platform:
    """A `provision broker` subprocess and the `provision cloud` console commands against it."""

    process: subprocess.Popen[str]
    cert_dir: Path
    port: int
    device: Device
    output: Path
    watchers: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.device.product_key}/{self.device.device_name}"

    def cloud(self, *args: str) -> dict[str, Any]:
        """One console command with --json; its printed object."""
        command = [sys.executable, "-m", "provision.cli", "cloud", "--cert-dir", str(self.cert_dir), *args, "--json"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    def watch(self) -> Lines:
        """`provision cloud watch --device` as a process whose JSON lines a test waits for."""
        command = [sys.executable, "-m", "provision.cli", "cloud", "--cert-dir", str(self.cert_dir), "watch",
                   "--device", self.ref, "--json"]  # fmt: skip
        watcher = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        self.watchers.append(watcher)
        return Lines(watcher.stdout)

    def watch_listening(self, timeout_s: float = 20.0) -> Lines:
        """A watch that has subscribed: probes on one of the device's user topics until it prints one."""
        from provision.cloud.console import console_session

        watch = self.watch()
        probe = f"/{self.device.product_key}/{self.device.device_name}/user/watch-probe"
        deadline = time.monotonic() + timeout_s
        with console_session(self.cert_dir) as session:
            while True:
                session.publish(probe, "{}")
                try:
                    watch.wait_for(lambda line: json.loads(line)["topic"] == probe, 0.5)
                    return watch
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise

    def stop(self) -> None:
        for watcher in self.watchers:
            stop(watcher)
        stop(self.process)


def start_platform(work: Path, plugin: Path) -> Platform:
    device = Device(PRODUCT_KEY, DEVICE_NAME, secrets.token_hex(16), None, None, 0)
    csv = work / "devices.csv"
    csv.write_text(f"ProductKey,DeviceName,DeviceSecret\n{PRODUCT_KEY},{DEVICE_NAME},{device.device_secret}\n")
    cert_dir = work / "certs"
    port = _free_port()
    output = work / "broker.out"
    with open(output, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "provision.cli", "broker", "--csv", str(csv), "--cert-dir", str(cert_dir),
             "--port", str(port), "--plugin", str(plugin)],
            stdout=out, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=die_with_parent,
        )  # fmt: skip
    platform = Platform(process, cert_dir, port, device, output)
    deadline = time.monotonic() + 30
    while not (cert_dir / CONSOLE_FILE).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            platform.stop()
            raise AssertionError(output.read_text())
        time.sleep(0.05)
    return platform


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

"""The clients tests/interop drives: Alibaba's Python SDK in its own venv (run_linkkit) and mqtt.js (NodeDevice).

A module of its own, not conftest, so test files import it by a name no other test directory uses.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.cloud.certs import BrokerCertificates
from provision.cloud.platform import PlatformService
from provision.credentials import Device

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Platform:
    host: str
    port: int
    cert_dir: Path  # where console.json is: the `provision cloud` library functions take it
    certs: BrokerCertificates
    service: PlatformService
    devices: dict[str, Device]


def run_linkkit(tools: Path, platform: Platform, device_name: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run linkkit_device.py in the SDK's venv to the end; returns its events."""
    device = platform.devices[device_name]
    config = {
        "host": platform.host,
        "port": platform.port,
        "ca_file": str(platform.certs.ca_cert),
        "product_key": device.product_key,
        "device_name": device.device_name,
        "device_secret": device.device_secret,
        "steps": steps,
    }
    done = subprocess.run(
        [str(tools / "linkkit-venv" / "bin" / "python"), str(HERE / "linkkit_device.py")],
        input=json.dumps(config) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stderr[-2000:]
    return events


class NodeDevice:
    """One mqtt.js client in a node process; commands on its stdin, events read from its stdout."""

    def __init__(self, tools: Path, config: dict[str, Any]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._process = subprocess.Popen(
            [shutil.which("node") or "node", str(HERE / "mqttjs_device.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "INTEROP_NODE_DIR": str(tools / "node")},
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.send(config)

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))

    def send(self, command: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0) -> dict[str, Any]:
        """The first event (since the last match) that `wanted` accepts; AssertionError with what came instead."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"no such event within {timeout_s} s; saw {self.seen[-5:]}") from None
            self.seen.append(event)
            if wanted(event):
                return event

    def kill(self) -> None:
        """SIGKILL the node process: the connection drops without a DISCONNECT, as when a device loses power."""
        self._process.kill()
        self._process.wait()

    def close(self) -> None:
        if self._process.poll() is None:
            self.send({"do": "end"})
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

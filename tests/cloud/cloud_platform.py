"""tests/cloud helpers: a running `provision broker` subprocess and clients playing devices."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from provision.credentials import Device
from provision.device_client import DeviceClient, connect_device

PRODUCT_KEY = "a1CloudTst0"
DEVICE_NAMES = ("lamp-0001", "lamp-0002")


@dataclass
class RunningBroker:
    process: subprocess.Popen[str]
    cert_dir: Path
    port: int
    devices: tuple[Device, ...]
    output: Path

    def device(self, index: int = 0) -> DeviceClient:
        client, outcome = connect_device(
            self.devices[index], host="127.0.0.1", port=self.port, ca_file=self.cert_dir / "ca.pem"
        )
        assert outcome.accepted, outcome.reason
        return client

    def cloud(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "provision.cli", "cloud", "--cert-dir", str(self.cert_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output.read_text()

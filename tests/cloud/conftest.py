"""A real `provision broker` (subprocess, with its platform service) and paho clients playing devices.

Every broker started here is stopped (SIGTERM, then SIGKILL) by the fixture's finalizer.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_platform import DEVICE_NAMES, PRODUCT_KEY, RunningBroker

from provision.cloud.broker import REPO_ROOT, build_plugin, die_with_parent
from provision.cloud.endpoint import CONSOLE_FILE
from provision.credentials import load_devices


@pytest.fixture(scope="session")
def broker_plugin() -> Path:
    return build_plugin()


@pytest.fixture
def running_broker(tmp_path: Path, broker_plugin: Path) -> Iterator[RunningBroker]:
    csv = tmp_path / "devices.csv"
    rows = [f"{PRODUCT_KEY},{name},{secrets.token_hex(16)}" for name in DEVICE_NAMES]
    csv.write_text("ProductKey,DeviceName,DeviceSecret\n" + "\n".join(rows) + "\n")
    cert_dir = tmp_path / "certs"
    port = _free_port()
    output = tmp_path / "broker.out"
    with open(output, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "provision.cli", "broker", "--csv", str(csv), "--cert-dir", str(cert_dir),
             "--port", str(port), "--plugin", str(broker_plugin)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=die_with_parent,
        )  # fmt: skip
    running = RunningBroker(process, cert_dir, port, tuple(load_devices(csv)), output)
    deadline = time.monotonic() + 30
    while not (cert_dir / CONSOLE_FILE).exists():
        assert process.poll() is None and time.monotonic() < deadline, output.read_text()
        time.sleep(0.05)
    yield running
    running.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

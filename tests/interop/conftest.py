"""Fixtures that run Alibaba's own clients against `provision broker`: aliyun-iot-linkkit (Python SDK, own venv)
and mqtt.js (npm), both built by prepare.sh under build/interop, and one broker with its platform service for
the session (started as `provision broker` does: PlatformRun, BrokerProcess, then the service).
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from interop_clients import HERE, NodeDevice, Platform

from provision.cloud.broker import BrokerProcess, BrokerSettings, build_plugin
from provision.cloud.certs import ensure_certificates
from provision.cloud.platform_run import PlatformRun
from provision.credentials import load_devices

ROOT = HERE.parents[1]
TOOLS = ROOT / "build" / "interop"
PRODUCT_KEY = "a1InteropT1"
DEVICE_NAMES = ("sdk-py-0001", "sdk-js-0001", "sdk-js-0002")


@pytest.fixture(scope="session")
def interop_tools() -> Path:
    """build/interop with linkkit-venv and node/node_modules (a no-op once scripts/setup has made them)."""
    subprocess.run([str(HERE / "prepare.sh")], check=True, timeout=600)
    return TOOLS


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    csv = tmp_path_factory.mktemp("interop-devices") / "devices.csv"
    rows = [f"{PRODUCT_KEY},{name},{secrets.token_hex(16)}" for name in DEVICE_NAMES]
    csv.write_text("ProductKey,DeviceName,DeviceSecret\n" + "\n".join(rows) + "\n")
    devices = tuple(load_devices(csv))
    cert_dir = tmp_path_factory.mktemp("interop-certs")
    certs = ensure_certificates(cert_dir)
    run = PlatformRun(certs, cert_dir)
    settings = BrokerSettings(
        devices=devices,
        certs=certs,
        host="127.0.0.1",
        port=0,
        tcp_port=None,
        max_skew_s=0,
        routes=(),
        plugin=build_plugin(),
        write_console_file=False,  # the platform run writes it once its service answers
    )
    broker = BrokerProcess(settings, log_to=cert_dir / "mosquitto.log")
    try:
        broker.start()
        run.started(broker.console_endpoint, broker.peers)
        assert run.service is not None
        yield Platform("127.0.0.1", broker.port, cert_dir, certs, run.service, {d.device_name: d for d in devices})
    finally:
        run.stop()
        broker.stop()


@pytest.fixture
def node_device(interop_tools: Path, platform: Platform) -> Iterator[Callable[..., NodeDevice]]:
    """Start mqtt.js clients: node_device(options) with mqtt.connect options (clientId, username, password, ...)."""
    started: list[NodeDevice] = []

    def start(options: dict[str, Any]) -> NodeDevice:
        config = {
            "url": f"mqtts://{platform.host}:{platform.port}",
            "ca_file": str(platform.certs.ca_cert),
            "options": options,
        }
        device = NodeDevice(interop_tools, config)
        started.append(device)
        return device

    yield start
    for device in started:
        device.close()

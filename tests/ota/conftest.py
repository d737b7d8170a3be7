"""End-to-end OTA on the host device through the local platform: the broker (our plugin) forwards the
console's upgrade message to the device's /ota/device/upgrade topic and the device's inform and progress
posts back to the console; an HTTPS server with the broker's certificate serves the image. Every process
started here is stopped by the fixture that started it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ota_rig import CONSOLE, DUT, HOST_BUILD, HOST_DEVICE, OtaRig, routes
from ota_server import OtaFileServer

from provision.atomic import write_private_file
from provision.cloud.broker import REPO_ROOT, BrokerProcess, BrokerSettings, build_plugin
from provision.cloud.certs import BrokerCertificates, ensure_certificates
from provision.gen_nvs import build_partition


@pytest.fixture(scope="session")
def host_device() -> Path:
    for command in (
        ["cmake", "-S", str(REPO_ROOT / "firmware" / "host"), "-B", str(HOST_BUILD), "-DCMAKE_BUILD_TYPE=Debug"],
        ["cmake", "--build", str(HOST_BUILD), "--target", "aliyun_device", "-j", str(os.cpu_count() or 1)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return HOST_DEVICE


@pytest.fixture(scope="session")
def session_certs(tmp_path_factory) -> BrokerCertificates:
    return ensure_certificates(tmp_path_factory.mktemp("ota-certs"))


@pytest.fixture
def rig(host_device: Path, session_certs: BrokerCertificates, tmp_path: Path) -> Iterator[OtaRig]:
    partitions = build_partition(DUT, encryption="xts")
    assert partitions.nvs_keys is not None
    write_private_file(tmp_path / "nvs.bin", partitions.nvs)
    write_private_file(tmp_path / "nvs_keys.bin", partitions.nvs_keys)
    settings = BrokerSettings(devices=(DUT, CONSOLE), certs=session_certs, host="127.0.0.1", port=0,
                              routes=routes(), plugin=build_plugin())  # fmt: skip
    broker = BrokerProcess(settings, log_to=tmp_path / "mosquitto.log")
    broker.start()
    server = OtaFileServer(session_certs.server_cert, session_certs.server_key)
    server.start()
    rig = OtaRig(broker, session_certs, server, host_device.read_bytes(), tmp_path, tmp_path / "nvs.bin",
                 tmp_path / "nvs_keys.bin", [], [])  # fmt: skip
    try:
        yield rig
    finally:
        for device in rig.devices:
            device.stop()
        for client in rig.consoles:
            client.close()
        server.stop()
        broker.stop()

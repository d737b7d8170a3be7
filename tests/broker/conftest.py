"""Fixtures for the broker's own rules: a fresh device CSV, the test CA, and brokers on free loopback ports.

Every broker a test starts is stopped by the fixture's finalizer (no orphan mosquitto).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provision.cloud.broker import BrokerProcess, BrokerSettings, Route, build_plugin
from provision.cloud.certs import BrokerCertificates, ensure_certificates
from provision.credentials import Device, load_devices
from provision.device_client import DeviceClient, connect_device

PRODUCT_KEY = "a1BrokerTst"
DEVICE_NAMES = ("lamp-0001", "lamp-0002", "lamp-0003")


@pytest.fixture(scope="session")
def broker_plugin() -> Path:
    return build_plugin()


@pytest.fixture(scope="session")
def broker_certs(tmp_path_factory: pytest.TempPathFactory) -> BrokerCertificates:
    return ensure_certificates(tmp_path_factory.mktemp("broker-certs"))


@pytest.fixture(scope="session")
def devices_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("devices") / "devices.csv"
    rows = [f"{PRODUCT_KEY},{name},{secrets.token_hex(16)}" for name in DEVICE_NAMES]
    path.write_text("ProductKey,DeviceName,DeviceSecret\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def devices(devices_csv: Path) -> tuple[Device, ...]:
    return tuple(load_devices(devices_csv))


StartBroker = Callable[..., BrokerProcess]


@pytest.fixture
def start_broker(
    broker_plugin: Path, broker_certs: BrokerCertificates, devices: tuple[Device, ...], tmp_path: Path
) -> Iterator[StartBroker]:
    """Start a broker on free loopback ports; keyword arguments override BrokerSettings fields."""
    started: list[BrokerProcess] = []

    def start(*, allow_tcp: bool = False, max_skew_s: int = 0, routes: tuple[Route, ...] = ()) -> BrokerProcess:
        settings = BrokerSettings(
            devices=devices,
            certs=broker_certs,
            host="127.0.0.1",
            port=0,
            tcp_port=0 if allow_tcp else None,
            max_skew_s=max_skew_s,
            routes=routes,
            plugin=broker_plugin,
        )
        broker = BrokerProcess(settings, log_to=tmp_path / f"mosquitto-{len(started)}.log")
        started.append(broker)
        broker.start()
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def broker(start_broker: StartBroker) -> BrokerProcess:
    return start_broker()


@pytest.fixture
def connect(broker_certs: BrokerCertificates) -> Iterator[Callable[..., DeviceClient]]:
    """Connect a device to a broker over TLS, asserting it is accepted; every client is closed at the end."""
    opened: list[DeviceClient] = []

    def _connect(device: Device, broker: BrokerProcess, **kwargs: object) -> DeviceClient:
        client, outcome = connect_device(
            device, host="127.0.0.1", port=broker.port, ca_file=broker_certs.ca_cert, **kwargs
        )
        opened.append(client)
        assert outcome.accepted, outcome.reason
        return client

    yield _connect
    for client in opened:
        client.close()

"""The end-to-end suite's fixtures: backend, devices, certificates, the local broker, the console client and
the device under test. Every process started here (broker, host device) is stopped by a finalizer.

Roles, as on Alibaba Cloud IoT Platform:
- the DUT: a device whose triple is in its NVS image;
- the platform: the broker's platform service (post_reply, NTP, shadow, OTA) and `platform_cert_dir`,
  where the console commands (provision.cloud.console) find it;
- the console device: a second device connection (paho-mqtt, MQTT.fx's role), kept for the one case of
  the platform's rule-engine forwarding (--route).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import e2e_qemu
import pytest
from e2e_backend import Backend, select_backend
from e2e_lines import check_log_for_restarts
from e2e_roles import SuiteDevices, console_topics, suite_routes

from provision.atomic import write_private_file
from provision.cloud.broker import REPO_ROOT, BrokerProcess, BrokerSettings, build_plugin, die_with_parent
from provision.cloud.certs import BrokerCertificates, ensure_certificates
from provision.cloud.platform_run import PlatformRun
from provision.credentials import Device, load_devices
from provision.device_client import DeviceClient, connect_device
from provision.gen_nvs import build_partition

PRODUCT_KEY = "a1E2eSuite0"
DUT_NAME = "e2e-lamp-0001"
CONSOLE_NAME = "e2e-console-01"
HOST_BUILD = REPO_ROOT / "build" / "host"
HOST_DEVICE = HOST_BUILD / "device" / "aliyun_device"

# QEMU runs: the guest's time source, the suite's SNTP responder (fixtures live in e2e_qemu)
sntp_responder = e2e_qemu.sntp_responder
served_clock_skew = e2e_qemu.served_clock_skew


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aliyun e2e", "end-to-end suite (tests/embedded)")
    group.addoption("--broker-host", help="board runs: this machine's LAN address, as the board reaches it")
    group.addoption("--broker-cert-dir", default="out/broker", help="qemu/board runs: the CA the firmware embeds")
    group.addoption("--e2e-csv", help="qemu/board runs: the CSV whose device was flashed (gen-nvs)")
    group.addoption("--e2e-device", help="qemu/board runs: the DeviceName flashed on the DUT")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e_broker(**settings): broker settings for one test (see conftest)")
    e2e_qemu.register_markers(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e_qemu.deselect_qemu_only(config, items)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    e2e_qemu.report_deselected(terminalreporter, config)


@pytest.fixture(autouse=True)
def no_unexpected_restart(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every case that has a DUT fails when its log shows a restart (e2e_lines), also one after its last
    expectation. Reads the DUT's log file (pytest-embedded's `_pexpect_logfile`, still there when the `dut`
    fixture is gone) after the case: no case is made to boot a DUT."""
    yield
    funcargs = getattr(request.node, "funcargs", {})
    if "dut" in funcargs:
        check_log_for_restarts(funcargs.get("_pexpect_logfile"))


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    return select_backend(
        request.config.getoption("embedded_services", default=None),
        request.config.getoption("build_dir", default=None),
        request.config.getoption("broker_host", default=None),
    )


def _generated(name: str) -> Device:
    return Device(PRODUCT_KEY, name, secrets.token_hex(16), None, None, 0)


@pytest.fixture(scope="session")
def suite_devices(backend: Backend, request: pytest.FixtureRequest) -> SuiteDevices:
    if backend.is_host:
        dut = _generated(DUT_NAME)
        return SuiteDevices(dut, Device(PRODUCT_KEY, CONSOLE_NAME, secrets.token_hex(16), None, None, 0), ())
    csv_path = request.config.getoption("e2e_csv", default=None)
    name = request.config.getoption("e2e_device", default=None)
    if not csv_path or not name:
        raise pytest.UsageError("qemu/board runs need --e2e-csv and --e2e-device (the triple flashed on the DUT)")
    flashed = {d.device_name: d for d in load_devices(csv_path)}
    dut = flashed[name]
    console = Device(dut.product_key, CONSOLE_NAME, secrets.token_hex(16), None, None, 0)
    return SuiteDevices(dut, console, tuple(d for d in flashed.values() if d is not dut))


@pytest.fixture(scope="session")
def suite_certs(backend: Backend, request: pytest.FixtureRequest, tmp_path_factory) -> BrokerCertificates:
    if backend.is_host:
        return ensure_certificates(tmp_path_factory.mktemp("e2e-certs"))
    # The firmware embeds this CA (render-ca --pem DIR/ca.pem), so it must persist between build and run.
    extra = [backend.broker_address] if backend.name == "board" else []
    return ensure_certificates(Path(request.config.getoption("broker_cert_dir")), extra)


@pytest.fixture(scope="session")
def broker_plugin() -> Path:
    return build_plugin()


@pytest.fixture(scope="session")
def host_device_binary(backend: Backend) -> Path | None:
    """The host build of the device (scripts/test builds it; a lone pytest run builds it here)."""
    if not backend.is_host:
        return None
    for command in (
        ["cmake", "-S", str(REPO_ROOT / "firmware" / "host"), "-B", str(HOST_BUILD), "-DCMAKE_BUILD_TYPE=Debug"],
        ["cmake", "--build", str(HOST_BUILD), "--target", "aliyun_device", "-j", str(os.cpu_count() or 1)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return HOST_DEVICE


@dataclasses.dataclass(frozen=True)
class DutImage:
    nvs: Path
    keys_args: tuple[str, ...]


@pytest.fixture(scope="session")
def dut_image(backend: Backend, suite_devices: SuiteDevices, tmp_path_factory) -> DutImage | None:
    """The DUT's NVS image (flash-encryption scheme) written by provision's own gen_nvs code."""
    if not backend.is_host:
        return None
    out = tmp_path_factory.mktemp("dut-nvs")
    partitions = build_partition(suite_devices.dut, encryption="xts")
    assert partitions.nvs_keys is not None
    write_private_file(out / "nvs.bin", partitions.nvs)
    write_private_file(out / "nvs_keys.bin", partitions.nvs_keys)
    return DutImage(out / "nvs.bin", ("--nvs-keys", str(out / "nvs_keys.bin")))


@pytest.fixture
def broker(
    request: pytest.FixtureRequest,
    backend: Backend,
    suite_devices: SuiteDevices,
    suite_certs: BrokerCertificates,
    broker_plugin: Path,
    platform_cert_dir: Path,
    tmp_path: Path,
) -> Iterator[BrokerProcess]:
    """The local broker for one test. `@pytest.mark.e2e_broker(...)` changes it:
    dut_secret="..." (the broker expects another secret), certs=<callable(tmp_path, suite_certs)>, max_skew_s=N.
    """
    marker = request.node.get_closest_marker("e2e_broker")
    options = dict(marker.kwargs) if marker else {}
    devices = list(suite_devices.all)
    if "dut_secret" in options:
        devices[0] = dataclasses.replace(suite_devices.dut, device_secret=options["dut_secret"])
    certs = options["certs"](tmp_path, suite_certs) if "certs" in options else suite_certs
    platform = PlatformRun(suite_certs, platform_cert_dir, backend.broker_listen, backend.broker_address)
    settings = BrokerSettings(
        devices=tuple(devices),
        certs=certs,
        host=backend.broker_listen,
        port=backend.broker_port,
        max_skew_s=int(options.get("max_skew_s", 0)),
        routes=suite_routes(suite_devices),
        plugin=broker_plugin,
        write_console_file=False,  # the platform run writes it into platform_cert_dir
    )
    process = BrokerProcess(settings, log_to=tmp_path / "mosquitto.log")
    process.start()
    try:
        # a bad server certificate refuses the console's TLS login too: those cases test only the refusal
        if "certs" not in options:
            platform.started(process.console_endpoint, process.peers)
        yield process
    finally:
        platform.stop()
        process.stop()


@pytest.fixture
def platform_cert_dir(tmp_path: Path) -> Path:
    """Where the test's platform records its console endpoint (console.json): `--cert-dir` of `provision cloud`."""
    path = tmp_path / "platform"
    path.mkdir()
    return path


@pytest.fixture
def console(
    broker: BrokerProcess, suite_devices: SuiteDevices, suite_certs: BrokerCertificates
) -> Iterator[DeviceClient]:
    """The second device (MQTT.fx's role), subscribed to what the broker's --route rules forward from the DUT."""
    device = suite_devices.console
    client, outcome = connect_device(device, host="127.0.0.1", port=broker.port, ca_file=suite_certs.ca_cert)
    try:
        if outcome.accepted:
            assert client.subscribe(console_topics(suite_devices).inbox)
        yield client
    finally:
        client.close()


class HostDevice:
    """The host build as a process whose stdout feeds pytest-embedded's `dut` (the serial console's role)."""

    def __init__(self, process: object) -> None:
        self.process = process

    def stop(self) -> int | None:
        process = self.process
        if process.poll() is None:  # type: ignore[attr-defined]
            process.terminate()  # type: ignore[attr-defined]
            try:
                process.wait(timeout=10)  # type: ignore[attr-defined]
            except subprocess.TimeoutExpired:
                process.kill()  # type: ignore[attr-defined]
                process.wait()  # type: ignore[attr-defined]
        return process.returncode  # type: ignore[attr-defined]


StartDevice = Callable[..., HostDevice | None]


@pytest.fixture
def start_device(
    backend: Backend,
    broker: BrokerProcess,
    dut,  # pytest-embedded's DUT; on a board or in QEMU it has already flashed and booted
    msg_queue,
    _meta,
    host_device_binary: Path | None,
    dut_image: DutImage | None,
    suite_certs: BrokerCertificates,
    served_clock_skew: float,
) -> Iterator[StartDevice]:
    """Start the device under test. On the host: one aliyun_device process per call; elsewhere: nothing
    to start (pytest-embedded booted it), and per-run options the backend cannot apply fail loudly."""
    started: list[HostDevice] = []

    def start(*, clock_skew_s: int = 0, nvs: Path | None = None, keys_args: tuple[str, ...] | None = None):
        if not backend.is_host:
            # a skew can only be the one the SNTP responder served while the guest booted (e2e_clock_skew)
            if clock_skew_s != served_clock_skew or nvs is not None or keys_args is not None:
                pytest.skip(f"{backend.name} backend: this case changes the device's clock or image per test")
            return None
        from pytest_embedded.log import DuplicateStdoutPopen

        assert host_device_binary is not None and dut_image is not None
        command = [
            str(host_device_binary),
            "--nvs", str(nvs or dut_image.nvs),
            *(dut_image.keys_args if keys_args is None else keys_args),
            "--endpoint", backend.broker_address,
            "--port", str(broker.port),
            "--ca", str(suite_certs.ca_cert),
            "--backoff-base-ms", str(backend.backoff_base_ms),
            "--backoff-cap-ms", str(backend.backoff_cap_ms),
            "--post-period-s", str(backend.post_period_s),
            "--clock-skew", str(clock_skew_s),
        ]  # fmt: skip
        device = HostDevice(DuplicateStdoutPopen(msg_queue, command, meta=_meta, preexec_fn=die_with_parent))
        started.append(device)
        return device

    yield start
    for device in started:
        device.stop()
        device.process.close()  # type: ignore[attr-defined]

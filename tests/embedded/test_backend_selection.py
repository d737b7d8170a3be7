"""The suite learns the broker address, the time source and its patience from the backend it runs on.

Unit tests of the selection for every backend, then the selection checked for real: this run's own backend
(the host build in CI) against the local broker, and, on QEMU only, the guest's time from the suite's
SNTP responder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from e2e_backend import FIRMWARE_PORT, HOST_BACKOFF_BASE_MS, HOST_BACKOFF_CAP_MS, SUITE_POST_PERIOD_S, select_backend
from e2e_lines import expect_line

QEMU_GUEST_HOST_ADDRESS = "10.0.2.2"  # QEMU user-mode networking: the host's loopback, as the guest sees it
ONLINE_S = 10


def _build_dir(tmp_path: Path, base_ms: int = 2000, cap_ms: int = 300000, post_period_s: int = 2) -> str:
    (tmp_path / "config").mkdir(parents=True)
    sdkconfig = {
        "ALIYUN_BACKOFF_BASE_MS": base_ms,
        "ALIYUN_BACKOFF_CAP_MS": cap_ms,
        "ALIYUN_POST_PERIOD_S": post_period_s,
        "IDF_TARGET": "esp32",
    }
    (tmp_path / "config" / "sdkconfig.json").write_text(json.dumps(sdkconfig))
    return str(tmp_path)


@pytest.mark.parametrize("services", [None, "", "base"])
def test_no_device_services_is_the_host_build_on_loopback_with_the_host_clock(services: str | None) -> None:
    backend = select_backend(services, None, None)
    assert backend.name == "host" and backend.is_host
    assert (backend.broker_listen, backend.broker_address) == ("127.0.0.1", "127.0.0.1")
    assert backend.broker_port == 0  # any free port: parallel runs do not collide
    assert backend.time_source == "host-clock"
    assert backend.timeout(10) == 10


@pytest.mark.parametrize("services", ["idf,qemu", "qemu,idf", "idf|qemu"])
def test_qemu_services_mean_the_guest_reaches_the_host_at_10_0_2_2_and_takes_time_from_the_responder(
    services: str, tmp_path: Path
) -> None:
    backend = select_backend(services, _build_dir(tmp_path, 1500, 60000), None)
    assert backend.name == "qemu" and not backend.is_host
    assert backend.broker_listen == "127.0.0.1"  # QEMU forwards 10.0.2.2 to the host's loopback
    assert backend.broker_address == QEMU_GUEST_HOST_ADDRESS
    assert backend.broker_port == FIRMWARE_PORT == 8883
    assert backend.time_source == "sntp-responder"
    assert backend.timeout(10) > select_backend(None, None, None).timeout(10)
    assert (backend.backoff_base_ms, backend.backoff_cap_ms) == (1500, 60000)  # from the build, not constants


def test_qemu_without_a_build_names_the_missing_sdkconfig_json(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no-build/config/sdkconfig\.json"):
        select_backend("idf,qemu", str(tmp_path / "no-build"), None)


def test_a_board_uses_the_given_lan_address_and_its_own_sntp(tmp_path: Path) -> None:
    backend = select_backend("esp,idf", _build_dir(tmp_path), "192.168.1.20")
    assert backend.name == "board"
    assert backend.broker_address == "192.168.1.20"
    assert backend.broker_port == FIRMWARE_PORT
    assert backend.time_source == "sntp"
    qemu = select_backend("idf,qemu", _build_dir(tmp_path / "qemu"), None)
    assert select_backend(None, None, None).timeout(10) < backend.timeout(10) < qemu.timeout(10)


@pytest.mark.parametrize("services", ["idf,qemu", "esp,idf"])
def test_a_build_without_the_suites_post_period_is_refused(tmp_path: Path, services: str) -> None:
    """The product default (60 s) would make the property-post case wait on luck."""
    with pytest.raises(ValueError, match=r"CONFIG_ALIYUN_POST_PERIOD_S is 60.*sdkconfig\.defaults\.suite"):
        select_backend(services, _build_dir(tmp_path, post_period_s=60), "192.168.1.20")


def test_the_suite_build_config_sets_the_suites_post_period() -> None:
    defaults = (Path(__file__).resolve().parents[2] / "firmware" / "sdkconfig.defaults.suite").read_text()
    assert f"CONFIG_ALIYUN_POST_PERIOD_S={SUITE_POST_PERIOD_S}\n" in defaults


def test_the_suite_build_config_backs_off_as_the_host_build_does() -> None:
    defaults = (Path(__file__).resolve().parents[2] / "firmware" / "sdkconfig.defaults.suite").read_text()
    assert f"CONFIG_ALIYUN_BACKOFF_BASE_MS={HOST_BACKOFF_BASE_MS}\n" in defaults
    assert f"CONFIG_ALIYUN_BACKOFF_CAP_MS={HOST_BACKOFF_CAP_MS}\n" in defaults


def test_a_board_without_broker_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--broker-host"):
        select_backend("esp,idf", _build_dir(tmp_path), None)


def test_this_run_reaches_the_broker_where_its_backend_says(dut, backend, start_device, broker, sntp_responder):
    """In CI: the host build connects to 127.0.0.1 (on the broker's free port, which only the host device can
    be told) with the host clock, and no SNTP responder runs. QEMU: 10.0.2.2:8883 with the responder up.
    A board: --broker-host:8883."""
    start_device()
    expect_line(dut, "aliyun: time synced", timeout=backend.timeout(ONLINE_S))
    address = re.escape(backend.broker_address)
    connecting = rf"aliyun: connecting to {address}:{FIRMWARE_PORT} as \S+".encode()
    expect_line(dut, connecting, regex=True, timeout=backend.timeout(5))
    if backend.is_host:
        expect_line(dut, f"host: mqtt: port {broker.port} instead of {FIRMWARE_PORT} (--port)", timeout=5)
    expect_line(dut, "aliyun: mqtt connected", timeout=backend.timeout(ONLINE_S))
    assert (sntp_responder is not None) == (backend.time_source == "sntp-responder")
    if backend.is_host:
        assert (backend.broker_address, backend.time_source, sntp_responder) == ("127.0.0.1", "host-clock", None)


@pytest.mark.qemu
def test_qemu_guest_takes_its_time_from_the_suites_responder(dut, backend, start_device, sntp_responder):
    start_device()
    expect_line(dut, "aliyun: time synced", timeout=backend.timeout(ONLINE_S))
    assert sntp_responder is not None and sntp_responder.answered >= 1

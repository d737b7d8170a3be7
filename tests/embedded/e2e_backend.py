"""Where the device under test runs, and what follows from it for the suite.

The tests are written once; the backend is chosen by pytest-embedded's own `--embedded-services`:
- host  (no services, or `base`): firmware/host's aliyun_device, a process on this machine. Broker on a
        free loopback port, host clock (`--clock-skew` for the skew case), timeouts x1.
- qemu  (`idf,qemu`): the ESP-IDF build in Espressif's QEMU. The guest reaches the host at 10.0.2.2; the
        firmware connects to port 8883; time comes from the suite's SNTP responder (issue 6). Timeouts x5.
- board (`esp,idf --port /dev/ttyUSB0`): a flashed board on the LAN. `--broker-host` is this machine's LAN
        address (in the server certificate's names); the firmware connects to 8883; SNTP from the Internet.
        Timeouts x2.
Backoff figures and the property-post period for qemu/board come from the build's config/sdkconfig.json, not
from constants here; the period must be the suite's (firmware/sdkconfig.defaults.suite), or the run is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BackendName = Literal["host", "qemu", "board"]
FIRMWARE_PORT = 8883  # securemode 2: the firmware always connects to 8883 (aliyun_auth)


@dataclass(frozen=True)
class Backend:
    name: BackendName
    broker_listen: str  # the address the suite's broker binds
    broker_address: str  # the address the device connects to (a name in the server certificate)
    broker_port: int  # 0: any free port (the host device takes --port)
    time_source: str
    timeout_scale: float
    backoff_base_ms: int
    backoff_cap_ms: int
    post_period_s: int

    def timeout(self, seconds: float) -> float:
        return seconds * self.timeout_scale

    @property
    def is_host(self) -> bool:
        return self.name == "host"


# The host device runs with short backoff figures so the backoff cases finish in seconds.
HOST_BACKOFF_BASE_MS = 200
HOST_BACKOFF_CAP_MS = 1600
# The post period the suite's cases are written for: the host device's --post-period-s, and
# CONFIG_ALIYUN_POST_PERIOD_S in firmware/sdkconfig.defaults.suite for QEMU and board builds.
SUITE_POST_PERIOD_S = 2


def _sdkconfig_figures(build_dir: Path) -> tuple[int, int, int]:
    config = json.loads((build_dir / "config" / "sdkconfig.json").read_text())
    period = int(config["ALIYUN_POST_PERIOD_S"])
    if period != SUITE_POST_PERIOD_S:
        raise ValueError(
            f"{build_dir}: CONFIG_ALIYUN_POST_PERIOD_S is {period}, the suite needs {SUITE_POST_PERIOD_S}: build "
            'with SDKCONFIG_DEFAULTS="...;sdkconfig.defaults.suite" (README: QEMU and real boards)'
        )
    return int(config["ALIYUN_BACKOFF_BASE_MS"]), int(config["ALIYUN_BACKOFF_CAP_MS"]), period


def select_backend(services: str | None, build_dir: str | None, broker_host: str | None) -> Backend:
    """Map pytest-embedded's services (and our --broker-host) to a backend.

    Raises:
        ValueError: a board run without --broker-host, or a build without the suite's post period.
    """
    names = set((services or "base").replace("|", ",").split(","))
    if "qemu" in names:
        base, cap, period = _sdkconfig_figures(Path(build_dir or "build"))
        return Backend("qemu", "127.0.0.1", "10.0.2.2", FIRMWARE_PORT, "sntp-responder", 5.0, base, cap, period)
    if "esp" in names:
        if not broker_host:
            raise ValueError("a board run needs --broker-host <this machine's LAN address>")
        base, cap, period = _sdkconfig_figures(Path(build_dir or "build"))
        return Backend("board", "0.0.0.0", broker_host, FIRMWARE_PORT, "sntp", 2.0, base, cap, period)
    return Backend(
        "host", "127.0.0.1", "127.0.0.1", 0, "host-clock", 1.0, HOST_BACKOFF_BASE_MS, HOST_BACKOFF_CAP_MS,
        SUITE_POST_PERIOD_S,
    )  # fmt: skip

"""What the suite adds for QEMU runs, imported by conftest.py: the guest's time source and the `qemu` marker.

QEMU's user-mode network has no route out, so the guest's SNTP servers (10.0.2.2 in sdkconfig.defaults.qemu)
must be answered on this machine: QEMU hands the guest's 10.0.2.2 traffic to the host's 127.0.0.1, and lwIP's
SNTP client always asks UDP 123 (SNTP_PORT = LWIP_IANA_PORT_SNTP). QEMU runs therefore need root, or
`sysctl net.ipv4.ip_unprivileged_port_start=123`; the responder says so if it cannot bind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_backend import Backend

from provision.cloud.sntp import SntpResponder

GUEST_SNTP_PORT = 123
_QEMU_DESELECTED = pytest.StashKey[int]()


def register_markers(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e_clock_skew(seconds): qemu runs: the SNTP responder serves this skew while the DUT boots"
    )


def deselect_qemu_only(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`qemu`-marked cases need the QEMU backend: elsewhere they are deselected and the summary says why."""
    if "qemu" in (config.getoption("embedded_services", default=None) or ""):
        return
    qemu_only = [item for item in items if item.get_closest_marker("qemu")]
    if qemu_only:
        config.hook.pytest_deselected(items=qemu_only)
        items[:] = [item for item in items if item not in qemu_only]
        config.stash[_QEMU_DESELECTED] = len(qemu_only)


def report_deselected(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    count = config.stash.get(_QEMU_DESELECTED, 0)
    if count:
        terminalreporter.write_line(
            f"tests/embedded: {count} qemu-marked case(s) deselected: they need --embedded-services idf,qemu and "
            "Espressif's QEMU, which this machine does not have (README: QEMU and real boards)"
        )


@pytest.fixture(scope="session", autouse=True)
def sntp_responder(backend: Backend) -> Iterator[SntpResponder | None]:
    """QEMU runs: the guest's only time source, up before any DUT boots (autouse). None elsewhere: the host
    build uses the host clock, a board its configured SNTP servers."""
    if backend.time_source != "sntp-responder":
        yield None
        return
    with SntpResponder(host=backend.broker_listen, port=GUEST_SNTP_PORT) as responder:
        yield responder


@pytest.fixture(autouse=True)
def served_clock_skew(request: pytest.FixtureRequest, sntp_responder: SntpResponder | None) -> float:
    """The skew the responder serves to this test's DUT, from `@pytest.mark.e2e_clock_skew(s)` (default 0).
    Autouse, so it is set before pytest-embedded boots the guest."""
    marker = request.node.get_closest_marker("e2e_clock_skew")
    skew_s = float(marker.args[0]) if marker else 0.0
    if sntp_responder is not None:
        sntp_responder.skew_s = skew_s
    return skew_s if sntp_responder is not None else 0.0

"""Who is who in the end-to-end suite, and the broker's forwarding rules between them.

- the DUT: a device whose triple is in its NVS image;
- the console: a second device connection (paho-mqtt, playing MQTT.fx). It may only use its own topics, so
  the broker's forwarding rules (--route) carry its commands to the DUT and the DUT's posts back.
"""

from __future__ import annotations

import dataclasses

from provision.cloud.broker import Route
from provision.credentials import Device


@dataclasses.dataclass(frozen=True)
class SuiteDevices:
    dut: Device
    console: Device
    others: tuple[Device, ...]

    @property
    def all(self) -> tuple[Device, ...]:
        return (self.dut, self.console, *self.others)


@dataclasses.dataclass(frozen=True)
class ConsoleTopics:
    """The console's own topics the broker forwards to and from the DUT."""

    led: str  # console publishes here -> DUT's /{pk}/{dn}/user/setled
    property_set: str  # console publishes here -> DUT's /sys/.../thing/service/property/set
    inbox: str  # DUT's posts and replies arrive under here (filter)


def console_topics(devices: SuiteDevices) -> ConsoleTopics:
    pk, name = devices.console.product_key, devices.console.device_name
    return ConsoleTopics(f"/{pk}/{name}/user/led", f"/{pk}/{name}/user/property-set", f"/{pk}/{name}/user/inbox/#")


def suite_routes(devices: SuiteDevices) -> tuple[Route, ...]:
    pk, dn = devices.dut.product_key, devices.dut.device_name
    console = f"/{devices.console.product_key}/{devices.console.device_name}/user"
    return (
        Route(f"{console}/led", f"/{pk}/{dn}/user/setled"),
        Route(f"{console}/property-set", f"/sys/{pk}/{dn}/thing/service/property/set"),
        Route(f"/sys/{pk}/{dn}/thing/event/property/post", f"{console}/inbox/post"),
        Route(f"/sys/{pk}/{dn}/thing/service/property/set_reply", f"{console}/inbox/set_reply"),
    )

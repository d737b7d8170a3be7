"""Alibaba's own clients connect to `provision broker` as they connect to the platform (issue 10, Done means)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from interop_clients import NodeDevice, Platform, run_linkkit

from provision.signing import sign


def test_linkkit_connects_with_its_own_client_id(interop_tools: Path, platform: Platform) -> None:
    # The SDK builds `pk&dn|securemode=2,signmethod=hmacsha1,ext=1,_ss=1,lan=Python,_v=1.2.13,timestamp=<s>|`
    # itself from the triple (linkkit.py, __config_mqtt_client_internal); rc 0 means the broker took it.
    events = run_linkkit(interop_tools, platform, "sdk-py-0001", [])
    assert {"event": "connect", "rc": 0} in events, events


def test_mqttjs_connects_with_signed_credentials(node_device: Callable[..., NodeDevice], platform: Platform) -> None:
    device = platform.devices["sdk-js-0001"]
    credentials = sign(device.product_key, device.device_name, device.device_secret)
    client = node_device(
        {"clientId": credentials.client_id, "username": credentials.username, "password": credentials.password}
    )
    assert client.wait_for(lambda e: e["event"] in ("connect", "error", "close")) == {
        "event": "connect",
        "returnCode": 0,
    }

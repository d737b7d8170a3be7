"""The platform's refusals, from mqtt.js, which can ask for what Alibaba's SDKs never send (issue 10, Done means).

Each asks for something Alibaba's MQTT standard does not support (QoS 2, retained messages, a will, a packet
over 256 KB) and checks what an mqtt.js user sees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interop_clients import NodeDevice, Platform

from provision.signing import sign

PAYLOAD_MAX_BYTES = 256 * 1024
DEVICE = "sdk-js-0002"


def credentials(platform: Platform, device_name: str = DEVICE) -> dict[str, Any]:
    device = platform.devices[device_name]
    signed = sign(device.product_key, device.device_name, device.device_secret)
    return {"clientId": signed.client_id, "username": signed.username, "password": signed.password}


def first_outcome(client: NodeDevice, timeout_s: float = 10.0) -> str:
    return client.wait_for(lambda e: e["event"] in ("connect", "error", "close"), timeout_s)["event"]


def user_topic(platform: Platform, leaf: str) -> str:
    return f"/{platform.devices[DEVICE].product_key}/{DEVICE}/user/{leaf}"


def test_a_qos_2_subscribe_is_granted_qos_1(node_device: Callable[..., NodeDevice], platform: Platform) -> None:
    client = node_device(credentials(platform))
    assert first_outcome(client) == "connect"
    client.send({"do": "subscribe", "topic": user_topic(platform, "get"), "qos": 2})
    assert client.wait_for(lambda e: e["event"] == "suback")["granted"] == [1]


def test_a_retained_message_is_not_kept(node_device: Callable[..., NodeDevice], platform: Platform) -> None:
    topic = user_topic(platform, "state")
    publisher = node_device(credentials(platform))
    assert first_outcome(publisher) == "connect"
    publisher.send({"do": "subscribe", "topic": topic, "qos": 1})
    publisher.wait_for(lambda e: e["event"] == "suback")
    publisher.send({"do": "publish", "topic": topic, "payload": "kept?", "qos": 1, "retain": True})
    live = publisher.wait_for(lambda e: e["event"] == "message")
    assert (live["payload"], live["retain"]) == ("kept?", False)
    publisher.close()
    later = node_device(credentials(platform))
    assert first_outcome(later) == "connect"
    later.send({"do": "subscribe", "topic": topic, "qos": 1})
    later.wait_for(lambda e: e["event"] == "suback")
    try:
        replayed = later.wait_for(lambda e: e["event"] == "message", timeout_s=1.0)
    except AssertionError:
        replayed = None
    assert replayed is None, "a retained message was replayed to a later subscriber"


def test_a_publish_over_256_kb_disconnects_the_sender(
    node_device: Callable[..., NodeDevice], platform: Platform
) -> None:
    topic = user_topic(platform, "blob")
    client = node_device(credentials(platform))
    assert first_outcome(client) == "connect"
    client.send({"do": "subscribe", "topic": topic, "qos": 1})
    client.wait_for(lambda e: e["event"] == "suback")
    client.send({"do": "publish", "topic": topic, "payload": "x" * PAYLOAD_MAX_BYTES, "qos": 1})
    assert len(client.wait_for(lambda e: e["event"] == "message")["payload"]) == PAYLOAD_MAX_BYTES
    before = len(client.seen)
    client.send({"do": "publish", "topic": topic, "payload": "x" * (PAYLOAD_MAX_BYTES + 1), "qos": 1})
    client.wait_for(lambda e: e["event"] == "close")
    assert not any(e["event"] == "message" for e in client.seen[before:]), "the oversized message was delivered"


def test_another_devices_client_id_is_refused_for_the_newcomer(
    node_device: Callable[..., NodeDevice], platform: Platform
) -> None:
    def signed(device_name: str) -> dict[str, Any]:
        device = platform.devices[device_name]
        # The same cid and timestamp give both devices the same MQTT client id, the one Mosquitto would hand over.
        one = sign(device.product_key, device.device_name, device.device_secret, client_id="shared-id", timestamp=1)
        return {"clientId": one.client_id, "username": one.username, "password": one.password}

    first = node_device(signed("sdk-js-0001"))
    assert first_outcome(first) == "connect"
    newcomer = node_device(signed("sdk-js-0002"))
    assert first_outcome(newcomer) != "connect"
    try:
        closed = first.wait_for(lambda e: e["event"] == "close", timeout_s=1.0)
    except AssertionError:
        closed = None
    assert closed is None, "the first device lost its connection to the newcomer"


def test_a_will_is_refused_at_connect(node_device: Callable[..., NodeDevice], platform: Platform) -> None:
    # The platform has no will: the broker's connect gate answers CONNACK 5 (not authorized) and closes (#10)
    topic = user_topic(platform, "will")
    will = {"topic": topic, "payload": "gone", "qos": 1, "retain": False}
    client = node_device({**credentials(platform), "will": will})
    refused = client.wait_for(lambda e: e["event"] in ("connect", "error"))
    assert refused["event"] == "error" and refused["code"] == 5, refused
    # the same device without a will connects
    assert first_outcome(node_device(credentials(platform))) == "connect"


def test_a_password_with_a_nul_byte_is_refused(node_device: Callable[..., NodeDevice], platform: Platform) -> None:
    # Mosquitto's plugin API would see only the part before the NUL, the right signature: the gate refuses it
    signed = credentials(platform)
    client = node_device({**signed, "password": signed["password"] + "\u0000garbage"})
    refused = client.wait_for(lambda e: e["event"] in ("connect", "error"))
    assert refused["event"] == "error" and refused["code"] == 4, refused

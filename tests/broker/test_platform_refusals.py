"""What the platform refuses (issue 10 item 3) and the one-way topics it allows (OTA, shadow, broadcast),
checked with real clients against real Mosquitto and the plugin."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time

import paho.mqtt.client as mqtt

from provision.cloud.broker import MAX_PACKET_BYTES, PAYLOAD_MAX_BYTES
from provision.signing import sign


def _paho(device, broker, certs) -> tuple[mqtt.Client, threading.Event, dict]:
    """A bare paho client, for what DeviceClient does not expose (granted QoS, retain flags)."""
    credentials = sign(device.product_key, device.device_name, device.device_secret, secure_mode=2)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=credentials.client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(credentials.username, credentials.password)
    client.tls_set(ca_certs=str(certs.ca_cert), cert_reqs=ssl.CERT_REQUIRED)
    seen: dict = {"granted": None, "messages": []}
    subscribed = threading.Event()

    def on_subscribe(c, userdata, mid, reasons, props):
        seen["granted"] = [int(reason.value) for reason in reasons]
        subscribed.set()

    client.on_subscribe = on_subscribe
    client.on_message = lambda c, u, message: seen["messages"].append(message)
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.loop_start()
    return client, subscribed, seen


def _refusals(broker) -> list[str]:
    return [line for line in broker.log_file.read_text().splitlines() if "aliyun-auth: refused" in line]


def test_a_qos_2_subscribe_is_granted_qos_1(broker, broker_certs, devices):
    device = devices[0]
    client, subscribed, seen = _paho(device, broker, broker_certs)
    try:
        client.subscribe(f"/{device.product_key}/{device.device_name}/user/get", qos=2)
        assert subscribed.wait(5)
        assert seen["granted"] == [1]
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_retained_publish_is_not_replayed_to_a_later_subscriber(broker, broker_certs, devices, connect):
    device = devices[0]
    topic = f"/{device.product_key}/{device.device_name}/user/state"
    publisher, _, _ = _paho(device, broker, broker_certs)
    try:
        time.sleep(0.3)
        publisher.publish(topic, b"kept?", qos=1, retain=True).wait_for_publish(5)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
    again = connect(device, broker)
    assert again.subscribe(topic)
    assert again.wait_message(1.0) is None, "a retained message was replayed"


def test_a_publish_over_256_kb_is_refused_and_the_sender_disconnected(broker, devices, connect):
    device = devices[0]
    topic = f"/{device.product_key}/{device.device_name}/user/blob"
    client = connect(device, broker)
    assert client.subscribe(topic)
    client.publish(topic, b"x" * PAYLOAD_MAX_BYTES)
    message = client.wait_message(5.0)
    assert message is not None and len(message.payload) == PAYLOAD_MAX_BYTES, "256 KB exactly is allowed"
    client.publish(topic, b"x" * (PAYLOAD_MAX_BYTES + 1))
    assert client.wait_disconnected(5.0)
    assert client.wait_message(0.5) is None
    assert sum("PUBLISH payload over 256 KB" in line for line in _refusals(broker)) == 1


def _broker_rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_64_mb_connect_is_dropped_before_it_is_held(broker, broker_certs):
    # the connect gate reads the CONNECT, in this process; Mosquitto never sees it
    before, gate_before = _broker_rss_kib(broker.pid), _broker_rss_kib(os.getpid())
    announced = 64 * 1024 * 1024
    length = bytearray()
    value = announced
    while True:
        byte, value = value % 128, value // 128
        length.append(byte | (0x80 if value else 0))
        if not value:
            break
    context = ssl.create_default_context(cafile=str(broker_certs.ca_cert))
    sent = 0
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(bytes([0x10]) + bytes(length))
            chunk = b"\0" * 65536
            try:
                while sent < 16 * 1024 * 1024:
                    tls.sendall(chunk)
                    sent += len(chunk)
            except (OSError, ssl.SSLError):
                pass
    after, gate_after = _broker_rss_kib(broker.pid), _broker_rss_kib(os.getpid())
    assert sent < 16 * 1024 * 1024, "the broker kept reading a 64 MB CONNECT"
    assert after - before < 4 * 1024, f"broker RSS grew by {after - before} KiB"
    assert gate_after - gate_before < 4 * 1024, f"the gate's process grew by {gate_after - gate_before} KiB"
    assert any(f"over the {MAX_PACKET_BYTES} byte limit" in line for line in broker.log_file.read_text().splitlines())


def test_a_device_uses_ota_shadow_and_broadcast_in_their_directions(broker, devices, connect):
    device = devices[0]
    pk, dn = device.product_key, device.device_name
    client = connect(device, broker)
    for topic in (f"/ota/device/upgrade/{pk}/{dn}", f"/shadow/get/{pk}/{dn}", f"/broadcast/{pk}/#"):
        assert client.subscribe(topic), topic
    for topic in (f"/ota/device/inform/{pk}", f"/shadow/update/{pk}/{dn}", f"/ota/device/upgrade/{pk}/+"):
        assert not client.subscribe(topic), topic
    other = devices[1].device_name
    assert not client.subscribe(f"/ota/device/upgrade/{pk}/{other}")
    assert not client.subscribe(f"/shadow/get/{pk}/{other}")
    # a device may not publish downstream topics: its own upgrade message does not come back to it
    client.publish(f"/ota/device/upgrade/{pk}/{dn}", b"{}")
    assert client.wait_message(1.0) is None
    client.publish(f"/broadcast/{pk}/news", b"{}")
    assert client.wait_message(1.0) is None

"""The platform has no will messages: a device's will is never delivered."""

from __future__ import annotations

import queue
import socket
import ssl
import time

import paho.mqtt.client as mqtt

from provision.signing import sign


def _client(client_id: str, username: str, password: str, broker, ca_file) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(username, password)
    client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
    return client


def test_a_will_is_dropped_when_the_device_vanishes(broker, broker_certs, devices):
    endpoint = broker.console_endpoint
    got: queue.Queue = queue.Queue()
    console = _client("console", endpoint.username, endpoint.password, broker, broker_certs.ca_cert)
    console.on_message = lambda c, u, m: got.put(m.topic)
    console.connect("127.0.0.1", broker.port)
    console.subscribe("#", qos=1)
    console.loop_start()
    device = devices[0]
    will_topic = f"/{device.product_key}/{device.device_name}/user/will"
    credentials = sign(device.product_key, device.device_name, device.device_secret, secure_mode=2)
    vanishing = _client(credentials.client_id, credentials.username, credentials.password, broker, broker_certs.ca_cert)
    vanishing.will_set(will_topic, b"gone", qos=1)
    connected: queue.Queue = queue.Queue()
    vanishing.on_connect = lambda c, u, f, reason, p: connected.put(not reason.is_failure)
    vanishing.connect("127.0.0.1", broker.port, keepalive=60)
    vanishing.loop_start()
    try:
        assert connected.get(timeout=5)
        time.sleep(0.3)
        vanishing.socket().shutdown(socket.SHUT_RDWR)  # no DISCONNECT: Mosquitto would send the will
        deadline = time.monotonic() + 2
        topics = []
        while time.monotonic() < deadline:
            try:
                topics.append(got.get(timeout=0.2))
            except queue.Empty:
                pass
        assert will_topic not in topics
        assert "dropped the will of" in broker.log_file.read_text()
    finally:
        vanishing.loop_stop()
        console.disconnect()
        console.loop_stop()

"""The platform has no will messages: a device that asks for one is refused at CONNECT (by the connect gate;
raw packets for every will QoS and retain flag are in test_connect_gate.py), as a real client sees it."""

from __future__ import annotations

import queue
import ssl

import paho.mqtt.client as mqtt

from provision.signing import sign


def test_a_client_asking_for_a_will_is_refused_not_authorized(broker, broker_certs, devices):
    device = devices[0]
    credentials = sign(device.product_key, device.device_name, device.device_secret, secure_mode=2)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=credentials.client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(credentials.username, credentials.password)
    client.tls_set(ca_certs=str(broker_certs.ca_cert), cert_reqs=ssl.CERT_REQUIRED)
    client.will_set(f"/{device.product_key}/{device.device_name}/user/will", b"gone", qos=1)
    reasons: queue.Queue = queue.Queue()
    client.on_connect = lambda c, u, f, reason, p: reasons.put(reason)
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.loop_start()
    try:
        reason = reasons.get(timeout=5)
        assert reason.is_failure and "not authori" in str(reason).lower()
        mosquitto_lines = [line for line in broker.log_file.read_text().splitlines() if "connect-gate:" not in line]
        assert not any(credentials.client_id in line for line in mosquitto_lines), "the CONNECT reached Mosquitto"
    finally:
        client.loop_stop()
        client.disconnect()

"""The console principal: `$console` with the run's password, every topic, any number of connections."""

from __future__ import annotations

import json
import queue
import ssl
import time

import paho.mqtt.client as mqtt

from provision.cloud.endpoint import CONSOLE_USERNAME, read_console_endpoint
from provision.device_client import connect_device


def _console(endpoint, client_id: str, password: str | None = None):
    got: queue.Queue = queue.Queue()
    connack: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(endpoint.username, password if password is not None else endpoint.password)
    client.tls_set(ca_certs=endpoint.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    client.on_connect = lambda c, u, f, reason, p: connack.put(not reason.is_failure)
    client.on_message = lambda c, u, m: got.put((m.topic, bytes(m.payload)))
    client.connect(endpoint.host, endpoint.port, keepalive=60)
    client.loop_start()
    return client, connack.get(timeout=5), got


def test_the_console_logs_in_and_uses_every_topic(broker, broker_certs, devices):
    endpoint = broker.console_endpoint
    assert endpoint is not None and endpoint.username == CONSOLE_USERNAME
    assert read_console_endpoint(broker_certs.ca_cert.parent) == endpoint
    assert oct((broker_certs.ca_cert.parent / "console.json").stat().st_mode & 0o777) == "0o600"
    first, accepted, got = _console(endpoint, "console-a")
    second, accepted_too, _ = _console(endpoint, "console-b")
    wrong, refused, _ = _console(endpoint, "console-c", password="not-it")
    try:
        assert accepted and accepted_too and not refused
        first.subscribe([("#", 1), ("$aliyun/presence/#", 1)])
        time.sleep(0.3)
        device = devices[0]
        pk, dn = device.product_key, device.device_name
        client, outcome = connect_device(device, host="127.0.0.1", port=broker.port, ca_file=broker_certs.ca_cert)
        assert outcome.accepted
        topic, body = got.get(timeout=5)
        assert topic == f"$aliyun/presence/{pk}/{dn}" and json.loads(body)["event"] == "online"
        client.publish(f"/sys/{pk}/{dn}/thing/event/property/post", b'{"id":"1"}')
        assert got.get(timeout=5) == (f"/sys/{pk}/{dn}/thing/event/property/post", b'{"id":"1"}')
        set_topic = f"/sys/{pk}/{dn}/thing/service/property/set"
        assert client.subscribe(set_topic)
        second.publish(set_topic, b'{"params":{}}', qos=1)
        message = client.wait_message(5)
        assert message is not None and message.payload == b'{"params":{}}'
        time.sleep(0.3)
        assert first.is_connected() and second.is_connected(), "console connections do not kick each other"
        client.close()
    finally:
        for mqtt_client in (first, second, wrong):
            mqtt_client.disconnect()
            mqtt_client.loop_stop()
    broker.stop()
    assert broker.console_endpoint is None
    assert not (broker_certs.ca_cert.parent / "console.json").exists()
    assert endpoint.password not in broker.log_file.read_text()

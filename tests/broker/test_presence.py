"""The plugin's presence messages ($aliyun/presence/{pk}/{dn}), read by a console-principal login."""

from __future__ import annotations

import json
import queue
import time

import pytest

from provision.cloud.broker import BrokerProcess, BrokerSettings
from provision.cloud.platform import connect_console_client
from provision.device_client import connect_device


@pytest.fixture
def watched_broker(broker_plugin, broker_certs, devices, tmp_path):
    settings = BrokerSettings(devices=devices, certs=broker_certs, port=0, plugin=broker_plugin)
    broker = BrokerProcess(settings, log_to=tmp_path / "mosquitto.log")
    broker.start()
    seen: queue.Queue = queue.Queue()
    watcher = connect_console_client(broker.console_endpoint, "watcher")
    watcher.on_message = lambda c, u, m: seen.put((m.topic, json.loads(m.payload), m.qos, m.retain))
    watcher.subscribe("$aliyun/presence/#", qos=1)
    try:
        yield broker, seen
    finally:
        watcher.disconnect()
        watcher.loop_stop()
        broker.stop()


def _next(seen: queue.Queue):
    return seen.get(timeout=5)


def test_connect_and_disconnect_publish_presence(watched_broker, broker_certs, devices):
    broker, seen = watched_broker
    device = devices[0]
    time.sleep(0.3)  # the watcher's subscription is in place
    client, outcome = connect_device(device, host="127.0.0.1", port=broker.port, ca_file=broker_certs.ca_cert)
    assert outcome.accepted
    topic, body, qos, retain = _next(seen)
    assert topic == f"$aliyun/presence/{device.product_key}/{device.device_name}"
    assert body["event"] == "online" and body["clientId"] == client.credentials.client_id
    # no address: Mosquitto sees every client arrive from the gate; the gate records the real one (test_connect_gate)
    assert "ip" not in body and isinstance(body["ts"], int)
    assert qos == 1 and not retain
    # the same device again: the takeover leaves it online (no "offline" for the kicked connection)
    second, outcome = connect_device(device, host="127.0.0.1", port=broker.port, ca_file=broker_certs.ca_cert)
    assert outcome.accepted
    assert _next(seen)[1]["event"] == "online"
    second.close()
    assert _next(seen)[1]["event"] == "offline"
    client.close()
    with pytest.raises(queue.Empty):
        seen.get(timeout=1)

"""Topic ACL, the kick of a duplicate connection and message forwarding, with real paho-mqtt clients."""

from __future__ import annotations

import time

import pytest

from provision.cloud.broker import Route
from provision.device_client import connect_device


def _own_topics(pk: str, dn: str) -> list[str]:
    return [
        f"/sys/{pk}/{dn}/thing/service/property/set",
        f"/sys/{pk}/{dn}/#",
        f"/{pk}/{dn}/user/setled",
        f"/ext/ntp/{pk}/{dn}/response",
        f"/ext/rrpc/+/sys/{pk}/{dn}/thing/service/+",
    ]


def test_a_device_may_subscribe_under_its_own_prefixes(broker, devices, connect):
    device = devices[0]
    client = connect(device, broker)
    for topic in _own_topics(device.product_key, device.device_name):
        assert client.subscribe(topic), topic


@pytest.mark.parametrize(
    "topic",
    [
        "#",
        "/sys/#",
        "/sys/+/+/thing/service/property/set",
        "/sys/{pk}/{other}/thing/service/property/set",
        "/{pk}/{other}/user/setled",
        "/{pk}/+/user/setled",
        "/ext/ntp/{pk}/{other}/response",
        "/ext/{pk}/{dn}/response",
        "/sys/{pk}/{dn}",
        "/other/{pk}/{dn}/x",
    ],
)
def test_a_device_may_not_subscribe_elsewhere(topic, broker, devices, connect):
    device, other = devices[0], devices[1]
    client = connect(device, broker)
    filled = topic.format(pk=device.product_key, dn=device.device_name, other=other.device_name)
    assert not client.subscribe(filled), filled


def test_a_publish_to_another_devices_topic_is_dropped(broker, devices, connect):
    sender, receiver = devices[0], devices[1]
    listener = connect(receiver, broker)
    topic = f"/{receiver.product_key}/{receiver.device_name}/user/setled"
    assert listener.subscribe(topic)
    connect(sender, broker).publish(topic, b'{"dn":"x","s":1}')
    assert listener.wait_message(1.0) is None
    # the receiver itself may publish there and gets its own message: the drop above was the ACL
    listener.publish(topic, b"self")
    message = listener.wait_message(5.0)
    assert message is not None and message.payload == b"self"


def test_a_second_connection_with_the_same_triple_kicks_the_first(broker, devices, connect):
    device = devices[0]
    first = connect(device, broker, client_id="board-a", timestamp=1)
    second = connect(device, broker, client_id="board-b", timestamp=2)
    assert first.wait_disconnected(5.0)
    time.sleep(0.3)
    assert second.connected
    # another device is not affected
    third = connect(devices[1], broker)
    time.sleep(0.3)
    assert second.connected and third.connected


def test_routes_forward_one_devices_messages_to_anothers_topic(start_broker, devices, connect):
    source, target = devices[0], devices[1]
    pk = source.product_key
    broker = start_broker(
        routes=(Route(f"/{pk}/{source.device_name}/user/+", f"/{pk}/{target.device_name}/user/setled"),)
    )
    listener = connect(target, broker)
    assert listener.subscribe(f"/{pk}/{target.device_name}/user/setled")
    publisher = connect(source, broker)
    publisher.publish(f"/{pk}/{source.device_name}/user/cmd", b'{"dn":"lamp-0002","s":1}')
    message = listener.wait_message(5.0)
    assert message is not None
    assert message.topic == f"/{pk}/{target.device_name}/user/setled"
    assert message.payload == b'{"dn":"lamp-0002","s":1}'
    # a topic outside the route's filter is not forwarded
    publisher.publish(f"/{pk}/{source.device_name}/other/cmd", b"no")
    assert listener.wait_message(1.0) is None


def test_a_client_id_in_use_by_another_device_is_refused_for_the_newcomer(broker, devices, broker_certs, connect):
    first = connect(devices[0], broker, client_id="shared-id", timestamp=1)
    client, outcome = connect_device(
        devices[1], host="127.0.0.1", port=broker.port, ca_file=broker_certs.ca_cert, client_id="shared-id", timestamp=1
    )
    client.close()
    assert not outcome.accepted
    time.sleep(0.3)
    assert first.connected, "the first device keeps its connection"
    assert "client id in use by another device" in broker.log_file.read_text()
    # once the first device has gone, the id is free
    first.close()
    time.sleep(0.3)
    connect(devices[1], broker, client_id="shared-id", timestamp=2)

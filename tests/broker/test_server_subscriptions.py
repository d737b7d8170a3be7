"""`_ss=1`: the broker delivers a device's downstream system topics without a SUBSCRIBE, once."""

from __future__ import annotations

import dataclasses
import ssl
import time

import paho.mqtt.client as mqtt

from provision.device_client import DeviceClient
from provision.signing import sign


def _ss_device(device, broker, certs, server_subscribe: bool = True) -> DeviceClient:
    credentials = sign(device.product_key, device.device_name, device.device_secret, secure_mode=2)
    if server_subscribe:  # the signature covers the bare id only: the extension may grow
        credentials = dataclasses.replace(credentials, client_id=credentials.client_id[:-1] + ",_ss=1|")
    client = DeviceClient(credentials, host="127.0.0.1", port=broker.port, ca_file=certs.ca_cert)
    assert client.connect().accepted
    return client


def _console(broker) -> mqtt.Client:
    endpoint = broker.console_endpoint
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="console", protocol=mqtt.MQTTv311)
    client.username_pw_set(endpoint.username, endpoint.password)
    client.tls_set(ca_certs=endpoint.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    client.connect(endpoint.host, endpoint.port, keepalive=60)
    client.loop_start()
    time.sleep(0.3)
    return client


def test_an_ss_device_gets_its_system_topics_unsubscribed_and_never_twice(broker, broker_certs, devices):
    device = devices[0]
    pk, dn = device.product_key, device.device_name
    ss = _ss_device(device, broker, broker_certs)
    plain = _ss_device(devices[1], broker, broker_certs, server_subscribe=False)
    console = _console(broker)
    try:
        for topic in (
            f"/sys/{pk}/{dn}/thing/service/property/set",
            f"/sys/{pk}/{dn}/thing/event/property/post_reply",
            f"/ext/ntp/{pk}/{dn}/response",
            f"/ota/device/upgrade/{pk}/{dn}",
            f"/shadow/get/{pk}/{dn}",
            f"/sys/{pk}/{dn}/rrpc/request/42",
            f"/broadcast/{pk}/news",
        ):
            console.publish(topic, b"{}", qos=1).wait_for_publish(5)
            message = ss.wait_message(5)
            assert message is not None and message.topic == topic
            assert message.qos == 0, "an unsubscribed copy asks for no PUBACK (plugin.c SERVER_SUB_QOS)"
        assert ss.wait_message(0.5) is None
        assert plain.wait_message(0.2) is None, "a device without _ss=1 gets nothing unsubscribed"
        # an upstream topic or another device's is not delivered
        console.publish(f"/sys/{pk}/{dn}/thing/event/property/post", b"{}", qos=1).wait_for_publish(5)
        console.publish(f"/sys/{pk}/{devices[1].device_name}/thing/service/property/set", b"{}", qos=1)
        assert ss.wait_message(0.5) is None
        # subscribed as well: still once
        set_topic = f"/sys/{pk}/{dn}/thing/service/property/set"
        assert ss.subscribe(set_topic)
        console.publish(set_topic, b'{"n":2}', qos=1).wait_for_publish(5)
        message = ss.wait_message(5)
        assert message is not None and message.payload == b'{"n":2}'
        assert ss.wait_message(0.5) is None, "delivered twice"
    finally:
        console.disconnect()
        console.loop_stop()
        ss.close()
        plain.close()

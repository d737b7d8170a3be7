"""What the platform does for a device, seen from Alibaba's clients (issue 10, Done means).

The broker's `_ss=1` server-side subscriptions are not built yet, so mqtt.js subscribes to the reply topics
itself here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from interop_clients import NodeDevice, Platform, run_linkkit

from provision.cloud.console import list_devices
from provision.signing import sign

POSTS = 100


def connected(node_device: Callable[..., NodeDevice], platform: Platform, device_name: str) -> NodeDevice:
    device = platform.devices[device_name]
    credentials = sign(device.product_key, device.device_name, device.device_secret)
    client = node_device(
        {"clientId": credentials.client_id, "username": credentials.username, "password": credentials.password}
    )
    assert client.wait_for(lambda e: e["event"] in ("connect", "error", "close"))["event"] == "connect"
    return client


def subscribed(client: NodeDevice, topic: str) -> None:
    client.send({"do": "subscribe", "topic": topic, "qos": 1})
    suback = client.wait_for(lambda e: e["event"] == "suback")
    assert (suback["error"], suback["granted"]) == (None, [1])


def test_every_property_post_gets_its_post_reply(node_device: Callable[..., NodeDevice], platform: Platform) -> None:
    client = connected(node_device, platform, "sdk-js-0001")
    up = f"/sys/{platform.devices['sdk-js-0001'].product_key}/sdk-js-0001/thing/event/property/post"
    subscribed(client, up + "_reply")
    body = '{"id":"{index}","version":"1.0","params":{"LightSwitch":1},"method":"thing.event.property.post"}'
    client.send({"do": "publish", "topic": up, "payload": body, "qos": 1, "repeat": POSTS})
    replies = [json.loads(client.wait_for(lambda e: e["event"] == "message")["payload"]) for _ in range(POSTS)]
    assert sorted(int(reply["id"]) for reply in replies) == list(range(POSTS))
    assert {(r["code"], r["message"], r["method"], r["version"]) for r in replies} == {
        (200, "success", "thing.event.property.post", "1.0")
    }


def test_ntp_request_is_answered(node_device: Callable[..., NodeDevice], platform: Platform) -> None:
    client = connected(node_device, platform, "sdk-js-0001")
    product_key = platform.devices["sdk-js-0001"].product_key
    subscribed(client, f"/ext/ntp/{product_key}/sdk-js-0001/response")
    client.send(
        {
            "do": "publish",
            "topic": f"/ext/ntp/{product_key}/sdk-js-0001/request",
            "payload": '{"deviceSendTime":"1700000000123"}',
        }
    )
    answer = json.loads(client.wait_for(lambda e: e["event"] == "message")["payload"])
    assert str(answer["deviceSendTime"]) == "1700000000123"
    assert int(answer["serverRecvTime"]) <= int(answer["serverSendTime"])


def test_shadow_update_then_get_round_trips(node_device: Callable[..., NodeDevice], platform: Platform) -> None:
    client = connected(node_device, platform, "sdk-js-0002")
    product_key = platform.devices["sdk-js-0002"].product_key
    subscribed(client, f"/shadow/get/{product_key}/sdk-js-0002")
    update = {"method": "update", "state": {"reported": {"color": "red"}}, "version": 1}
    client.send({"do": "publish", "topic": f"/shadow/update/{product_key}/sdk-js-0002", "payload": json.dumps(update)})
    updated = json.loads(client.wait_for(lambda e: e["event"] == "message")["payload"])
    assert updated["payload"] == {"status": "success", "version": 1}
    client.send({"do": "publish", "topic": f"/shadow/update/{product_key}/sdk-js-0002", "payload": '{"method":"get"}'})
    document = json.loads(client.wait_for(lambda e: e["event"] == "message")["payload"])
    assert document["payload"]["status"] == "success"
    assert document["payload"]["state"]["reported"] == {"color": "red"}
    assert document["version"] == 1


def test_linkkit_ota_inform_is_recorded(interop_tools: Path, platform: Platform) -> None:
    # ota_report_version publishes {"id": 1, "params": {"version": V}} at QoS 0 on /ota/device/inform/{pk}/{dn};
    # the wait lets the broker pass it to the platform before the SDK disconnects.
    events = run_linkkit(
        interop_tools,
        platform,
        "sdk-py-0001",
        [{"do": "report_version", "version": "2.4.1-interop"}, {"do": "wait", "seconds": 0.5}],
    )
    # The SDK returns OTA_PUB_FAILED even when paho queued the message: it compares paho's MQTTMessageInfo
    # with MQTT_ERR_SUCCESS (linkkit.py, ota_report_version), so the record is the only evidence.
    assert any(event["event"] == "report_version" for event in events), events
    # What `provision cloud devices` shows, read through the console library.
    records = {record["device_name"]: record for record in list_devices(platform.cert_dir)}
    assert records["sdk-py-0001"]["firmware_version"] == "2.4.1-interop"
    # the connect gate's record of the SDK's own address, not the gate's unix socket
    assert records["sdk-py-0001"]["last_ip"] == "127.0.0.1"

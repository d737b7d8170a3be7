"""The platform's own replies to devices, against a real `provision broker`."""

from __future__ import annotations

import json
import time

from cloud_platform import PRODUCT_KEY, RunningBroker

from provision.cloud.endpoint import CONSOLE_FILE


def _topic(rb: RunningBroker, suffix: str, index: int = 0) -> str:
    return f"/sys/{PRODUCT_KEY}/{rb.devices[index].device_name}/{suffix}"


def _next_json(client, timeout_s: float = 5.0) -> tuple[str, dict]:
    message = client.wait_message(timeout_s)
    assert message is not None, "no message"
    return message.topic, json.loads(message.payload)


def test_property_post_gets_post_reply_and_bad_post_gets_460(running_broker: RunningBroker) -> None:
    with running_broker.device() as device:
        reply_topic = _topic(running_broker, "thing/event/property/post_reply")
        assert device.subscribe(reply_topic)
        device.publish(
            _topic(running_broker, "thing/event/property/post"), json.dumps({"id": "41", "params": {"a": 1}})
        )
        topic, reply = _next_json(device)
        assert topic == reply_topic
        assert reply == {
            "code": 200, "data": {}, "id": "41", "message": "success",
            "method": "thing.event.property.post", "version": "1.0",
        }  # fmt: skip
        device.publish(_topic(running_broker, "thing/event/property/post"), b"{not json")
        assert _next_json(device)[1]["code"] == 460


def test_event_post_reply_names_the_event(running_broker: RunningBroker) -> None:
    with running_broker.device() as device:
        assert device.subscribe(_topic(running_broker, "thing/event/Overheat/post_reply"))
        device.publish(_topic(running_broker, "thing/event/Overheat/post"), json.dumps({"id": "5", "params": {}}))
        reply = _next_json(device)[1]
        assert (reply["code"], reply["method"], reply["id"]) == (200, "thing.event.Overheat.post", "5")


def test_ntp_request_is_answered_with_server_times(running_broker: RunningBroker) -> None:
    name = running_broker.devices[0].device_name
    with running_broker.device() as device:
        assert device.subscribe(f"/ext/ntp/{PRODUCT_KEY}/{name}/response")
        before = int(time.time() * 1000)
        device.publish(f"/ext/ntp/{PRODUCT_KEY}/{name}/request", json.dumps({"deviceSendTime": "1234"}))
        reply = _next_json(device)[1]
        assert reply["deviceSendTime"] == "1234"
        assert before <= reply["serverRecvTime"] <= reply["serverSendTime"] <= int(time.time() * 1000)


def test_shadow_update_versions_and_console_sees_it(running_broker: RunningBroker) -> None:
    name = running_broker.devices[0].device_name
    with running_broker.device(0) as device:
        assert device.subscribe(f"/shadow/get/{PRODUCT_KEY}/{name}")
        update = {"method": "update", "state": {"reported": {"color": "red"}}, "version": 1}
        device.publish(f"/shadow/update/{PRODUCT_KEY}/{name}", json.dumps(update))
        assert _next_json(device)[1]["payload"] == {"status": "success", "version": 1}
        device.publish(f"/shadow/update/{PRODUCT_KEY}/{name}", json.dumps(update))  # same version again
        stale = _next_json(device)[1]["payload"]
        assert (stale["status"], stale["content"]["errorcode"]) == ("error", "405")
        shown = json.loads(running_broker.cloud("shadow", "get", "--device", f"{PRODUCT_KEY}/{name}", "--json").stdout)
        assert shown["state"]["reported"] == {"color": "red"} and shown["version"] == 1
        running_broker.cloud("shadow", "set", "--device", f"{PRODUCT_KEY}/{name}", "--desired", '{"color":"blue"}')
        control = _next_json(device)[1]
        assert control["method"] == "control" and control["payload"]["state"]["desired"] == {"color": "blue"}
        assert control["version"] == 2
        device.publish(f"/shadow/update/{PRODUCT_KEY}/{name}", json.dumps({"method": "get"}))
        got = _next_json(device)[1]
        assert got["payload"]["state"] == {"reported": {"color": "red"}, "desired": {"color": "blue"}}


def test_ota_inform_version_shows_in_devices(running_broker: RunningBroker) -> None:
    name = running_broker.devices[1].device_name
    with running_broker.device(1) as device:
        device.publish(
            f"/ota/device/inform/{PRODUCT_KEY}/{name}", json.dumps({"id": "1", "params": {"version": "1.4.2"}})
        )
        time.sleep(0.5)
    listed = json.loads(running_broker.cloud("devices", "--json").stdout)["devices"]
    assert {(d["device_name"], d["firmware_version"]) for d in listed} == {(name, "1.4.2")}


def test_console_file_is_private_and_gone_after_stop_and_no_password_in_output(
    running_broker: RunningBroker,
) -> None:
    path = running_broker.cert_dir / CONSOLE_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    password = json.loads(path.read_text())["password"]
    result = running_broker.cloud("devices")
    output = running_broker.stop()
    assert not path.exists()
    for text in (output, result.stdout, result.stderr):
        assert password not in text
        for device in running_broker.devices:
            assert device.device_secret not in text


def _listed(rb: RunningBroker, name: str) -> dict:
    listed = json.loads(rb.cloud("devices", "--json").stdout)["devices"]
    return next(d for d in listed if d["device_name"] == name)


def test_devices_shows_presence_from_the_broker(running_broker: RunningBroker) -> None:
    name = running_broker.devices[0].device_name
    with running_broker.device() as device:
        time.sleep(0.3)
        shown = _listed(running_broker, name)
        assert shown["online"] is True and shown["last_ip"] == "127.0.0.1"
        assert shown["client_id"] == device.credentials.client_id and shown["since_ms"] > 0
    time.sleep(0.5)
    assert _listed(running_broker, name)["online"] is False

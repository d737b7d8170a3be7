"""Each console command end to end: `provision cloud ...` subprocesses, paho clients as the devices."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from cloud_platform import PRODUCT_KEY, RunningBroker


def _answer_once(device, request_suffix: str, reply_suffix_of, body_of) -> threading.Thread:
    """A device thread: on the first message, publish an answer built from it."""

    def run() -> None:
        message = device.wait_message(20)
        if message is not None:
            device.publish(reply_suffix_of(message.topic), json.dumps(body_of(json.loads(message.payload))))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_set_property_prints_the_devices_set_reply(running_broker: RunningBroker) -> None:
    dn = running_broker.devices[0].device_name
    with running_broker.device() as device:
        assert device.subscribe(f"/sys/{PRODUCT_KEY}/{dn}/thing/service/property/set")
        _answer_once(
            device, "", lambda t: t + "_reply",
            lambda req: {"code": 200, "data": {}, "id": req["id"], "message": "success", "version": "1.0"},
        )  # fmt: skip
        result = running_broker.cloud(
            "set-property", "--device", f"{PRODUCT_KEY}/{dn}", "--params", '{"LightSwitch":1}', "--wait", "10", "--json"
        )
    printed = json.loads(result.stdout)
    assert printed["sent"]["params"] == {"LightSwitch": 1}
    assert printed["reply"]["code"] == 200 and printed["reply"]["id"] == printed["sent"]["id"]


def test_set_property_times_out_with_one_line_and_exit_1(running_broker: RunningBroker) -> None:
    dn = running_broker.devices[0].device_name
    result = running_broker.cloud(
        "set-property", "--device", f"{PRODUCT_KEY}/{dn}", "--params", "{}", "--wait", "0.5", check=False
    )
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0 and "within 0.5 s" in result.stderr


def test_bad_input_is_exit_3_without_echo(running_broker: RunningBroker) -> None:
    result = running_broker.cloud("set-property", "--device", "no-slash-SECRETISH", "--params", "{}", check=False)
    assert result.returncode == 3 and "SECRETISH" not in result.stderr
    result = running_broker.cloud("set-property", "--device", f"{PRODUCT_KEY}/x", "--params", "[1]", check=False)
    assert result.returncode == 3 and "--params" in result.stderr


def test_invoke_service_and_rrpc_wait_for_the_device(running_broker: RunningBroker) -> None:
    dn = running_broker.devices[0].device_name
    with running_broker.device() as device:
        assert device.subscribe(f"/sys/{PRODUCT_KEY}/{dn}/thing/service/Reboot")
        _answer_once(device, "", lambda t: t + "_reply", lambda req: {"code": 200, "id": req["id"], "data": {"ok": 1}})
        result = running_broker.cloud(
            "invoke-service", "--device", f"{PRODUCT_KEY}/{dn}", "--service", "Reboot", "--wait", "10", "--json"
        )
        assert json.loads(result.stdout)["reply"]["data"] == {"ok": 1}
    with running_broker.device() as device:
        assert device.subscribe(f"/sys/{PRODUCT_KEY}/{dn}/rrpc/request/+")
        _answer_once(device, "", lambda t: t.replace("/request/", "/response/"), lambda req: {"echo": req})
        result = running_broker.cloud("rrpc", "--device", f"{PRODUCT_KEY}/{dn}", "--payload", '{"q":7}', "--json")
        assert json.loads(result.stdout)["response"] == {"echo": {"q": 7}}


def test_broadcast_reaches_a_subscribed_device(running_broker: RunningBroker) -> None:
    with running_broker.device(0) as device:
        assert device.subscribe(f"/broadcast/{PRODUCT_KEY}/news")
        running_broker.cloud("broadcast", "--product", PRODUCT_KEY, "--topic", "news", "--payload", "hello")
        message = device.wait_message(5)
        assert message is not None and message.payload == b"hello"


def test_watch_prints_upstream_messages_as_json_lines(running_broker: RunningBroker) -> None:
    dn = running_broker.devices[0].device_name
    watcher = subprocess.Popen(
        [sys.executable, "-m", "provision.cli", "cloud", "--cert-dir", str(running_broker.cert_dir), "watch",
         "--device", f"{PRODUCT_KEY}/{dn}", "--json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(2.0)  # its login and subscription
        with running_broker.device() as device:
            device.publish(f"/sys/{PRODUCT_KEY}/{dn}/thing/event/property/post", '{"id":"9","params":{"RSSI":-40}}')
        assert watcher.stdout is not None
        line = json.loads(watcher.stdout.readline())
        assert line == {
            "topic": f"/sys/{PRODUCT_KEY}/{dn}/thing/event/property/post",
            "payload": {"id": "9", "params": {"RSSI": -40}},
        }
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)

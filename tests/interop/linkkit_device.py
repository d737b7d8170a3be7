"""Drives Alibaba's aliyun-iot-linkkit 1.2.13 as a device; run by build/interop/linkkit-venv/bin/python.

Not a test module: the tests start it as a subprocess (the SDK needs paho-mqtt<2, the project's venv has 2.x).
stdin: one JSON object {"host", "port", "ca_file", "product_key", "device_name", "device_secret", "steps"}
(the secret travels on stdin, never in argv). stdout: one JSON object a line for every SDK callback and step
result, ending with {"event": "done"}. Steps, run in order once connected:
  {"do": "post_properties", "count": N, "params": {...}}  thing_post_property N times, each after the reply to
                                                           the one before (or 1 s without it)
  {"do": "await_property_set", "seconds": S}               the SDK's on_thing_prop_changed, within S seconds
  {"do": "report_version", "version": V}                   ota_report_version(None, V)
  {"do": "wait", "seconds": S}                             let callbacks arrive
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from linkkit import linkkit  # type: ignore[import-not-found]

_out_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    with _out_lock:
        print(json.dumps({"event": event, **fields}), flush=True)


def main() -> int:
    config = json.loads(sys.stdin.readline())
    device = linkkit.LinkKit(
        host_name=config["host"],
        product_key=config["product_key"],
        device_name=config["device_name"],
        device_secret=config["device_secret"],
    )
    with open(config["ca_file"], encoding="ascii") as ca:
        # endpoint: without it the SDK dials {pk}.iot-as-mqtt.{host_name}.aliyuncs.com (127.0.0.1 is special-cased,
        # but an explicit endpoint works for any local address); cadata replaces its bundled Alibaba root.
        device.config_mqtt(port=config["port"], cadata=ca.read(), endpoint=config["host"])
    connected = threading.Event()
    replies = threading.Semaphore(0)
    property_set = threading.Event()

    def on_connect(session_flag: int, rc: int, userdata: object) -> None:
        emit("connect", rc=rc)
        connected.set()

    def on_disconnect(rc: int, userdata: object) -> None:
        emit("disconnect", rc=rc)

    def on_prop_post(request_id: str, code: int, data: object, message: str, userdata: object) -> None:
        emit("prop_post_reply", id=request_id, code=code, message=message)
        replies.release()

    def on_prop_changed(params: object, userdata: object) -> None:
        emit("prop_changed", params=params)
        property_set.set()

    def on_topic_message(topic: str, payload: bytes, qos: int, userdata: object) -> None:
        emit("message", topic=topic, payload=payload.decode(errors="replace"))

    device.on_connect = on_connect
    device.on_disconnect = on_disconnect
    device.on_thing_prop_post = on_prop_post
    device.on_thing_prop_changed = on_prop_changed
    device.on_topic_message = on_topic_message
    device.thing_setup()  # no TSL file: the SDK's raw mode, which still posts properties and takes property set
    device.connect_async()
    if not connected.wait(config.get("connect_timeout_s", 10)):
        emit("connect_timeout")
    else:
        for step in config.get("steps", []):
            run_step(device, step, replies, property_set)
    emit("done")
    device.disconnect()
    return 0


def run_step(device: Any, step: dict[str, Any], replies: threading.Semaphore, property_set: threading.Event) -> None:
    if step["do"] == "post_properties":
        for index in range(step["count"]):
            rc, request_id = device.thing_post_property(step["params"])
            emit("prop_post", index=index, rc=rc, id=request_id)
            if rc == 0:
                replies.acquire(timeout=1)
    elif step["do"] == "await_property_set":
        emit("await_property_set", arrived=property_set.wait(step["seconds"]))
    elif step["do"] == "report_version":
        emit("report_version", rc=int(device.ota_report_version(None, step["version"]).value))
    elif step["do"] == "wait":
        time.sleep(step["seconds"])


if __name__ == "__main__":
    sys.exit(main())

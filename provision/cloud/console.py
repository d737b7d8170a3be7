"""The console's library: what `provision cloud ...` does, as functions returning data.

Each call logs in as the console principal (from `--cert-dir/console.json`), does one thing and logs out.
Commands to a device go straight to its downstream topics, as the platform's own API does; platform state
(devices, shadow) comes from the platform service in the broker process over `$aliyun/console/...`.

Downstream formats (Alibaba Cloud IoT Platform, Alink protocol docs): property set
`/sys/{pk}/{dn}/thing/service/property/set` {"id","version":"1.0","params","method":"thing.service.property.set"}
answered on `..._reply`; a service `/sys/{pk}/{dn}/thing/service/{id}` with method `thing.service.{id}`;
RRPC `/sys/{pk}/{dn}/rrpc/request/{messageId}` answered on `/sys/{pk}/{dn}/rrpc/response/{messageId}`;
broadcast `/broadcast/{pk}/{topic}`.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from provision.cloud.endpoint import ConsoleEndpoint, read_console_endpoint
from provision.cloud.platform import CONSOLE_REQUEST, CONSOLE_RESPONSE, connect_console_client
from provision.errors import InputError, ProvisionError

__all__ = [
    "ConsoleSession",
    "ConsoleTimeout",
    "DeviceRef",
    "broadcast",
    "console_session",
    "invoke_service",
    "list_devices",
    "ota_push",
    "parse_device",
    "parse_json_object",
    "rrpc",
    "set_property",
    "shadow_get",
    "shadow_set",
    "watch",
]

_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_UPSTREAM = re.compile(
    r"/sys/[^/]+/[^/]+/thing/event/[^/]+/post|/sys/[^/]+/[^/]+/thing/service/[^/]+_reply"
    r"|/sys/[^/]+/[^/]+/rrpc/response/[^/]+|/ext/ntp/[^/]+/[^/]+/request|/shadow/update/[^/]+/[^/]+"
    r"|/ota/device/(?:inform|progress)/[^/]+/[^/]+|/[^/]+/[^/]+/user/.*"
)


class ConsoleTimeout(ProvisionError):
    """The device did not answer within --wait (exit 1: the command ran, the device did not do its part)."""


@dataclass(frozen=True)
class DeviceRef:
    product_key: str
    device_name: str

    def __str__(self) -> str:
        return f"{self.product_key}/{self.device_name}"


def parse_device(text: str) -> DeviceRef:
    """`PK/DN` as the console commands take it.

    Raises:
        InputError: not two names of letters, digits and `_.:@-` (the value is not echoed: it may be a secret).
    """
    product_key, sep, device_name = text.partition("/")
    if not sep or not _NAME.fullmatch(product_key) or not _NAME.fullmatch(device_name):
        raise InputError("--device: expected PRODUCT_KEY/DEVICE_NAME (letters, digits, _ . : @ -)")
    return DeviceRef(product_key, device_name)


def parse_json_object(option: str, text: str) -> dict[str, Any]:
    """Raises: InputError: not a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        raise InputError(f"{option}: not valid JSON: give a JSON object such as '{{\"LightSwitch\":1}}'") from None
    if not isinstance(value, dict):
        raise InputError(f"{option}: expected a JSON object ({{...}})")
    return value


class ConsoleSession:
    """One console login with a queue of received messages."""

    def __init__(self, endpoint: ConsoleEndpoint) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = connect_console_client(endpoint, f"console-{secrets.token_hex(6)}")
        self.client.on_message = lambda c, u, message: self.messages.put(message)

    def subscribe(self, *topics: str) -> None:
        subscribed = queue.Queue[int]()
        self.client.on_subscribe = lambda *args: subscribed.put(1)
        self.client.subscribe([(topic, 1) for topic in topics])
        try:
            subscribed.get(timeout=10)
        except queue.Empty:
            raise ConsoleTimeout("console: the broker did not confirm the subscription") from None

    def publish(self, topic: str, body: dict[str, Any] | str) -> None:
        payload = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def wait_for(self, match: Callable[[mqtt.MQTTMessage], bool], timeout_s: float, what: str) -> mqtt.MQTTMessage:
        import time

        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if match(message):
                return message
        raise ConsoleTimeout(f"console: no {what} within {timeout_s:g} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def console_session(cert_dir: Path) -> Iterator[ConsoleSession]:
    session = ConsoleSession(read_console_endpoint(cert_dir))
    try:
        yield session
    finally:
        session.close()


def _decode(message: mqtt.MQTTMessage) -> Any:
    try:
        return json.loads(message.payload)
    except (ValueError, UnicodeDecodeError):
        return message.payload.decode(errors="replace")


def _platform_request(cert_dir: Path, request: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    token = secrets.token_hex(8)
    with console_session(cert_dir) as session:
        session.subscribe(CONSOLE_RESPONSE + token)
        session.publish(CONSOLE_REQUEST + token, request)
        answer = _decode(session.wait_for(lambda m: True, timeout_s, "answer from the platform service"))
    if not isinstance(answer, dict) or not answer.get("ok"):
        raise ProvisionError("console: the platform service refused the request")
    return answer


def list_devices(cert_dir: Path) -> list[dict[str, Any]]:
    """Every device the platform has seen: presence, client id, since when, last IP, firmware version."""
    return list(_platform_request(cert_dir, {"op": "devices"})["devices"])


def _request_reply(
    cert_dir: Path, device: DeviceRef, topic: str, method: str, params: dict[str, Any], wait_s: float
) -> dict[str, Any]:
    request_id = str(secrets.randbelow(2**31))
    body = {"id": request_id, "version": "1.0", "params": params, "method": method}
    with console_session(cert_dir) as session:
        if wait_s > 0:
            session.subscribe(topic + "_reply")
        session.publish(topic, body)
        if wait_s <= 0:
            return {"sent": body, "reply": None}
        reply = session.wait_for(
            lambda m: isinstance(r := _decode(m), dict) and str(r.get("id")) == request_id,
            wait_s,
            f"{method} reply from {device}",
        )
    return {"sent": body, "reply": _decode(reply)}


def set_property(cert_dir: Path, device: DeviceRef, params: dict[str, Any], wait_s: float) -> dict[str, Any]:
    """Set properties; with wait_s > 0 also the device's set_reply."""
    topic = f"/sys/{device.product_key}/{device.device_name}/thing/service/property/set"
    return _request_reply(cert_dir, device, topic, "thing.service.property.set", params, wait_s)


def invoke_service(
    cert_dir: Path, device: DeviceRef, service: str, params: dict[str, Any], wait_s: float
) -> dict[str, Any]:
    """Call a thing-model service; with wait_s > 0 also the device's `{service}_reply`."""
    if not _NAME.fullmatch(service) or "/" in service:
        raise InputError("--service: expected a service identifier (letters, digits, _)")
    topic = f"/sys/{device.product_key}/{device.device_name}/thing/service/{service}"
    return _request_reply(cert_dir, device, topic, f"thing.service.{service}", params, wait_s)


def rrpc(cert_dir: Path, device: DeviceRef, payload: str, wait_s: float) -> dict[str, Any]:
    """A synchronous call: the device's answer on rrpc/response/{messageId}, or ConsoleTimeout."""
    message_id = str(secrets.randbelow(10**18))
    base = f"/sys/{device.product_key}/{device.device_name}/rrpc"
    with console_session(cert_dir) as session:
        session.subscribe(f"{base}/response/{message_id}")
        session.publish(f"{base}/request/{message_id}", payload)
        reply = session.wait_for(lambda m: True, wait_s, f"RRPC response from {device}")
    return {"messageId": message_id, "response": _decode(reply)}


def broadcast(cert_dir: Path, product_key: str, topic: str, payload: str) -> dict[str, Any]:
    """Publish once to every device of a product that listens on /broadcast/{pk}/{topic}."""
    if not _NAME.fullmatch(product_key):
        raise InputError("--product: expected a ProductKey (letters, digits, _ . : @ -)")
    if not topic or any(ch in topic for ch in "+#\0") or topic.startswith("/"):
        raise InputError("--topic: expected a topic below /broadcast/{pk}/, without wildcards or a leading '/'")
    full = f"/broadcast/{product_key}/{topic}"
    with console_session(cert_dir) as session:
        session.publish(full, payload)
    return {"topic": full}


def shadow_get(cert_dir: Path, device: DeviceRef) -> dict[str, Any]:
    return dict(_platform_request(cert_dir, {"op": "shadow-get", "device": str(device)})["shadow"])


def shadow_set(cert_dir: Path, device: DeviceRef, desired: dict[str, Any]) -> dict[str, Any]:
    """Write desired state; the platform bumps the version and sends the device a `control` message."""
    request = {"op": "shadow-set", "device": str(device), "desired": desired}
    return dict(_platform_request(cert_dir, request)["shadow"])


def ota_push(
    cert_dir: Path,
    device: DeviceRef,
    firmware: Path,
    version: str,
    *,
    sign_method: str = "SHA256",
    module: str = "default",
    wait_s: float = 0.0,
    drop_after: int | None = None,
    progress: Callable[[dict[str, Any]], None] = lambda params: None,
) -> dict[str, Any]:
    """Serve `firmware` from the platform's HTTPS server and send the device the upgrade message; with
    wait_s > 0, pass each progress post to `progress` until step 100, an error step, or wait_s.

    Raises:
        InputError: the firmware file is unreadable or empty, or the version is empty.
        ConsoleTimeout: no final progress within wait_s.
    """
    path = firmware.resolve()
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"{firmware}: --firmware must be a readable, non-empty file (an app .bin)")
    if not version or any(ch in version for ch in "\0\n\r"):
        raise InputError("--version: expected the version string the device will report after the update")
    token = secrets.token_hex(8)
    request = {
        "op": "ota-push", "device": str(device), "path": str(path), "version": version,
        "module": module, "sign_method": sign_method, "drop_after": drop_after,
    }  # fmt: skip
    steps: list[dict[str, Any]] = []
    with console_session(cert_dir) as session:
        progress_topic = f"/ota/device/progress/{device.product_key}/{device.device_name}"
        session.subscribe(CONSOLE_RESPONSE + token, progress_topic)
        session.publish(CONSOLE_REQUEST + token, request)
        answer = _decode(session.wait_for(lambda m: m.topic.startswith(CONSOLE_RESPONSE), 30, "platform answer"))
        if not isinstance(answer, dict) or not answer.get("ok"):
            raise ProvisionError("console: the platform refused the push (can the broker read the firmware file?)")
        while wait_s > 0:
            posted = _decode(session.wait_for(lambda m: m.topic == progress_topic, wait_s, f"OTA end from {device}"))
            params = posted.get("params") if isinstance(posted, dict) else None
            if not isinstance(params, dict):
                continue
            steps.append(params)
            progress(params)
            step = str(params.get("step", ""))
            if step.lstrip("-").isdigit() and (int(step) >= 100 or int(step) < 0):
                break
    return {"upgrade": answer["upgrade"], "progress": steps}


def watch(cert_dir: Path, device: DeviceRef | None, emit: Callable[[dict[str, Any]], None]) -> None:
    """Call emit() with every upstream message (of one device, or all) until KeyboardInterrupt."""
    with console_session(cert_dir) as session:
        session.subscribe("#")
        marker = f"/{device.product_key}/{device.device_name}/" if device is not None else "/"
        while True:
            try:
                message = session.messages.get(timeout=0.5)
            except queue.Empty:
                continue
            if _UPSTREAM.fullmatch(message.topic) and marker in message.topic:
                emit({"topic": message.topic, "payload": _decode(message)})

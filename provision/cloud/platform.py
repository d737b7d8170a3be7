"""The platform service: what Alibaba's IoT Platform does for a device besides carrying its messages.

A paho-mqtt client logged in as the console principal, in a thread of the `provision broker` process. It
answers property and event posts (`post_reply`), NTP requests, shadow get/update, records OTA inform and
progress and device presence, and serves the console commands their platform state over
`$aliyun/console/request/{token}` -> `$aliyun/console/response/{token}` (only the console principal can use
`$aliyun/...`; a device's ACL stops at its own topics). State lives in this process's memory only.

Formats (Alibaba Cloud IoT Platform docs):
- Alink replies `{"code","data","id","message","method","version"}`; code 460 "request parameter error"
  for a malformed request (help.aliyun.com/document_detail/407503.html, the platform's public error codes).
- NTP over MQTT: `/ext/ntp/{pk}/{dn}/request` {"deviceSendTime"} -> `/response` with "serverRecvTime" and
  "serverSendTime" in ms (issue 10, checked against Link SDK C 4.x).
- Device shadow: `/shadow/update/{pk}/{dn}` up with {"method":"update"|"get","state":{"reported"},"version"},
  `/shadow/get/{pk}/{dn}` down with {"method":"reply","payload":{"status","version"|"state"},"timestamp",
  "version"}; the document is {"state":{"reported","desired"},"metadata","timestamp","version"}
  (alibabacloud.com/help/doc-detail/53932.htm, "JSON format of device shadows"). A version lower than the
  document's is refused with payload {"status":"error","content":{"errorcode":"405","errormessage":...}}.
- OTA: `/ota/device/upgrade/{pk}/{dn}` down with {"code":"1000","data":{"size","sign","signMethod","md5"
  (Md5 only),"url","version","module"},"id","message":"success"}; the device posts
  `/ota/device/inform` {"id","params":{"version"}} and `/ota/device/progress` {"id","params":{"step","desc"}},
  step 1..100 or a negative error (issue 10, checked against aliyun-iot-linkkit and Link SDK C 4.x).
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from provision.cloud.endpoint import ConsoleEndpoint
from provision.cloud.gate import PeerBook
from provision.cloud.ota_server import OtaFileServer, ServedImage
from provision.errors import EnvironmentProblem

__all__ = ["CONSOLE_REQUEST", "CONSOLE_RESPONSE", "DeviceRecord", "PlatformService", "connect_console_client"]

CONSOLE_REQUEST = "$aliyun/console/request/"
CONSOLE_RESPONSE = "$aliyun/console/response/"
PRESENCE = "$aliyun/presence/"
CODE_OK = 200
CODE_PARAMETER_ERROR = 460

_EVENT_POST = re.compile(r"/sys/([^/]+)/([^/]+)/thing/event/([^/]+)/post")
_NTP_REQUEST = re.compile(r"/ext/ntp/([^/]+)/([^/]+)/request")
_SHADOW_UPDATE = re.compile(r"/shadow/update/([^/]+)/([^/]+)")
_OTA_UP = re.compile(r"/ota/device/(inform|progress)/([^/]+)/([^/]+)")
_PRESENCE = re.compile(re.escape(PRESENCE) + r"([^/]+)/([^/]+)")
_ANY_DEVICE_UP = re.compile(r"/(?:sys|ext/ntp|shadow/update|ota/device/\w+)/([^/]+)/([^/]+)/")

SUBSCRIPTIONS = (
    "/sys/+/+/thing/event/+/post",
    "/ext/ntp/+/+/request",
    "/shadow/update/+/+",
    "/ota/device/inform/+/+",
    "/ota/device/progress/+/+",
    PRESENCE + "+/+",
    CONSOLE_REQUEST + "+",
)


def connect_console_client(endpoint: ConsoleEndpoint, client_id: str, timeout_s: float = 10.0) -> mqtt.Client:
    """A connected, looping paho client logged in as the console principal.

    Raises:
        EnvironmentProblem: the broker did not accept the console within `timeout_s`.
    """
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(endpoint.username, endpoint.password)
    context = ssl.create_default_context(cafile=endpoint.ca_file)
    client.tls_set_context(context)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: Any, props: object) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    # Mosquitto opens its listeners one after another: right after start the console's may lag a moment
    deadline = time.monotonic() + min(timeout_s, 3.0)
    while True:
        try:
            client.connect(endpoint.host, endpoint.port, keepalive=60)
            break
        except ConnectionRefusedError as exc:
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise _unreachable(endpoint, exc) from None
        except OSError as exc:
            raise _unreachable(endpoint, exc) from None
    client.loop_start()
    if not connected.wait(timeout_s) or refused:
        client.loop_stop()
        client.disconnect()
        why = refused[0] if refused else "no answer"
        raise EnvironmentProblem(f"console: the broker refused the console login ({why}): restart the broker")
    client.on_connect = None
    return client


def _unreachable(endpoint: ConsoleEndpoint, exc: OSError) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"console: cannot reach the broker at {endpoint.host}:{endpoint.port} ({exc.strerror or exc}):"
        " is `provision broker` still running?"
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class DeviceRecord:
    """What `provision cloud devices` shows for one device."""

    product_key: str
    device_name: str
    online: bool = False
    client_id: str | None = None
    since_ms: int | None = None
    last_ip: str | None = None
    last_seen_ms: int | None = None
    firmware_version: str | None = None
    ota_progress: dict[str, Any] | None = None


@dataclass
class _Shadow:
    reported: dict[str, Any] = field(default_factory=dict)
    desired: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=lambda: {"reported": {}, "desired": {}})
    version: int = 0
    timestamp: int = 0

    def document(self) -> dict[str, Any]:
        state = {name: part for name, part in (("reported", self.reported), ("desired", self.desired)) if part}
        return {"state": state, "metadata": self.metadata, "timestamp": self.timestamp, "version": self.version}

    def apply(self, section: str, values: dict[str, Any], version: int) -> None:
        """Merge `values` into one section; a null value deletes the key (as the platform's shadow does)."""
        now_s = int(time.time())
        target = self.reported if section == "reported" else self.desired
        for key, value in values.items():
            if value is None:
                target.pop(key, None)
                self.metadata[section].pop(key, None)
            else:
                target[key] = value
                self.metadata[section][key] = {"timestamp": now_s}
        self.version = version
        self.timestamp = now_s


class PlatformService:
    """The platform's replies and state. start() connects and subscribes; stop() disconnects."""

    def __init__(
        self, endpoint: ConsoleEndpoint, ota: OtaFileServer | None = None, peers: PeerBook | None = None
    ) -> None:
        """Args:
        peers: where the broker's connect gate records each device's address (Mosquitto sees only the gate's).
        """
        self.endpoint = endpoint
        self.ota = ota
        self.peers = peers
        self._pushes: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._devices: dict[tuple[str, str], DeviceRecord] = {}
        self._shadows: dict[tuple[str, str], _Shadow] = {}
        self._client: mqtt.Client | None = None

    def start(self) -> None:
        client = connect_console_client(self.endpoint, "platform-service")
        client.on_message = self._on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda *args: subscribed.set()
        client.subscribe([(topic, 1) for topic in SUBSCRIPTIONS])
        if not subscribed.wait(10):
            raise EnvironmentProblem("platform service: the broker did not confirm its subscriptions")
        # paho reconnects on its own after a broker restart; a clean session must subscribe again
        client.on_connect = lambda c, *args: c.subscribe([(topic, 1) for topic in SUBSCRIPTIONS])
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client = client

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    # --- state the console reads ------------------------------------------------------------------------

    def devices(self) -> list[DeviceRecord]:
        with self._lock:
            records = [DeviceRecord(**asdict(r)) for r in sorted(self._devices.values(), key=_record_key)]
        if self.peers is not None:
            for record in records:
                record.last_ip = self.peers.address_of(record.product_key, record.device_name)
        return records

    def shadow(self, product_key: str, device_name: str) -> dict[str, Any]:
        with self._lock:
            return self._shadows.setdefault((product_key, device_name), _Shadow()).document()

    def set_desired(self, product_key: str, device_name: str, desired: dict[str, Any]) -> dict[str, Any]:
        """The console's shadow set: bump the version, store desired, send the device a control message."""
        with self._lock:
            shadow = self._shadows.setdefault((product_key, device_name), _Shadow())
            shadow.apply("desired", desired, shadow.version + 1)
            control = {
                "method": "control",
                "payload": {"status": "success", "state": {"desired": shadow.desired}, "metadata": shadow.metadata},
                "version": shadow.version,
                "timestamp": shadow.timestamp,
            }
            document = shadow.document()
        self._publish(f"/shadow/get/{product_key}/{device_name}", control)
        return document

    # --- message handling -------------------------------------------------------------------------------

    def _publish(self, topic: str, body: dict[str, Any]) -> None:
        if self._client is not None:
            self._client.publish(topic, json.dumps(body, separators=(",", ":")), qos=1)

    def _record(self, product_key: str, device_name: str) -> DeviceRecord:
        return self._devices.setdefault((product_key, device_name), DeviceRecord(product_key, device_name))

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        try:
            body = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError):
            body = None
        seen = _ANY_DEVICE_UP.match(topic)
        if seen:
            with self._lock:
                self._record(*seen.groups()).last_seen_ms = _now_ms()
        if topic.startswith(CONSOLE_REQUEST):
            self._answer_console(topic[len(CONSOLE_REQUEST) :], body)
        elif match := _EVENT_POST.fullmatch(topic):
            self._reply_post(topic, match.group(3), body)
        elif match := _NTP_REQUEST.fullmatch(topic):
            self._reply_ntp(*match.groups(), body)
        elif match := _SHADOW_UPDATE.fullmatch(topic):
            self._shadow_update(*match.groups(), body)
        elif match := _OTA_UP.fullmatch(topic):
            self._ota(*match.groups(), body)
        elif match := _PRESENCE.fullmatch(topic):
            self._presence(*match.groups(), body)

    def _reply_post(self, topic: str, identifier: str, body: Any) -> None:
        method = f"thing.event.{identifier}.post"
        valid = isinstance(body, dict) and isinstance(body.get("id"), str) and isinstance(body.get("params"), dict)
        request_id = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else ""
        reply = {
            "code": CODE_OK if valid else CODE_PARAMETER_ERROR,
            "data": {},
            "id": request_id,
            "message": "success" if valid else "request parameter error",
            "method": method,
            "version": "1.0",
        }
        self._publish(topic + "_reply", reply)

    def _reply_ntp(self, product_key: str, device_name: str, body: Any) -> None:
        received = _now_ms()
        if not isinstance(body, dict) or "deviceSendTime" not in body:
            return  # the platform answers only a well-formed request; the SDK retries on its own timer
        reply = {"deviceSendTime": body["deviceSendTime"], "serverRecvTime": received, "serverSendTime": _now_ms()}
        self._publish(f"/ext/ntp/{product_key}/{device_name}/response", reply)

    def _shadow_update(self, product_key: str, device_name: str, body: Any) -> None:
        down = f"/shadow/get/{product_key}/{device_name}"
        method = body.get("method") if isinstance(body, dict) else None
        with self._lock:
            shadow = self._shadows.setdefault((product_key, device_name), _Shadow())
            if method == "get":
                reply = {
                    "method": "reply",
                    "payload": {"status": "success", "state": shadow.document()["state"], "metadata": shadow.metadata},
                    "version": shadow.version,
                    "timestamp": shadow.timestamp,
                }
            elif method == "update" and isinstance(body.get("state"), dict):
                version = body.get("version")
                reported = body["state"].get("reported", {})
                if not isinstance(version, int) or not isinstance(reported, dict):
                    reply = _shadow_error("400", "bad request")
                elif version != -1 and version <= shadow.version:
                    reply = _shadow_error("405", "version conflict")
                else:
                    shadow.apply("reported", reported, shadow.version + 1 if version == -1 else version)
                    reply = {
                        "method": "reply",
                        "payload": {"status": "success", "version": shadow.version},
                        "timestamp": shadow.timestamp,
                    }
            else:
                reply = _shadow_error("400", "bad request")
        self._publish(down, reply)

    def _ota(self, kind: str, product_key: str, device_name: str, body: Any) -> None:
        params = body.get("params") if isinstance(body, dict) else None
        if not isinstance(params, dict):
            return
        with self._lock:
            record = self._record(product_key, device_name)
            if kind == "inform" and isinstance(params.get("version"), str):
                record.firmware_version = params["version"]
            elif kind == "progress":
                record.ota_progress = params
                step = params.get("step")
                finished = isinstance(step, (int, str)) and str(step).lstrip("-").isdigit()
                if finished and (int(step) >= 100 or int(step) < 0):
                    url_path = self._pushes.pop((product_key, device_name), None)
                    if url_path is not None and self.ota is not None:
                        self.ota.withdraw(url_path)

    def _presence(self, product_key: str, device_name: str, body: Any) -> None:
        if not isinstance(body, dict) or body.get("event") not in ("online", "offline"):
            return
        with self._lock:
            record = self._record(product_key, device_name)
            record.online = body["event"] == "online"
            record.client_id = str(body.get("clientId")) if body.get("clientId") is not None else record.client_id
            record.since_ms = int(body["ts"]) if isinstance(body.get("ts"), int) else _now_ms()

    def _answer_console(self, token: str, body: Any) -> None:
        op = body.get("op") if isinstance(body, dict) else None
        device = str(body.get("device", "")) if isinstance(body, dict) else ""
        product_key, _, device_name = device.partition("/")
        answer: dict[str, Any]
        if op == "devices":
            answer = {"ok": True, "devices": [asdict(r) for r in self.devices()]}
        elif op == "shadow-get" and device_name:
            answer = {"ok": True, "shadow": self.shadow(product_key, device_name)}
        elif op == "shadow-set" and device_name and isinstance(body.get("desired"), dict):
            answer = {"ok": True, "shadow": self.set_desired(product_key, device_name, body["desired"])}
        elif op == "ota-push" and device_name and self.ota is not None:
            answer = self._ota_push(product_key, device_name, body)
        else:
            answer = {"ok": False, "error": "unknown console request"}
        self._publish(CONSOLE_RESPONSE + token, answer)

    def _ota_push(self, product_key: str, device_name: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.ota is not None
        try:
            image_path = Path(str(body["path"]))
            data = image_path.read_bytes()
        except (KeyError, OSError):
            return {"ok": False, "error": "the platform cannot read the firmware file"}
        sign_method = "Md5" if body.get("sign_method") == "Md5" else "SHA256"
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()  # the platform's integrity field, not security
        drop = body.get("drop_after")
        url_path = self.ota.offer(
            ServedImage(image_path, len(data), int(drop) if isinstance(drop, int) and drop > 0 else None)
        )
        with self._lock:
            previous = self._pushes.pop((product_key, device_name), None)
            self._pushes[(product_key, device_name)] = url_path
            self._record(product_key, device_name).ota_progress = None
        if previous is not None:
            self.ota.withdraw(previous)
        upgrade: dict[str, Any] = {
            "size": len(data),
            "sign": md5 if sign_method == "Md5" else hashlib.sha256(data).hexdigest(),
            "signMethod": sign_method,
            "url": f"https://{self.ota.url_host}:{self.ota.port}{url_path}",
            "version": str(body.get("version", "")),
            "module": str(body.get("module", "default")),
        }
        if sign_method == "Md5":
            upgrade["md5"] = md5
        message = {"code": "1000", "data": upgrade, "id": _now_ms(), "message": "success"}
        self._publish(f"/ota/device/upgrade/{product_key}/{device_name}", message)
        return {"ok": True, "upgrade": message}


def _shadow_error(code: str, text: str) -> dict[str, Any]:
    return {
        "method": "reply",
        "payload": {"status": "error", "content": {"errorcode": code, "errormessage": text}},
        "timestamp": int(time.time()),
    }


def _record_key(record: DeviceRecord) -> tuple[str, str]:
    return (record.product_key, record.device_name)

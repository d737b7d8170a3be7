"""An MQTT client that connects as a device, signed like the firmware: the role MQTT.fx plays in Aliyun's docs.

Used to poke `provision broker` by hand, by the broker and end-to-end tests (commands sent to a device,
posts observed) and by the bench. paho-mqtt runs its network loop in a background thread; received
messages queue up for `wait_message`.
"""

from __future__ import annotations

import queue
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from provision.credentials import Device
from provision.signing import NOW, MqttCredentials, Now, sign

__all__ = ["ConnectOutcome", "DeviceClient", "Message", "connect_device"]


@dataclass(frozen=True)
class ConnectOutcome:
    """What the broker answered to CONNECT. `reason` is paho's text for the CONNACK code."""

    accepted: bool
    reason: str


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 0


class DeviceClient:
    """One MQTT connection with explicit credentials (so tests can send wrong ones on purpose)."""

    def __init__(
        self,
        credentials: MqttCredentials,
        *,
        host: str,
        port: int,
        ca_file: Path | None,
        keepalive_s: int = 60,
    ) -> None:
        """Args:
        ca_file: trust this CA and use TLS (securemode 2); None: plain TCP (securemode 3).
        """
        self.credentials = credentials
        self.host = host
        self.port = port
        self.keepalive_s = keepalive_s
        self.messages: queue.Queue[Message] = queue.Queue()
        self._connack = threading.Event()
        self._disconnected = threading.Event()
        self._outcome = ConnectOutcome(False, "no answer")
        self._subacks: dict[int, list[bool]] = {}
        self._suback_event = threading.Condition()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=credentials.client_id,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        self._client.username_pw_set(credentials.username, credentials.password)
        if ca_file is not None:
            self._client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        failure = bool(getattr(reason, "is_failure", True))
        self._outcome = ConnectOutcome(not failure, str(reason))
        self._connack.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self._disconnected.set()
        self._connack.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: list, props: object) -> None:
        with self._suback_event:
            self._subacks[mid] = [not reason.is_failure for reason in reasons]
            self._suback_event.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.messages.put(Message(message.topic, bytes(message.payload), message.qos))

    def connect(self, timeout_s: float = 5.0) -> ConnectOutcome:
        """Connect and wait for CONNACK (or the connection to drop, e.g. a TLS failure)."""
        try:
            self._client.connect(self.host, self.port, keepalive=self.keepalive_s)
        except (OSError, ssl.SSLError) as exc:
            return ConnectOutcome(False, f"{type(exc).__name__}: {exc}")
        self._client.loop_start()
        if not self._connack.wait(timeout_s):
            return ConnectOutcome(False, "no CONNACK")
        return self._outcome

    def subscribe(self, topic: str, timeout_s: float = 5.0) -> bool:
        """Subscribe (QoS 1); True when the broker granted it."""
        with self._suback_event:
            result, mid = self._client.subscribe(topic, qos=1)
            if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
                return False
            if not self._suback_event.wait_for(lambda: mid in self._subacks, timeout_s):
                return False
            return all(self._subacks.pop(mid))

    def publish(self, topic: str, payload: bytes | str, timeout_s: float = 5.0) -> None:
        """Publish at QoS 1 and wait until it left (PUBACK)."""
        info = self._client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout_s)

    def wait_message(self, timeout_s: float) -> Message | None:
        try:
            return self.messages.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def wait_disconnected(self, timeout_s: float) -> bool:
        return self._disconnected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_device(
    device: Device,
    *,
    host: str,
    port: int,
    ca_file: Path | None,
    client_id: str | None = None,
    sign_method: str = "hmacsha1",
    timestamp: int | Now | None = NOW,
    keepalive_s: int = 60,
) -> tuple[DeviceClient, ConnectOutcome]:
    """Sign like the firmware and connect; the caller closes the client whatever the outcome."""
    credentials = sign(
        device.product_key,
        device.device_name,
        device.device_secret,
        client_id=client_id,
        timestamp=timestamp,
        sign_method=sign_method,
        secure_mode=2 if ca_file is not None else 3,
    )
    client = DeviceClient(credentials, host=host, port=port, ca_file=ca_file, keepalive_s=keepalive_s)
    return client, client.connect()

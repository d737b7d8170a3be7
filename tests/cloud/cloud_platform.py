"""tests/cloud helpers: a running `provision broker` subprocess and clients playing devices."""

from __future__ import annotations

import queue
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from provision.cloud.endpoint import ConsoleEndpoint, read_console_endpoint
from provision.cloud.platform import connect_console_client
from provision.credentials import Device
from provision.device_client import DeviceClient, Message, connect_device

PRODUCT_KEY = "a1CloudTst0"
DEVICE_NAMES = ("lamp-0001", "lamp-0002")


@dataclass
class RunningBroker:
    process: subprocess.Popen[str]
    cert_dir: Path
    port: int
    devices: tuple[Device, ...]
    output: Path

    def device(self, index: int = 0) -> DeviceClient:
        client, outcome = connect_device(
            self.devices[index], host="127.0.0.1", port=self.port, ca_file=self.cert_dir / "ca.pem"
        )
        assert outcome.accepted, outcome.reason
        return client

    def console_as_device(self) -> ConsoleClient:
        """A console-principal login playing a device on topics the plugin does not yet let devices use
        (shadow, OTA, broadcast: issue 10 item 3, the broker engineer's part)."""
        return ConsoleClient(read_console_endpoint(self.cert_dir))

    def cloud(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "provision.cli", "cloud", "--cert-dir", str(self.cert_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output.read_text()


class ConsoleClient:
    """DeviceClient's subscribe/publish/wait_message over a console login."""

    def __init__(self, endpoint: ConsoleEndpoint) -> None:
        self.messages: queue.Queue[Message] = queue.Queue()
        self._client = connect_console_client(endpoint, f"test-{secrets.token_hex(4)}")
        self._client.on_message = lambda c, u, m: self.messages.put(Message(m.topic, m.payload))

    def subscribe(self, topic: str) -> bool:
        done = threading.Event()
        self._client.on_subscribe = lambda *args: done.set()
        self._client.subscribe(topic, qos=1)
        return done.wait(5)

    def publish(self, topic: str, payload: bytes | str) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(5)

    def wait_message(self, timeout_s: float) -> Message | None:
        try:
            return self.messages.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

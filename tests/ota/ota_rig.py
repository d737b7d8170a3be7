"""The OTA rig: the host device as a process read line by line, the console's MQTT side, the broker's
forwarding rules between them, and the image helpers (a copy with another version, an upgrade message)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import queue
import re
import secrets
import subprocess
import threading
import time
from pathlib import Path

from ota_server import OtaFileServer

from provision.cloud.broker import REPO_ROOT, BrokerProcess, Route, die_with_parent
from provision.cloud.certs import BrokerCertificates
from provision.credentials import Device
from provision.device_client import DeviceClient, connect_device

PRODUCT_KEY = "a1OtaSuite0"
DUT = Device(PRODUCT_KEY, "ota-lamp-0001", secrets.token_hex(16), None, None, 0)
CONSOLE = Device(PRODUCT_KEY, "ota-console-01", secrets.token_hex(16), None, None, 0)
HOST_BUILD = REPO_ROOT / "build" / "host"
HOST_DEVICE = HOST_BUILD / "device" / "aliyun_device"
DESC_MARKER = b"ALINK_APP_DESC:v="  # firmware/host/device/host_ota.h
VERSION_FIELD = 65
CONSOLE_USER = f"/{PRODUCT_KEY}/{CONSOLE.device_name}/user"
UPGRADE_FROM = f"{CONSOLE_USER}/ota-upgrade"


def with_version(image: bytes, version: str) -> bytes:
    """A copy of the host device's image whose descriptor says `version` (as a new build would)."""
    at = image.index(DESC_MARKER) + len(DESC_MARKER)
    field = version.encode().ljust(VERSION_FIELD, b"\0")
    return image[:at] + field + image[at + VERSION_FIELD :]


def upgrade_message(image: bytes, url: str, version: str, *, sign_method: str = "SHA256", sign: str | None = None,
                    size: int | None = None) -> str:
    digest = hashlib.sha256(image).hexdigest() if sign_method == "SHA256" else hashlib.md5(image).hexdigest()
    data = {"size": len(image) if size is None else size, "sign": sign or digest, "signMethod": sign_method,
            "md5": hashlib.md5(image).hexdigest(), "url": url, "version": version, "module": "default",
            "extData": {}}  # fmt: skip
    return json.dumps({"code": "1000", "data": data, "id": 1, "message": "success"})


class DeviceProcess:
    """The host device with its stdout read line by line; it stays the same process across exec."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        self.lines: list[str] = []
        self._cursor = 0
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._new:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._new.notify_all()
        with self._new:
            self._new.notify_all()

    def expect(self, pattern: str, timeout_s: float = 15.0) -> re.Match[str]:
        """The next line (after the last one matched) that matches `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self._new:
            while True:
                while self._cursor < len(self.lines):
                    line = self.lines[self._cursor]
                    self._cursor += 1
                    if match := regex.search(line):
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and self._cursor >= len(self.lines)):
                    tail = "\n".join(self.lines[-30:])
                    raise AssertionError(f"no line matching {pattern!r}; device output ends:\n{tail}")
                self._new.wait(min(left, 0.2))

    def seen(self, pattern: str) -> bool:
        with self._new:
            return any(re.search(pattern, line) for line in self.lines)

    def stop(self, *, kill: bool = False) -> None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Console:
    """The console's MQTT side: publishes upgrade messages, collects the device's inform and progress."""

    def __init__(self, client: DeviceClient) -> None:
        self.client = client
        self.messages: queue.Queue = queue.Queue()

    def push(self, message: str) -> None:
        self.client.publish(UPGRADE_FROM, message)

    def wait(self, kind: str, predicate, timeout_s: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.client.wait_message(left)
            if message is None:
                break
            if message.topic == f"{CONSOLE_USER}/inbox/{kind}":
                payload = json.loads(message.payload)
                if predicate(payload["params"]):
                    return payload["params"]
        raise AssertionError(f"no {kind} message as expected within {timeout_s} s")


@dataclasses.dataclass
class OtaRig:
    broker: BrokerProcess
    certs: BrokerCertificates
    server: OtaFileServer
    image: bytes  # the running build's bytes
    tmp: Path
    nvs: Path
    nvs_keys: Path
    devices: list[DeviceProcess]
    consoles: list[DeviceClient]

    @property
    def ota_dir(self) -> Path:
        return self.tmp / "ota"

    def start_device(self, *extra: str) -> DeviceProcess:
        command = [str(HOST_DEVICE), "--nvs", str(self.nvs), "--nvs-keys", str(self.nvs_keys),
                   "--endpoint", "127.0.0.1", "--port", str(self.broker.port), "--ca", str(self.certs.ca_cert),
                   "--backoff-base-ms", "200", "--backoff-cap-ms", "1000", "--post-period-s", "60",
                   "--ota-dir", str(self.ota_dir), *extra]  # fmt: skip
        device = DeviceProcess(command)
        self.devices.append(device)
        return device

    def console(self) -> Console:
        client, outcome = connect_device(CONSOLE, host="127.0.0.1", port=self.broker.port, ca_file=self.certs.ca_cert)
        self.consoles.append(client)
        assert outcome.accepted
        assert client.subscribe(f"{CONSOLE_USER}/inbox/#")
        return Console(client)

    def serve(self, path: str, image: bytes) -> str:
        self.server.images[path] = image
        return self.server.url(path)


def routes() -> tuple[Route, ...]:
    pk, dn = DUT.product_key, DUT.device_name
    return (
        Route(UPGRADE_FROM, f"/ota/device/upgrade/{pk}/{dn}"),
        Route(f"/ota/device/inform/{pk}/{dn}", f"{CONSOLE_USER}/inbox/inform"),
        Route(f"/ota/device/progress/{pk}/{dn}", f"{CONSOLE_USER}/inbox/progress"),
    )



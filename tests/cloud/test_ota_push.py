"""`provision cloud ota push`: the upgrade message, the HTTPS download (Range, the drop hook), progress."""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from cloud_platform import PRODUCT_KEY, RunningBroker


def _get(url: str, ca: Path, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context, timeout=10)
    try:
        connection.request("GET", parts.path, headers=headers or {})
        response = connection.getresponse()
        try:
            body = response.read()
        except http.client.IncompleteRead as cut:
            body = cut.partial
        return response.status, dict(response.getheaders()), body
    finally:
        connection.close()


def test_ota_push_serves_the_image_with_ranges_and_reports_progress(running_broker: RunningBroker, tmp_path) -> None:
    dn = running_broker.devices[0].device_name
    image = tmp_path / "app.bin"
    image.write_bytes(secrets.token_bytes(100_000))
    ca = running_broker.cert_dir / "ca.pem"
    with running_broker.device(0) as device:
        assert device.subscribe(f"/ota/device/upgrade/{PRODUCT_KEY}/{dn}")
        pusher = subprocess.Popen(
            [sys.executable, "-m", "provision.cli", "cloud", "--cert-dir", str(running_broker.cert_dir), "ota", "push",
             "--device", f"{PRODUCT_KEY}/{dn}", "--firmware", str(image), "--version", "2.0.0", "--sign-method", "Md5",
             "--wait", "20", "--drop-after", "30000", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        message = device.wait_message(15)
        assert message is not None
        upgrade = json.loads(message.payload)
        data = upgrade["data"]
        assert (upgrade["code"], upgrade["message"]) == ("1000", "success")
        assert data["size"] == 100_000 and data["version"] == "2.0.0" and data["module"] == "default"
        assert (
            data["signMethod"] == "Md5" and data["sign"] == data["md5"] == hashlib.md5(image.read_bytes()).hexdigest()
        )

        status, _, first = _get(data["url"], ca)  # the drop hook cuts this one
        assert status == 200 and 0 < len(first) < 100_000
        status, headers, rest = _get(data["url"], ca, {"Range": f"bytes={len(first)}-"})
        assert status == 206 and headers["Content-Range"] == f"bytes {len(first)}-99999/100000"
        assert first + rest == image.read_bytes()
        assert _get(data["url"].rsplit("/", 2)[0] + "/wrongtoken/app.bin", ca)[0] == 404

        progress = f"/ota/device/progress/{PRODUCT_KEY}/{dn}"
        for step in ("50", "100"):
            device.publish(progress, json.dumps({"id": "1", "params": {"step": step, "desc": ""}}))
        out, err = pusher.communicate(timeout=30)
    assert pusher.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["progress"]["step"] for line in lines[:-1]] == ["50", "100"]
    assert lines[-1]["upgrade"]["data"]["url"] == data["url"]
    time.sleep(0.3)
    assert _get(data["url"], ca)[0] == 404  # valid for this push only


def test_ota_push_of_a_missing_file_is_exit_3(running_broker: RunningBroker, tmp_path) -> None:
    dn = running_broker.devices[0].device_name
    result = running_broker.cloud(
        "ota", "push", "--device", f"{PRODUCT_KEY}/{dn}", "--firmware", str(tmp_path / "none.bin"), "--version", "1",
        check=False,
    )  # fmt: skip
    assert result.returncode == 3 and "none.bin" in result.stderr

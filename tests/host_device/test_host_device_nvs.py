"""The host device reads its triple from every kind of image `provision gen-nvs` writes, and halts with a
reason on images or keys it cannot use (the board's behaviour: no triple, no connection)."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from provision.cloud.broker import REPO_ROOT
from provision.credentials import Device
from provision.gen_nvs import build_partition

BUILD = REPO_ROOT / "build" / "host"


@pytest.fixture(scope="module")
def device_binary() -> Path:
    for command in (
        ["cmake", "-S", str(REPO_ROOT / "firmware" / "host"), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Debug"],
        ["cmake", "--build", str(BUILD), "--target", "aliyun_device", "-j", str(os.cpu_count() or 1)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return BUILD / "device" / "aliyun_device"


DEVICE = Device("a1NvsTest00", "nvs-lamp-0001", secrets.token_hex(16), "pk-secret-kept", "cn-beijing", 0)


def _first_lines(binary: Path, args: list[str], until: str) -> list[str]:
    """Run the device against a port nothing listens on; return its lines up to `until`."""
    process = subprocess.Popen(
        [str(binary), *args, "--endpoint", "127.0.0.1", "--port", "9"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if until in line or len(lines) > 40:
                break
    finally:
        process.terminate()
        process.wait(timeout=10)
    return lines


@pytest.mark.parametrize(("layout", "encryption"), [
    ("aliyun", "none"), ("aliyun", "xts"), ("aliyun", "hmac"), ("esp-aliyun", "xts"),
])  # fmt: skip
def test_the_triple_is_read_from_every_image_kind(layout, encryption, device_binary, tmp_path):
    partitions = build_partition(DEVICE, layout=layout, encryption=encryption)
    (tmp_path / "nvs.bin").write_bytes(partitions.nvs)
    args = ["--nvs", str(tmp_path / "nvs.bin")]
    if partitions.nvs_keys is not None:
        (tmp_path / "keys.bin").write_bytes(partitions.nvs_keys)
        args += ["--nvs-keys", str(tmp_path / "keys.bin")]
    if partitions.hmac_key is not None:
        (tmp_path / "hmac.bin").write_bytes(partitions.hmac_key)
        args += ["--hmac-key", str(tmp_path / "hmac.bin")]
    lines = _first_lines(device_binary, args, "aliyun: connecting to")
    assert lines[-1].startswith(f"aliyun: connecting to 127.0.0.1:8883 as {DEVICE.device_name}|securemode=2,"), lines
    assert not any(DEVICE.device_secret in line for line in lines)


@pytest.mark.parametrize("wrong", ["other-xts-keys", "other-hmac-key", "no-keys-for-encrypted", "not-an-image"])
def test_unusable_images_or_keys_halt_with_a_reason(wrong, device_binary, tmp_path):
    encryption = "hmac" if wrong == "other-hmac-key" else "xts"
    partitions = build_partition(DEVICE, encryption=encryption)
    image = tmp_path / "nvs.bin"
    image.write_bytes(b"\x00" * 100 if wrong == "not-an-image" else partitions.nvs)
    args = ["--nvs", str(image)]
    if wrong == "other-xts-keys":
        other = build_partition(DEVICE, encryption="xts").nvs_keys
        assert other is not None
        (tmp_path / "keys.bin").write_bytes(other)
        args += ["--nvs-keys", str(tmp_path / "keys.bin")]
    elif wrong == "other-hmac-key":
        (tmp_path / "hmac.bin").write_bytes(secrets.token_bytes(32))
        args += ["--hmac-key", str(tmp_path / "hmac.bin")]
    lines = _first_lines(device_binary, args, "aliyun: halted:")
    assert lines and lines[-1].startswith("aliyun: halted: "), lines
    assert not any(line.startswith("aliyun: connecting") for line in lines)

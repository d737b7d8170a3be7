"""No DeviceSecret or ProductSecret leaves the plain NVS image: not in any output, log, error, manifest,
encrypted image, key file, or temporary file."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from provision_testlib import RunCli, write_csv

SECRETS = {
    "device-1": "Zx81QmVyeVNlY3JldEFscGhhMDAwMDAx",
    "device-2": "Zx81QmVyeVNlY3JldEFscGhhMDAwMDAy",
    "product": "UHJvZHVjdFNlY3JldEJyYXZvMDAwMDAw",
}
CSV_LINES = [
    "ProductKey,DeviceName,DeviceSecret,ProductSecret,Region",
    f"a1ScanPK001,scan-0001,{SECRETS['device-1']},{SECRETS['product']},cn-shanghai",
    f"a1ScanPK001,scan-0002,{SECRETS['device-2']},{SECRETS['product']},cn-shanghai",
]
BAD_CSV_LINES = [
    "ProductKey,DeviceName,DeviceSecret",
    f"a1ScanPK001,scan-0001,{SECRETS['device-1']} x",
    f"a1ScanPK001,scan-0002,{SECRETS['device-1']}",
    f"a1ScanPK001,scan-0003,{SECRETS['device-1']}",
]


def forms(secret: str) -> list[bytes]:
    return [secret.encode(), secret.encode().hex().encode(), secret.encode().hex().upper().encode()]


def test_no_secret_outside_the_plain_image(
    in_tmp: Path, run_cli: RunCli, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    temp_dir = in_tmp / "tmp"
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    write_csv(in_tmp, CSV_LINES)
    write_csv(in_tmp, BAD_CSV_LINES, name="bad.csv")

    runs = [
        run_cli("check", "--csv", "devices.csv"),
        run_cli("check", "--csv", "bad.csv"),
        run_cli("gen-nvs", "--csv", "bad.csv", "--out", "never"),
        run_cli("gen-nvs", "--csv", "devices.csv", "--out", "plain", "--layout", "esp-aliyun"),
        run_cli("gen-nvs", "--csv", "devices.csv", "--out", "xts", "--encrypt", "--layout", "esp-aliyun"),
        run_cli("gen-nvs", "--csv", "devices.csv", "--out", "hmac", "--encrypt-hmac"),
        run_cli("gen-nvs", "--csv", "devices.csv", "--out", "xts", "--encrypt"),
        run_cli("gen-nvs", "--csv", "devices.csv", "--out", "xts", "--encrypt", "--force", "--layout", "esp-aliyun"),
        run_cli("inspect", "plain/scan-0001/nvs.bin"),
        run_cli("inspect", "xts/scan-0001/nvs.bin", "--keys", "xts/scan-0001/nvs_keys.bin"),
        run_cli("inspect", "hmac/scan-0001/nvs.bin", "--hmac-key", "hmac/scan-0001/hmac_key.bin"),
        run_cli("inspect", "xts/scan-0001/nvs.bin"),
        run_cli("inspect", "xts/scan-0001/nvs.bin", "--keys", "xts/scan-0002/nvs_keys.bin"),
        run_cli(
            "sign",
            "--product-key",
            "a1ScanPK001",
            "--device-name",
            "scan-0001",
            "--device-secret",
            SECRETS["device-1"],
            "--json",
        ),
        run_cli(
            "sign",
            "--product-key",
            "a1ScanPK001",
            "--device-name",
            "scan-0001",
            "--device-secret",
            SECRETS["device-1"] + " x",
            "--client-id",
            "a|b",
        ),
        run_cli("render-ca", "--out", "ca.h"),
    ]
    assert [r.code for r in runs] == [0, 3, 3, 0, 0, 0, 3, 0, 0, 0, 0, 3, 3, 0, 3, 0]
    produced = "".join(r.out + r.err for r in runs) + caplog.text
    for name, secret in SECRETS.items():
        for form in forms(secret):
            assert form.decode() not in produced, f"{name} secret in command output or log"

    plain_images = {in_tmp / "plain" / d / "nvs.bin" for d in ("scan-0001", "scan-0002")}
    inputs = {in_tmp / "devices.csv", in_tmp / "bad.csv"}
    scanned = 0
    for path in sorted(p for p in in_tmp.rglob("*") if p.is_file()):
        assert ".tmp-" not in path.name and ".partial-" not in str(path), f"leftover temporary {path}"
        data = path.read_bytes()
        if path in plain_images:
            assert SECRETS["device-1"].encode() in data or SECRETS["device-2"].encode() in data
            continue
        if path in inputs:
            continue
        scanned += 1
        for name, secret in SECRETS.items():
            for form in forms(secret):
                assert form not in data, f"{name} secret in {path.relative_to(in_tmp)}"
    assert scanned >= 12  # 4 encrypted images, 4 key files, 3 manifests, the header
    assert list(temp_dir.iterdir()) == []
    assert not (in_tmp / "never").exists()

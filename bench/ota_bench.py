"""OTA figures: a 1 MiB image updated on the host device (firmware core, no sanitizers) through the local
platform (broker with our plugin, the test HTTPS image server with the broker's certificate).

Prints, over several runs:
- push to the new version informed: the upgrade message published -> the new image's inform arriving
  at the console (download, hash, slot switch, restart by exec, connect, subscribe);
- the same with the connection dropped once at half the image (resumed with an HTTP Range request),
  and the connections the device made (retries = connections - 1);
- the anchor: Python's own HTTPS fetch of the same image from the same server, in the same run, and the
  ratio of the update to it.

    .venv/bin/python bench/ota_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from provision.atomic import write_private_file
from provision.cloud.broker import REPO_ROOT, BrokerProcess, BrokerSettings, build_plugin
from provision.cloud.certs import ensure_certificates
from provision.gen_nvs import build_partition

sys.path.insert(0, str(REPO_ROOT / "tests" / "ota"))
from ota_rig import CONSOLE, DUT, Console, DeviceProcess, routes, upgrade_message, with_version
from ota_server import OtaFileServer

from provision.device_client import connect_device

BUILD = REPO_ROOT / "build" / "host-release"
DEVICE = BUILD / "device" / "aliyun_device"
IMAGE_BYTES = 1024 * 1024


def build_device() -> None:
    for command in (
        ["cmake", "-S", str(REPO_ROOT / "firmware" / "host"), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release",
         "-DALIYUN_SANITIZE=OFF"],
        ["cmake", "--build", str(BUILD), "--target", "aliyun_device", "-j", "2"],
    ):  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)


def one_update(work: Path, broker: BrokerProcess, server: OtaFileServer, certs, drop: bool) -> tuple[float, int]:
    """Seconds from push to the new version's inform, and the HTTPS connections the download took."""
    ota_dir = work / "ota"
    shutil.rmtree(ota_dir, ignore_errors=True)
    client, outcome = connect_device(CONSOLE, host="127.0.0.1", port=broker.port, ca_file=certs.ca_cert)
    assert outcome.accepted and client.subscribe(f"/{CONSOLE.product_key}/{CONSOLE.device_name}/user/inbox/#")
    console = Console(client)
    device = DeviceProcess([str(DEVICE), "--nvs", str(work / "nvs.bin"), "--nvs-keys", str(work / "nvs_keys.bin"),
                            "--endpoint", "127.0.0.1", "--port", str(broker.port), "--ca", str(certs.ca_cert),
                            "--post-period-s", "60", "--ota-dir", str(ota_dir)])  # fmt: skip
    try:
        device.expect(r"aliyun: online", 15)
        console.wait("inform", lambda p: p["version"] == "1.0.0")
        image = with_version(DEVICE.read_bytes(), "2.0.0")
        image += b"\0" * (IMAGE_BYTES - len(image))  # an ELF runs with trailing padding
        server.images["/fw.bin"] = image
        server.hooks.requests.clear()
        server.hooks.drop_after_bytes = IMAGE_BYTES // 2 if drop else None
        started = time.perf_counter()
        console.push(upgrade_message(image, server.url("/fw.bin"), "2.0.0"))
        console.wait("inform", lambda p: p["version"] == "2.0.0", 60)
        return time.perf_counter() - started, len(server.hooks.requests)
    finally:
        device.stop()
        client.close()


def anchor_fetch(server: OtaFileServer, ca_cert: Path) -> float:
    context = ssl.create_default_context(cafile=str(ca_cert))
    started = time.perf_counter()
    with urllib.request.urlopen(server.url("/fw.bin"), context=context) as response:
        assert len(response.read()) == IMAGE_BYTES
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    build_device()
    with tempfile.TemporaryDirectory(prefix="ota-bench-") as tmp:
        work = Path(tmp)
        certs = ensure_certificates(work / "certs")
        partitions = build_partition(DUT, encryption="xts")
        assert partitions.nvs_keys is not None
        write_private_file(work / "nvs.bin", partitions.nvs)
        write_private_file(work / "nvs_keys.bin", partitions.nvs_keys)
        settings = BrokerSettings(devices=(DUT, CONSOLE), certs=certs, host="127.0.0.1", port=0, routes=routes(),
                                  plugin=build_plugin())  # fmt: skip
        server = OtaFileServer(certs.server_cert, certs.server_key)
        server.start()
        with BrokerProcess(settings, log_to=work / "mosquitto.log") as broker:
            plain = [one_update(work, broker, server, certs, drop=False) for _ in range(args.runs)]
            dropped = [one_update(work, broker, server, certs, drop=True) for _ in range(args.runs)]
            anchor = statistics.median(anchor_fetch(server, certs.ca_cert) for _ in range(args.runs))
        server.stop()
    for label, runs in (("update", plain), ("update, dropped once at 50 %", dropped)):
        times = [t for t, _ in runs]
        retries = sorted({c - 1 for _, c in runs})
        print(f"{label:<30} median {statistics.median(times):6.3f} s  max {max(times):6.3f} s  "
              f"retries {retries}  ({len(runs)} runs, 1 MiB, push -> new version informed)")  # fmt: skip
    print(f"{'anchor: Python HTTPS fetch':<30} median {anchor:6.3f} s  (same image, same server)")
    print(f"ratio update / anchor: {statistics.median(t for t, _ in plain) / anchor:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

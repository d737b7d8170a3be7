"""Local platform figures: `provision broker` from start to listening, and 1,000 TLS devices at once.

Prints:
- start to listening: BrokerProcess.start() (connect gate bound, config, plugin init reading the rules,
  Mosquitto's sockets, the gate listening) for --starts starts, median; anchor: Mosquitto with a plain
  listener and no plugin, in the same run;
- memory per device: after --devices devices (own triples, signed CONNECT over TLS, CONNACK 0, all held open)
  minus before, divided by the device count, for Mosquitto, for the connect gate (TLS ends there; it runs in
  this process, so the devices connect from a child process forked before the broker starts) and both
  together; anchor: issue 10's 15 KiB a device (Mosquitto alone, terminating TLS itself, before the gate).

    .venv/bin/python bench/broker_bench.py [--starts 9] [--devices 1000]

Device secrets live only in this process and in Mosquitto's memory (BrokerSettings, no CSV written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import secrets
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from provision.cloud.broker import BrokerProcess, BrokerSettings, build_plugin, die_with_parent
from provision.cloud.certs import ensure_certificates
from provision.credentials import Device
from provision.signing import sign

PRODUCT_KEY = "a1BenchBrkr"
ISSUE_KIB_PER_DEVICE = 15.0


def devices(count: int) -> tuple[Device, ...]:
    return tuple(
        Device(PRODUCT_KEY, f"bench-{index:05d}", secrets.token_hex(16), None, None, index + 2)
        for index in range(count)
    )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this host (Linux /proc/net/tcp{,6}; state 0A is LISTEN)."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows, None)
            for row in rows:
                fields = row.split()
                if len(fields) > 3 and fields[3] == "0A":
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def plain_mosquitto_start_s(work: Path, port: int) -> float:
    """The anchor: Mosquitto with one plain listener, no TLS, no plugin, from exec to listening."""
    mosquitto = shutil.which("mosquitto", path="/usr/sbin:/usr/bin") or "mosquitto"
    config = work / "plain.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    began = time.perf_counter()
    process = subprocess.Popen(
        [mosquitto, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent
    )
    try:
        while port not in listening_ports():
            if process.poll() is not None:
                raise RuntimeError(f"plain mosquitto exited with {process.returncode}")
            time.sleep(0.002)
        return time.perf_counter() - began
    finally:
        process.terminate()
        process.wait()


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def connect_packet(device: Device) -> bytes:
    """MQTT 3.1.1 CONNECT (OASIS mqtt-v3.1.1 §3.1): clean session, username and password, keep-alive 300 s."""
    credentials = sign(device.product_key, device.device_name, device.device_secret)
    body = _field(b"MQTT") + bytes([4, 0xC2]) + (300).to_bytes(2, "big")
    body += _field(credentials.client_id.encode()) + _field(credentials.username.encode())
    body += _field(credentials.password.encode())
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return b"\x10" + encoded + body


async def hold_devices(port: int, ca: Path, fleet: tuple[Device, ...], control: Connection) -> None:
    """Connect every device (a few at a time, as a fleet comes online), say so, hold them until told, close."""
    context = ssl.create_default_context(cafile=str(ca))
    limit = asyncio.Semaphore(32)
    writers: list[asyncio.StreamWriter] = []

    async def one(device: Device) -> None:
        async with limit:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
            writer.write(connect_packet(device))
            await writer.drain()
            connack = await asyncio.wait_for(reader.readexactly(4), 10)
            if connack != b"\x20\x02\x00\x00":
                raise RuntimeError(f"{device.device_name}: CONNACK {connack.hex()}")
            writers.append(writer)

    await asyncio.gather(*(one(device) for device in fleet))
    await asyncio.sleep(1.0)  # let Mosquitto and the gate finish their per-client bookkeeping
    control.send("held")
    await asyncio.get_running_loop().run_in_executor(None, control.recv)
    for writer in writers:
        writer.close()


def fleet_process(ca: Path, fleet: tuple[Device, ...], control: Connection) -> None:
    """The devices' side, in a child process: the broker's gate runs in the parent, whose memory is measured."""
    port = control.recv()
    asyncio.run(hold_devices(port, ca, fleet, control))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=9)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.devices * 2 + 256  # the gate's two sockets a device (Mosquitto and its child inherit the limit)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        print(f"broker_bench: open-file limit {hard} is below {wanted}; use fewer --devices", file=sys.stderr)
        return 4
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))

    plugin = build_plugin()
    fleet = devices(args.devices)
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as work_name:
        work = Path(work_name)
        certs = ensure_certificates(work / "certs")
        settings = BrokerSettings(
            devices=fleet, certs=certs, host="127.0.0.1", port=0, tcp_port=None, max_skew_s=0, routes=(), plugin=plugin
        )
        starts: list[float] = []
        anchors: list[float] = []
        broker = BrokerProcess(settings, log_to=work / "mosquitto.log")
        for _ in range(args.starts):
            began = time.perf_counter()
            broker.start()
            starts.append(time.perf_counter() - began)
            broker.stop()
            anchors.append(plain_mosquitto_start_s(work, broker.port))
        start_ms, anchor_ms = statistics.median(starts) * 1000, statistics.median(anchors) * 1000
        print(
            f"start to listening ({len(fleet)} devices in the rules, TLS, plugin): median {start_ms:.1f} ms "
            f"of {args.starts} (min {min(starts) * 1000:.1f}, max {max(starts) * 1000:.1f})"
        )
        print(
            f"  anchor, plain Mosquitto without TLS or plugin: median {anchor_ms:.1f} ms; "
            f"ratio {start_ms / anchor_ms:.2f}"
        )

        # forked before the broker starts again: no gate thread is running to be copied half-way
        control, child_end = multiprocessing.get_context("fork").Pipe()
        fleet_child = multiprocessing.get_context("fork").Process(
            target=fleet_process, args=(certs.ca_cert, fleet, child_end)
        )
        fleet_child.start()
        try:
            with broker:
                assert broker.pid is not None
                before = rss_kib(broker.pid), rss_kib(os.getpid())
                began = time.perf_counter()
                control.send(broker.port)
                if not control.poll(300) or control.recv() != "held":
                    raise RuntimeError("the device fleet did not connect")
                took = time.perf_counter() - began
                after = rss_kib(broker.pid), rss_kib(os.getpid())
                control.send("close")
        finally:
            fleet_child.join(30)
            if fleet_child.is_alive():
                fleet_child.kill()
    if fleet_child.exitcode != 0:
        raise RuntimeError(f"the device fleet failed (exit status {fleet_child.exitcode})")
    count = len(fleet)
    mosquitto, gate = (after[0] - before[0]) / count, (after[1] - before[1]) / count
    print(f"{count} TLS devices connected at once (in {took:.1f} s), KiB a device:")
    print(f"  Mosquitto (behind the gate, no TLS): RSS {before[0]} KiB -> {after[0]} KiB, {mosquitto:.1f}")
    print(f"  connect gate (TLS, this process):    RSS {before[1]} KiB -> {after[1]} KiB, {gate:.1f}")
    print(
        f"  together: {mosquitto + gate:.1f} KiB a device; ratio to issue 10's {ISSUE_KIB_PER_DEVICE:.0f} KiB "
        f"(Mosquitto with TLS, no gate): {(mosquitto + gate) / ISSUE_KIB_PER_DEVICE:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

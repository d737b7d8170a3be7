"""The connect gate in front of Mosquitto: the refusals the plugin cannot make (a password holding a NUL byte, a
will), malformed CONNECTs closed, and the device's real address for the platform. Raw CONNECT packets over real
TLS (and plain TCP) against the gate, Mosquitto and the plugin."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest

from provision.cloud.broker import BrokerProcess, BrokerSettings
from provision.cloud.certs import BrokerCertificates
from provision.cloud.platform import DeviceRecord
from provision.cloud.platform_run import PlatformRun
from provision.credentials import Device
from provision.signing import sign

ACCEPTED = b"\x20\x02\x00\x00"
BAD_USERNAME_OR_PASSWORD = b"\x20\x02\x00\x04"
NOT_AUTHORIZED = b"\x20\x02\x00\x05"


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _remaining_length(length: int) -> bytes:
    encoded = b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            return encoded


def _packet(body: bytes) -> bytes:
    return b"\x10" + _remaining_length(len(body)) + body


def connect_packet(device: Device, **kwargs) -> bytes:
    return _packet(connect_body(device, **kwargs))


def connect_body(
    device: Device,
    *,
    secure_mode: int = 2,
    password_suffix: bytes = b"",
    will_qos: int | None = None,
    will_retain: bool = False,
) -> bytes:
    """A signed MQTT 3.1.1 CONNECT's body (OASIS §3.1), clean session, keep-alive 60 s, optionally a will."""
    credentials = sign(device.product_key, device.device_name, device.device_secret, secure_mode=secure_mode)
    flags = 0xC2
    payload = _field(credentials.client_id.encode())
    if will_qos is not None:
        flags |= 0x04 | (will_qos << 3) | (0x20 if will_retain else 0)
        payload += _field(f"/{device.product_key}/{device.device_name}/user/will".encode()) + _field(b"gone")
    payload += _field(credentials.username.encode()) + _field(credentials.password.encode() + password_suffix)
    return _field(b"MQTT") + bytes([4, flags]) + (60).to_bytes(2, "big") + payload


def exchange(
    port: int, certs: BrokerCertificates | None, packet: bytes, source: str = "127.0.0.1"
) -> tuple[bytes, bool]:
    """Send one packet; returns what came back until the gate or broker closed (or 1 s of silence), and
    whether it closed."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    conn: socket.socket = raw
    if certs is not None:
        conn = ssl.create_default_context(cafile=str(certs.ca_cert)).wrap_socket(raw, server_hostname="localhost")
    with conn:
        conn.sendall(packet)
        conn.settimeout(1)
        got = b""
        try:
            while chunk := conn.recv(64):
                got += chunk
        except TimeoutError:
            return got, False
        except (ConnectionResetError, ssl.SSLError):
            pass
        return got, True


def _gate_lines(broker: BrokerProcess) -> list[str]:
    assert broker.log_file is not None
    return [line for line in broker.log_file.read_text().splitlines() if "connect-gate:" in line]


def test_a_password_with_a_nul_byte_is_refused_and_the_same_without_it_connects(broker, broker_certs, devices):
    device = devices[0]
    got, closed = exchange(broker.port, broker_certs, connect_packet(device, password_suffix=b"\0garbage"))
    assert got == BAD_USERNAME_OR_PASSWORD and closed
    assert any("password holds a NUL byte (CONNACK 4)" in line for line in _gate_lines(broker))
    got, closed = exchange(broker.port, broker_certs, connect_packet(device))
    assert got == ACCEPTED and not closed


@pytest.mark.parametrize(("qos", "retain"), [(0, False), (0, True), (1, False), (1, True)])
def test_a_connect_with_a_will_is_refused(qos, retain, broker, broker_certs, devices):
    packet = connect_packet(devices[0], will_qos=qos, will_retain=retain)
    got, closed = exchange(broker.port, broker_certs, packet)
    assert got == NOT_AUTHORIZED and closed
    assert any("a will (the platform has none) (CONNACK 5)" in line for line in _gate_lines(broker))


def test_mqtt_5_refusals_use_its_reason_codes(broker, broker_certs, devices):
    device = devices[0]
    credentials = sign(device.product_key, device.device_name, device.device_secret)
    will = b"\x00" + _field(b"/t/will") + _field(b"gone")  # no will properties, topic, payload
    body = _field(b"MQTT") + bytes([5, 0xC6]) + (60).to_bytes(2, "big") + b"\x00"  # no properties
    body += _field(credentials.client_id.encode()) + will
    body += _field(credentials.username.encode()) + _field(credentials.password.encode())
    got, closed = exchange(broker.port, broker_certs, _packet(body))
    assert got == b"\x20\x03\x00\x87\x00" and closed  # 0x87 not authorized, no properties


def test_an_unknown_protocol_level_is_answered_unacceptable(broker, broker_certs, devices):
    body = _field(b"MQTT") + bytes([6, 0x02]) + (60).to_bytes(2, "big") + _field(b"cid")
    got, closed = exchange(broker.port, broker_certs, _packet(body))
    assert got == b"\x20\x02\x00\x01" and closed


_good_body = connect_body


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d: b"\xc0\x00", id="first packet a PINGREQ"),
        pytest.param(lambda d: b"\x11" + connect_packet(d)[1:], id="CONNECT with header flags"),
        pytest.param(lambda d: _packet(_field(b"MQTX") + _good_body(d)[6:]), id="protocol name"),
        pytest.param(lambda d: _packet(_good_body(d)[:7] + b"\xc3" + _good_body(d)[8:]), id="reserved flag"),
        pytest.param(lambda d: _packet(_good_body(d)[:7] + b"\x52" + _good_body(d)[8:]), id="password, no user name"),
        pytest.param(lambda d: _packet(_good_body(d)[:7] + b"\xd2" + _good_body(d)[8:]), id="will qos, no will"),
        pytest.param(lambda d: _packet(_good_body(d) + b"x"), id="bytes after the payload"),
        pytest.param(lambda d: _packet(_good_body(d)[:-3]), id="password runs past the end"),
        pytest.param(
            lambda d: _packet(_field(b"MQTT") + bytes([4, 0x02, 0, 60]) + _field(b"c\0d")), id="NUL in client id"
        ),
        pytest.param(
            lambda d: _packet(_field(b"MQTT") + bytes([4, 0x02, 0, 60]) + _field(b"\xff\xfe")), id="not UTF-8"
        ),
        pytest.param(lambda d: b"\x10\xff\xff\xff\xff\x7f", id="remaining length of five bytes"),
    ],
)
def test_a_malformed_connect_is_closed_without_a_connack(make, broker, broker_certs, devices):
    got, closed = exchange(broker.port, broker_certs, make(devices[0]))
    assert got == b"" and closed
    assert any("connect-gate: closed 127.0.0.1:" in line for line in _gate_lines(broker))


def test_the_plain_tcp_listener_has_the_same_gate(start_broker, devices):
    broker = start_broker(allow_tcp=True)
    assert broker.tcp_port is not None
    device = devices[1]
    nul = connect_packet(device, secure_mode=3, password_suffix=b"\0x")
    assert exchange(broker.tcp_port, None, nul) == (BAD_USERNAME_OR_PASSWORD, True)
    will = connect_packet(device, secure_mode=3, will_qos=1)
    assert exchange(broker.tcp_port, None, will) == (NOT_AUTHORIZED, True)
    assert exchange(broker.tcp_port, None, connect_packet(device, secure_mode=3)) == (ACCEPTED, False)
    # and the plugin behind it still checks the securemode of each listener
    got, closed = exchange(broker.tcp_port, None, connect_packet(device, secure_mode=2))
    assert got == b"\x20\x02\x00\x05" and closed


def test_a_connect_is_forwarded_with_what_the_device_sent_after_it(broker, broker_certs, devices):
    device = devices[2]
    ping = b"\xc0\x00"  # PINGREQ in the same write as the CONNECT: Mosquitto answers both
    got, closed = exchange(broker.port, broker_certs, connect_packet(device) + ping)
    assert got == ACCEPTED + b"\xd0\x00" and not closed


def test_the_platform_lists_the_devices_real_address_not_the_gates(
    broker_plugin: Path, broker_certs: BrokerCertificates, devices: tuple[Device, ...], tmp_path: Path
):
    settings = BrokerSettings(
        devices=devices, certs=broker_certs, port=0, plugin=broker_plugin, write_console_file=False
    )
    broker = BrokerProcess(settings, log_to=tmp_path / "mosquitto.log")
    run = PlatformRun(broker_certs, tmp_path)
    try:
        broker.start()
        run.started(broker.console_endpoint, broker.peers)
        assert run.service is not None
        device = devices[0]
        # from another loopback address than the gate's own (127.0.0.1) and Mosquitto's view (its socket)
        raw = socket.create_connection(("127.0.0.1", broker.port), timeout=5, source_address=("127.0.0.7", 0))
        context = ssl.create_default_context(cafile=str(broker_certs.ca_cert))
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(connect_packet(device))
            assert tls.recv(4) == ACCEPTED
            deadline = time.monotonic() + 5
            while not (shown := _record(run, device)) or not shown.online:
                assert time.monotonic() < deadline, "the platform never saw the device online"
                time.sleep(0.02)
            assert shown.last_ip == "127.0.0.7"
        # a refused connection from elsewhere does not move it
        exchange(broker.port, broker_certs, connect_packet(device, password_suffix=b"\0"), source="127.0.0.8")
        shown = _record(run, device)
        assert shown is not None and shown.last_ip == "127.0.0.7"
    finally:
        run.stop()
        broker.stop()


def _record(run: PlatformRun, device: Device) -> DeviceRecord | None:
    assert run.service is not None
    return next((r for r in run.service.devices() if r.device_name == device.device_name), None)

"""The SNTP responder answers a real SNTP client (ntplib) with the host clock plus its skew, and nothing else."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import ntplib
import pytest

from provision.cloud.sntp import (
    NTP_UNIX_EPOCH_OFFSET_S,
    SntpResponder,
    build_reply,
    from_ntp_timestamp,
    to_ntp_timestamp,
)

# Loopback round trips take well under a millisecond; 50 ms leaves room for a loaded CI machine.
OFFSET_TOLERANCE_S = 0.05

StartResponder = Callable[..., SntpResponder]


def _query(responder: SntpResponder, version: int = 4) -> ntplib.NTPStats:
    return ntplib.NTPClient().request(responder.host, port=responder.port, version=version, timeout=2)


def _raw_exchange(responder: SntpResponder, datagram: bytes, timeout_s: float = 0.3) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        sock.sendto(datagram, (responder.host, responder.port))
        try:
            return sock.recv(1024)
        except TimeoutError:
            return None


def _client_request(version: int = 4, mode: int = 3, transmit_unix_s: float = 0.0, length: int = 48) -> bytes:
    header = struct.pack("!B47x", (version << 3) | mode)
    packet = header[:40] + struct.pack("!Q", to_ntp_timestamp(transmit_unix_s) if transmit_unix_s else 0)
    return (packet + bytes(max(0, length - 48)))[:length]


def test_offset_is_about_zero_without_skew(start_responder: StartResponder) -> None:
    stats = _query(start_responder())
    assert abs(stats.offset) < OFFSET_TOLERANCE_S
    assert abs(stats.tx_time - time.time()) < 1.0


@pytest.mark.parametrize("skew_s", [3600.0, -90.5, -400 * 86400.0])
def test_offset_is_the_skew(start_responder: StartResponder, skew_s: float) -> None:
    stats = _query(start_responder(skew_s=skew_s))
    assert abs(stats.offset - skew_s) < OFFSET_TOLERANCE_S


@pytest.mark.parametrize("version", [3, 4])
def test_header_fields_of_the_reply(start_responder: StartResponder, version: int) -> None:
    stats = _query(start_responder(), version=version)
    assert stats.mode == 4  # server
    assert stats.version == version  # RFC 4330 section 5: copied from the request
    assert stats.leap == 0
    assert stats.stratum == 1
    assert stats.ref_id.to_bytes(4, "big") == b"LOCL"
    assert ntplib.ref_id_to_text(stats.ref_id, stats.stratum) == "uncalibrated local clock"
    assert stats.recv_time <= stats.tx_time
    # ntplib stamps its transmit time in the request; the reply must echo it as the originate timestamp
    assert abs(stats.orig_time - stats.dest_time) < 1.0


def test_originate_timestamp_is_the_clients_transmit_timestamp_bit_for_bit(start_responder: StartResponder) -> None:
    request = _client_request(transmit_unix_s=1_700_000_000.123456)
    reply = _raw_exchange(start_responder(), request)
    assert reply is not None and len(reply) == 48
    assert reply[24:32] == request[40:48]


@pytest.mark.parametrize(
    ("name", "datagram"),
    [
        ("empty", b""),
        ("short header", _client_request()[:47]),
        ("server mode", _client_request(mode=4)),
        ("symmetric active", _client_request(mode=1)),
        ("broadcast", _client_request(mode=5)),
        ("control message", _client_request(mode=6)),
        ("version 0", _client_request(version=0)),
        ("version 7", _client_request(version=7)),
        ("text", b"GET / HTTP/1.0\r\n\r\n" * 3),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_malformed_requests_are_ignored_and_the_server_keeps_answering(
    start_responder: StartResponder, name: str, datagram: bytes
) -> None:
    responder = start_responder()
    assert _raw_exchange(responder, datagram) is None, name
    assert abs(_query(responder).offset) < OFFSET_TOLERANCE_S
    deadline = time.monotonic() + 1.0  # the server counts after its sendto() returns, a moment after we read
    while responder.answered == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (responder.ignored, responder.answered) == (1, 1)


def test_trailing_extension_fields_are_tolerated_and_not_echoed(start_responder: StartResponder) -> None:
    reply = _raw_exchange(start_responder(), _client_request(length=48 + 20))
    assert reply is not None and len(reply) == 48


def test_ntp_timestamp_conversion_against_rfc_5905_epoch() -> None:
    assert to_ntp_timestamp(0.0) == NTP_UNIX_EPOCH_OFFSET_S << 32
    assert to_ntp_timestamp(0.5) == (NTP_UNIX_EPOCH_OFFSET_S << 32) | (1 << 31)
    # 2036-02-07T06:28:16Z ends era 0: the seconds field wraps to 0 (RFC 5905 section 6)
    assert to_ntp_timestamp(2_085_978_496.0) >> 32 == 0
    now = time.time()
    assert abs(from_ntp_timestamp(to_ntp_timestamp(now)) - now) < 1e-6


def test_build_reply_uses_the_given_times() -> None:
    reply = build_reply(_client_request(), receive_unix_s=1000.25, transmit_unix_s=1000.75)
    assert reply is not None
    receive, transmit = struct.unpack("!QQ", reply[32:48])
    assert from_ntp_timestamp(receive) == 1000.25
    assert from_ntp_timestamp(transmit) == 1000.75


def test_skew_can_change_between_answers(start_responder: StartResponder) -> None:
    responder = start_responder(skew_s=50.0)
    assert abs(_query(responder).offset - 50.0) < OFFSET_TOLERANCE_S
    responder.skew_s = -3600.0
    assert abs(_query(responder).offset + 3600.0) < OFFSET_TOLERANCE_S

"""The connect gate's CONNECT reader on its own: sizes, verdicts, and outside input it must never crash on."""

from __future__ import annotations

import random

import pytest

from provision.cloud.connect_packet import (
    BAD_USERNAME_OR_PASSWORD,
    NOT_AUTHORIZED,
    MalformedPacket,
    connack,
    connack_accepted,
    inspect_connect,
    packet_size,
)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _packet(body: bytes) -> bytes:
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            return b"\x10" + encoded + body


def _connect(password: bytes = b"0123abcd", flags: int = 0xC2, level: int = 4, name: bytes = b"MQTT") -> bytes:
    body = _field(name) + bytes([level, flags]) + (60).to_bytes(2, "big")
    if level == 5:
        body += b"\x00"
    body += _field(b"cid|securemode=2|")
    if flags & 0x04:
        body += (b"\x00" if level == 5 else b"") + _field(b"/t") + _field(b"gone")
    return _packet(body + _field(b"dn&pk") + _field(password))


def test_packet_size_reads_the_remaining_length():
    assert packet_size(b"\x10") is None
    assert packet_size(b"\x10\x00") == 2
    assert packet_size(b"\x10\x7f") == 2 + 127
    assert packet_size(b"\x10\x80") is None
    assert packet_size(b"\x10\x80\x01") == 3 + 128
    assert packet_size(b"\x10\xff\xff\xff\x7f") == 5 + 268_435_455
    with pytest.raises(MalformedPacket):
        packet_size(b"\x10\xff\xff\xff\xff\x01")


def test_a_plain_connect_is_forwarded_with_its_ids():
    verdict = inspect_connect(_connect())
    assert verdict.refusal is None and verdict.client_id == "cid|securemode=2|" and verdict.username == "dn&pk"
    assert inspect_connect(_connect(level=5)).refusal is None
    assert inspect_connect(_connect(level=3, name=b"MQIsdp")).refusal is None


def test_a_nul_in_the_password_anywhere_is_bad_username_or_password():
    for password in (b"\0", b"abc\0", b"\0abc", b"ab\0cd"):
        assert inspect_connect(_connect(password)).refusal == BAD_USERNAME_OR_PASSWORD
    assert inspect_connect(_connect(b"")).refusal is None


@pytest.mark.parametrize("will_flags", [0x04, 0x0C, 0x14, 0x24, 0x2C])
def test_every_will_is_not_authorized(will_flags):
    assert inspect_connect(_connect(flags=0xC2 | will_flags)).refusal == NOT_AUTHORIZED
    assert inspect_connect(_connect(flags=0xC2 | will_flags, level=5)).refusal == NOT_AUTHORIZED


def test_refusals_are_in_the_clients_protocol_version():
    assert connack(4, NOT_AUTHORIZED) == b"\x20\x02\x00\x05"
    assert connack(3, BAD_USERNAME_OR_PASSWORD) == b"\x20\x02\x00\x04"
    assert connack(5, BAD_USERNAME_OR_PASSWORD) == b"\x20\x03\x00\x86\x00"


def test_connack_accepted_needs_the_return_code():
    assert connack_accepted(b"") is None
    assert connack_accepted(b"\x20\x02\x00") is None
    assert connack_accepted(b"\x20\x02\x00\x00") is True
    assert connack_accepted(b"\x20\x02\x01\x00") is True  # session present
    assert connack_accepted(b"\x20\x02\x00\x05") is False
    assert connack_accepted(b"\x20\x03\x00\x00\x00") is True  # MQTT 5
    assert connack_accepted(b"\x20\x83\x01\x00\x00") is True  # a remaining length of two bytes
    assert connack_accepted(b"\x30\x02\x00\x00") is False


def test_random_damage_gives_a_verdict_or_malformed_never_another_error():
    rng = random.Random(10)
    originals = [_connect(), _connect(flags=0xC6), _connect(level=5), _connect(b"x\0y")]
    reached = 0
    for _ in range(20_000):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            action = rng.randrange(3)
            where = rng.randrange(len(data))
            if action == 0:
                data[where] = rng.randrange(256)
            elif action == 1 and len(data) > 2:
                del data[where]
            else:
                data.insert(where, rng.randrange(256))
        if rng.random() < 0.7:  # keep the remaining length right, so the damage reaches the fields
            header = 2 + (data[1] >> 7 if len(data) > 1 else 0)
            data = bytearray(_packet(bytes(data[header:])))
        try:
            verdict = inspect_connect(bytes(data))
        except MalformedPacket:
            continue
        reached += 1
        assert verdict.refusal in (None, 1, BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED)
    assert reached > 1000, "the damage never left a CONNECT whole: the test checks nothing"

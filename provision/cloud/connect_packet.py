"""A strict reader of the first MQTT packet of a connection, for the connect gate (provision.cloud.gate).

It decides what Mosquitto 2.0's plugin API cannot (the basic-auth event hands over the password as a C string
without its length, and no event shows the will): a password holding a NUL byte is refused with "bad user name
or password", a will with "not authorized" (the platform has no will, Aliyun "MQTT standard"), and anything
that is not a well-formed CONNECT closes the connection without a CONNACK (MQTT 3.1.1 §4.8: a malformed packet
closes the connection). What passes is forwarded unchanged: Mosquitto and the plugin still check the rest.

Formats: MQTT 3.1.1 (OASIS, §2.2.3 remaining length, §3.1 CONNECT, §3.2 CONNACK), MQTT 5.0 (§3.1.2.11
properties, §3.2.2.2 reason codes), MQTT 3.1 (protocol name "MQIsdp", level 3).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BAD_USERNAME_OR_PASSWORD",
    "NOT_AUTHORIZED",
    "UNACCEPTABLE_PROTOCOL",
    "ConnectVerdict",
    "MalformedPacket",
    "connack",
    "connack_accepted",
    "inspect_connect",
    "packet_size",
]

CONNECT = 0x10
CONNACK = 0x20
# MQTT 3.1.1 CONNACK return codes (§3.2.2.3); Alibaba's C SDK knows only 1..5
UNACCEPTABLE_PROTOCOL = 1
BAD_USERNAME_OR_PASSWORD = 4
NOT_AUTHORIZED = 5
# the same refusals as MQTT 5 reason codes (§3.2.2.2)
_V5_REASON = {UNACCEPTABLE_PROTOCOL: 0x84, BAD_USERNAME_OR_PASSWORD: 0x86, NOT_AUTHORIZED: 0x87}
_PROTOCOLS = {b"MQTT": (4, 5), b"MQIsdp": (3,)}

_FLAG_RESERVED = 0x01
_FLAG_WILL = 0x04
_FLAG_WILL_QOS = 0x18
_FLAG_WILL_RETAIN = 0x20
_FLAG_PASSWORD = 0x40
_FLAG_USERNAME = 0x80


class MalformedPacket(ValueError):
    """Not a well-formed CONNECT: the connection is closed without a CONNACK."""


@dataclass(frozen=True)
class ConnectVerdict:
    """What the gate does with a well-formed CONNECT: forward it (refusal None) or answer `connack(...)`."""

    level: int
    client_id: str
    username: str | None
    refusal: int | None = None  # a 3.1.1 return code; connack() maps it for MQTT 5
    reason: str = ""


def packet_size(head: bytes | bytearray) -> int | None:
    """The whole packet's size from its first bytes (fixed header with the remaining length), None: need more.

    Raises:
        MalformedPacket: the remaining length runs past its four bytes.
    """
    value, shift = 0, 0
    for index in range(1, min(len(head), 5)):
        byte = head[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return 1 + index + value
        shift += 7
    if len(head) >= 5:
        raise MalformedPacket("remaining length longer than four bytes")
    return None


def connack(level: int, code: int) -> bytes:
    """A refusing CONNACK (session present 0) in the client's protocol version."""
    if level == 5:
        return bytes([CONNACK, 3, 0, _V5_REASON[code], 0])
    return bytes([CONNACK, 2, 0, code])


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, count: int, what: str) -> bytes:
        if count > self.end - self.pos:
            raise MalformedPacket(f"{what} runs past the end of the packet")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def binary(self, what: str) -> bytes:
        length = int.from_bytes(self.take(2, what), "big")
        return self.take(length, what)

    def text(self, what: str) -> str:
        raw = self.binary(what)
        try:
            value = raw.decode("utf-8")  # strict: also refuses UTF-16 surrogates (§1.5.3)
        except UnicodeDecodeError:
            raise MalformedPacket(f"{what} is not UTF-8") from None
        if "\0" in value:
            raise MalformedPacket(f"{what} holds U+0000")
        return value

    def properties(self, what: str) -> None:
        """Skip MQTT 5 properties (a variable byte integer length, then that many bytes): Mosquitto reads them."""
        length, shift = 0, 0
        for _ in range(4):
            byte = self.byte(what)
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.take(length, what)
                return
            shift += 7
        raise MalformedPacket(f"{what} length longer than four bytes")


def inspect_connect(packet: bytes) -> ConnectVerdict:
    """Check one whole packet (as sized by packet_size) as the first packet of a connection.

    Raises:
        MalformedPacket: not a CONNECT, or a CONNECT that breaks the format.
    """
    if not packet or packet[0] != CONNECT:
        raise MalformedPacket("the first packet is not a CONNECT")
    size = packet_size(packet)
    if size is None or size != len(packet):
        raise MalformedPacket("the packet is not whole")
    body = 2  # the fixed header: the type byte and the remaining length, whose last byte has no high bit
    while packet[body - 1] & 0x80:
        body += 1
    reader = _Reader(packet, body, len(packet))
    name = reader.binary("protocol name")
    level = reader.byte("protocol level")
    if name not in _PROTOCOLS:
        raise MalformedPacket("unknown protocol name")
    if level not in _PROTOCOLS[name]:
        # §3.1.2.2: answer 0x01 and close; in the 3.1.1 format, the one a client of an unknown level may read
        return ConnectVerdict(4, "", None, UNACCEPTABLE_PROTOCOL, "unsupported protocol level")
    flags = reader.byte("connect flags")
    reader.take(2, "keep-alive")
    if flags & _FLAG_RESERVED:
        raise MalformedPacket("reserved connect flag set")
    will = bool(flags & _FLAG_WILL)
    if will and (flags & _FLAG_WILL_QOS) == _FLAG_WILL_QOS:
        raise MalformedPacket("will QoS 3")
    if not will and flags & (_FLAG_WILL_QOS | _FLAG_WILL_RETAIN):
        raise MalformedPacket("will QoS or retain without a will")
    if level < 5 and flags & _FLAG_PASSWORD and not flags & _FLAG_USERNAME:
        raise MalformedPacket("password without user name")
    if level == 5:
        reader.properties("properties")
    client_id = reader.text("client id")
    if will:
        if level == 5:
            reader.properties("will properties")
        reader.text("will topic")
        reader.binary("will payload")
    username = reader.text("user name") if flags & _FLAG_USERNAME else None
    password = reader.binary("password") if flags & _FLAG_PASSWORD else None
    if reader.pos != reader.end:
        raise MalformedPacket("bytes after the CONNECT payload")
    if password is not None and b"\0" in password:
        return ConnectVerdict(level, client_id, username, BAD_USERNAME_OR_PASSWORD, "password holds a NUL byte")
    if will:
        return ConnectVerdict(level, client_id, username, NOT_AUTHORIZED, "a will (the platform has none)")
    return ConnectVerdict(level, client_id, username)


def connack_accepted(head: bytes) -> bool | None:
    """Whether the first bytes the broker sent are a CONNACK accepting the connection; None: need more bytes.

    The return code (3.1.1) or reason code (5) is the second byte of the variable header in both versions.
    """
    if not head:
        return None
    if head[0] != CONNACK:
        return False
    try:
        size = packet_size(head)
    except MalformedPacket:
        return False
    if size is None:
        return None
    body = 2
    while head[body - 1] & 0x80:
        body += 1
    if len(head) < body + 2:
        return None
    return head[body + 1] == 0

"""SLIP framing as the ESP ROM serial protocol uses it (RFC 1055 with 0xC0 ends, 0xDB escapes).

Source: Espressif, "Serial Protocol" (esptool docs, advanced-topics/serial-protocol): every packet is
wrapped in 0xC0; 0xC0 inside becomes 0xDB 0xDC, 0xDB becomes 0xDB 0xDD.
"""

from __future__ import annotations

__all__ = ["SlipDecoder", "slip_encode"]

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD


def slip_encode(packet: bytes) -> bytes:
    """Wrap one packet in SLIP framing."""
    body = packet.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(bytes([END]), bytes([ESC, ESC_END]))
    return bytes([END]) + body + bytes([END])


class SlipDecoder:
    """Incremental decoder: feed raw bytes, get back every complete packet."""

    def __init__(self) -> None:
        self._frame = bytearray()
        self._in_frame = False
        self._escaped = False

    def feed(self, raw: bytes) -> list[bytes]:
        packets: list[bytes] = []
        for byte in raw:
            if byte == END:
                if self._in_frame and self._frame:
                    packets.append(bytes(self._frame))
                self._frame.clear()
                self._in_frame = True
                self._escaped = False
            elif not self._in_frame:
                continue  # line noise between frames, as the ROM ignores it
            elif self._escaped:
                self._frame.append(END if byte == ESC_END else ESC if byte == ESC_ESC else byte)
                self._escaped = False
            elif byte == ESC:
                self._escaped = True
            else:
                self._frame.append(byte)
        return packets

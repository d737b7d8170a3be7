"""SLIP framing as the ESP ROM serial protocol uses it (RFC 1055 with 0xC0 ends, 0xDB escapes), and the
protocol's data checksum.

Source: Espressif, "Serial Protocol" (esptool docs, advanced-topics/serial-protocol): every packet is
wrapped in 0xC0; 0xC0 inside becomes 0xDB 0xDC, 0xDB becomes 0xDB 0xDD. Data commands carry a checksum:
0xEF xored with every data byte.
"""

from __future__ import annotations

__all__ = ["CHECKSUM_SEED", "SlipDecoder", "slip_encode", "xor_checksum"]

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD
CHECKSUM_SEED = 0xEF


def slip_encode(packet: bytes) -> bytes:
    """Wrap one packet in SLIP framing."""
    body = packet.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(bytes([END]), bytes([ESC, ESC_END]))
    return bytes([END]) + body + bytes([END])


class SlipDecoder:
    """Incremental decoder: feed raw bytes, get back every complete packet.

    Frames are found and unescaped with bytes methods rather than byte by byte: one process serves a
    whole rack of boards, and a Python loop over every byte of every image is CPU the boards do not
    have (a real board's UART does this in hardware).
    """

    def __init__(self) -> None:
        self._frame = bytearray()  # escaped bytes of the frame in progress
        self._in_frame = False

    def feed(self, raw: bytes) -> list[bytes]:
        packets: list[bytes] = []
        at = 0
        while True:
            end = raw.find(END, at)
            if end < 0:
                if self._in_frame:
                    self._frame += raw[at:]
                return packets
            if self._in_frame:
                self._frame += raw[at:end]
                if self._frame:
                    packets.append(_unescape(bytes(self._frame)))
            self._frame.clear()
            self._in_frame = True  # bytes before the first END are line noise, as the ROM ignores them
            at = end + 1


def _unescape(frame: bytes) -> bytes:
    """Undo SLIP escaping. ESC is always the first byte of a pair, so the two replaces never overlap;
    an ESC followed by anything else (not valid SLIP) yields that byte, as a byte-wise decoder would."""
    if ESC not in frame:
        return frame
    valid_pairs = frame.count(bytes([ESC, ESC_END])) + frame.count(bytes([ESC, ESC_ESC]))
    if frame.count(ESC) == valid_pairs:
        return frame.replace(bytes([ESC, ESC_END]), bytes([END])).replace(bytes([ESC, ESC_ESC]), bytes([ESC]))
    out = bytearray()
    escaped = False
    for byte in frame:
        if escaped:
            out.append(END if byte == ESC_END else ESC if byte == ESC_ESC else byte)
            escaped = False
        elif byte == ESC:
            escaped = True
        else:
            out.append(byte)
    return bytes(out)


def xor_checksum(data: bytes, state: int = CHECKSUM_SEED) -> int:
    """The data checksum (`state` xored with every byte; esptool's `ESPLoader.checksum`), folded in halves
    as one big integer, so a 16 KiB block costs a few C-level shifts instead of a Python loop over it."""
    value = int.from_bytes(data, "little")
    width = len(data)
    while width > 1:
        half = (width + 1) // 2
        value = (value >> (8 * half)) ^ (value & ((1 << (8 * half)) - 1))
        width = half
    return (value & 0xFF) ^ state

"""An emulated board's serial link over RFC 2217, so DTR/RTS reach the board and resets behave as on a bench.

ESP dev boards wire the USB-UART's DTR and RTS to EN and GPIO0 through two transistors (Espressif,
"Boot Mode Selection" / the DevKitC schematic): RTS asserted alone pulls EN low (reset), DTR asserted
alone pulls GPIO0 low. When EN rises the chip samples GPIO0: low -> ROM download mode, high -> run the
application. EN rises through an RC, so the sample is taken a few milliseconds after the edge; esptool's
reset sequences rely on that. pyserial's `rfc2217.PortManager` does the telnet side; it is handed a small
object standing for the UART whose line and baud-rate settings drive the board.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Rfc2217Link"]

# A real board's EN RC delay is a few ms; over RFC 2217 each line change is a network round trip
# (pyserial's client waits ~50 ms for the answer), so the emulated delay is longer to keep the same order.
EN_RC_DELAY_S = 0.1


class _Uart:
    """What PortManager sets and reads; DTR/RTS changes go to the board, baud to the throttle."""

    def __init__(self, on_lines: Callable[[bool, bool], None], on_baud: Callable[[int], None]) -> None:
        self._on_lines = on_lines
        self._on_baud = on_baud
        self._dtr = False
        self._rts = False
        self._baudrate = 115200
        self.bytesize = 8
        self.parity = "N"
        self.stopbits = 1
        self.xonxoff = False
        self.rtscts = False
        self.break_condition = False
        self.cts = self.dsr = self.ri = self.cd = False

    @property
    def baudrate(self) -> int:
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self._baudrate = value
        self._on_baud(value)

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = bool(value)
        self._on_lines(self._dtr, self._rts)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = bool(value)
        self._on_lines(self._dtr, self._rts)

    def reset_input_buffer(self) -> None:
        return None

    def reset_output_buffer(self) -> None:
        return None


class Rfc2217Link:
    """Wraps a `_Link`: data in and out is telnet-escaped; `on_boot(download)` fires after each reset."""

    def __init__(self, link: Any, on_boot: Callable[[bool], None]) -> None:
        from serial.rfc2217 import PortManager

        self._link = link
        self._on_boot = on_boot
        self._en_low = False
        self._io0_low = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.uart = _Uart(self._lines_changed, link.set_baud)
        self._manager = PortManager(self.uart, self)

    @property
    def sock(self) -> socket.socket:
        return self._link.sock

    def write(self, data: bytes) -> None:
        """PortManager's telnet replies."""
        with self._lock:
            self._link.send(data)

    def recv(self) -> bytes:
        return b"".join(self._manager.filter(self._link.recv()))

    def send(self, data: bytes) -> None:
        with self._lock:
            self._link.send(b"".join(self._manager.escape(data)))

    def set_baud(self, baud: int) -> None:
        self._link.set_baud(baud)

    def _lines_changed(self, dtr: bool, rts: bool) -> None:
        en_low = rts and not dtr
        self._io0_low = dtr and not rts
        if self._en_low and not en_low:
            self._timer = threading.Timer(EN_RC_DELAY_S, self._sample_boot_mode)
            self._timer.start()
        self._en_low = en_low

    def _sample_boot_mode(self) -> None:
        if not self._en_low:
            self._on_boot(self._io0_low)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

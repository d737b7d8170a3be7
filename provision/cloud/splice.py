"""Copy bytes both ways between a device's socket (TLS or plain) and Mosquitto's, for the connect gate.

Reader and writer callbacks on the event loop, no task per connection: an idle device costs this object and
its two selector entries (two tasks per connection, one a direction, cost about 10 KiB a device in Python
objects, measured with bench/broker_bench.py). Back-pressure: while one side cannot take more, the other
side is not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable

from provision.cloud.connect_packet import connack_accepted

__all__ = ["Splice"]

_CHUNK_BYTES = 16 * 1024


class Splice:
    """Started by its constructor; `close()` ends it (also called on its own when either side closes)."""

    __slots__ = (
        "_connack",
        "_device",
        "_loop",
        "_on_accepted",
        "_on_closed",
        "_to_device",
        "_to_upstream",
        "_upstream",
        "closed",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        device: socket.socket,
        upstream: socket.socket,
        on_accepted: Callable[[], None],
        on_closed: Callable[[Splice], None],
    ) -> None:
        """Args:
        device: non-blocking; an ssl.SSLSocket after its handshake, or a plain socket.
        on_accepted: called once if Mosquitto's first bytes are a CONNACK accepting the connection.
        """
        self._loop = loop
        self._device = device
        self._upstream = upstream
        self._on_accepted = on_accepted
        self._on_closed = on_closed
        self._connack: bytes | None = b""  # the start of Mosquitto's answer until it says accepted or not
        # bytes one side could not take yet; an SSL write is retried with the same object (OpenSSL wants that)
        self._to_device: memoryview | None = None
        self._to_upstream: memoryview | None = None
        self.closed = False
        loop.add_reader(upstream.fileno(), self._upstream_readable)
        loop.add_reader(device.fileno(), self._device_readable)
        # what the device sent right behind its CONNECT may already sit decrypted in OpenSSL's buffer
        self._device_readable()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self._device, self._upstream):
            with contextlib.suppress(ValueError, OSError):  # ValueError: already closed, no descriptor
                self._loop.remove_reader(sock.fileno())
                self._loop.remove_writer(sock.fileno())
            sock.close()
        self._on_closed(self)

    # device -> Mosquitto

    def _device_readable(self) -> None:
        try:
            while self._to_upstream is None and not self.closed:
                data = self._device.recv(_CHUNK_BYTES)
                if not data:
                    self.close()
                    return
                self._send_upstream(memoryview(data))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError):  # ssl.SSLError is an OSError: a bad record, a reset
            self.close()

    def _send_upstream(self, data: memoryview) -> None:
        try:
            sent = self._upstream.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):
            self._to_upstream = data[sent:]
            self._loop.remove_reader(self._device.fileno())
            self._loop.add_writer(self._upstream.fileno(), self._upstream_writable)

    def _upstream_writable(self) -> None:
        assert self._to_upstream is not None
        try:
            sent = self._upstream.send(self._to_upstream)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        self._to_upstream = self._to_upstream[sent:] if sent < len(self._to_upstream) else None
        if self._to_upstream is None:
            self._loop.remove_writer(self._upstream.fileno())
            self._loop.add_reader(self._device.fileno(), self._device_readable)
            self._device_readable()  # OpenSSL may hold decrypted bytes the descriptor no longer signals

    # Mosquitto -> device

    def _upstream_readable(self) -> None:
        try:
            data = self._upstream.recv(_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        if self._connack is not None:
            self._connack += data[:8]
            accepted = connack_accepted(self._connack)
            if accepted is not None:
                self._connack = None
                if accepted:
                    self._on_accepted()
        self._to_device = memoryview(data)
        if not self._flush_to_device() and not self.closed:
            self._loop.remove_reader(self._upstream.fileno())
            self._loop.add_writer(self._device.fileno(), self._device_writable)

    def _device_writable(self) -> None:
        if self._flush_to_device() and not self.closed:
            self._loop.remove_writer(self._device.fileno())
            self._loop.add_reader(self._upstream.fileno(), self._upstream_readable)

    def _flush_to_device(self) -> bool:
        """Whether all of `_to_device` went out (False: wait for room, or closed)."""
        try:
            while self._to_device:
                sent = self._device.send(self._to_device)
                self._to_device = self._to_device[sent:]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            return False
        except (OSError, ValueError):
            self.close()
            return False
        self._to_device = None
        return True

"""What keeps a board process's CPU and waits off the link: esptool and pyserial adjusted for the station.

Each board process talks to its board through esptool over pyserial. Left as they are, they spend time
the wire does not need:
  - esptool compresses each image at level 9 for every board, the same megabyte every time: the station
    compresses each image once, while the boards connect (`ImageDeflater`), and board processes take
    that result (`DeflatedImages`);
  - esptool renders every packet as hex for trace lines nobody reads (`_Unformatted`), and sums each
    16 KiB block's checksum in a Python loop (`xor_checksum` is the same sum in C-level steps);
  - pyserial's socket:// port reports one byte waiting whatever is there, so esptool reads a 24 KiB
    flash read one byte per system call; and its close sleeps 0.3 s "in case of quick reconnects"
    (a board process never reconnects).
None of this changes a byte on the link.
"""

from __future__ import annotations

import array
import fcntl
import hashlib
import os
import shutil
import socket
import tempfile
import termios
import threading
import weakref
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.rom_serial import xor_checksum
from provision.station.build import Image

__all__ = ["DeflatedImages", "ImageDeflater", "close_port", "lighten_board_process"]

ESPTOOL_LEVEL = 9  # the zlib level esptool.cmds.write_flash compresses with


@dataclass(frozen=True)
class DeflatedImages:
    """Where the station leaves each image's zlib level-9 form; picklable into a board process.

    Attributes:
        directory: one `<md5>.zz` file per image, written whole (renamed into place).
        ready: a multiprocessing Event the station sets when it is done, whether or not every file was made.
        timeout_s: how long a board process waits for it before compressing by itself.
    """

    directory: str
    ready: Any
    timeout_s: float = 120.0

    def find(self, data: bytes) -> bytes | None:
        self.ready.wait(self.timeout_s)
        try:
            return (Path(self.directory) / f"{_digest(data)}.zz").read_bytes()
        except OSError:
            return None


def _digest(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class ImageDeflater:
    """Station side: compress the build's images in the background into a private directory.

    Started once the inputs are checked, it runs while the boards connect and upload the flasher stub
    (zlib releases the GIL); a board that reaches its first write before it is done waits for it. The
    images are the build's, the same for every board, and hold no secret; the directory goes at `close`.
    """

    def __init__(self, images: tuple[Image, ...], ctx: Any) -> None:
        self._images = images
        self._directory = tempfile.mkdtemp(prefix="provision-images-")
        self.shared = DeflatedImages(self._directory, ctx.Event())
        self._lock = threading.Lock()
        self._closed = False
        # Also gone if the line stops on an exception before `close` (when this object is collected).
        self._remove = weakref.finalize(self, shutil.rmtree, self._directory, ignore_errors=True)
        self._thread = threading.Thread(target=self._run, name="image deflater", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
                deflated = pool.map(lambda image: zlib.compress(image.data, ESPTOOL_LEVEL), self._images)
                for image, data in zip(self._images, deflated, strict=True):
                    final = Path(self._directory) / f"{_digest(image.data)}.zz"
                    partial = final.with_suffix(".part")
                    partial.write_bytes(data)
                    partial.replace(final)
        except OSError:
            pass  # board processes compress by themselves what is missing
        finally:
            with self._lock:
                self.shared.ready.set()
                if self._closed:
                    self._remove()

    def close(self) -> None:
        """Remove the files now, or when the compression still running ends (a line that wrote nothing
        does not wait for it)."""
        with self._lock:
            self._closed = True
            if self.shared.ready.is_set():
                self._remove()


class _PrecompressedZlib:
    """Stands in for the `zlib` module inside esptool.cmds: level-9 requests for a build image are answered
    with the station's copy; anything else (the NVS, made per board) is compressed here as before."""

    def __init__(self, images: DeflatedImages, digests: frozenset[str]) -> None:
        self._images = images
        self._digests = digests

    def compress(self, data: bytes, level: int = -1) -> bytes:
        if level == ESPTOOL_LEVEL and _digest(data) in self._digests:
            found = self._images.find(data)
            if found is not None:
                return found
        return zlib.compress(data, level)

    def __getattr__(self, name: str) -> Any:
        return getattr(zlib, name)


class _Unformatted:
    """Replaces esptool's HexFormatter: esptool builds trace lines with f-strings, which render every packet
    as hex even when tracing is off (the formatter was meant to be lazy). Board processes never trace."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __str__(self) -> str:
        return ""


def _bytes_waiting(port: Any) -> int:
    """pyserial socket:// `in_waiting`, counted by the kernel (FIONREAD) instead of "1 if readable"."""
    from serial import PortNotOpenError

    if not port.is_open:
        raise PortNotOpenError()
    count = array.array("i", [0])
    fcntl.ioctl(port._socket.fileno(), termios.FIONREAD, count)
    return count[0]


def lighten_board_process(images: tuple[Image, ...], deflated: DeflatedImages) -> None:
    """Install the adjustments above in this (board) process; the station's own process keeps the originals."""
    import esptool.cmds
    import esptool.loader
    from serial.urlhandler import protocol_socket

    esptool.loader.HexFormatter = _Unformatted  # type: ignore[misc,assignment]
    esptool.loader.ESPLoader.checksum = staticmethod(xor_checksum)  # type: ignore[method-assign,assignment]
    esptool.cmds.zlib = _PrecompressedZlib(deflated, frozenset(_digest(i.data) for i in images))  # type: ignore[assignment]
    protocol_socket.Serial.in_waiting = property(_bytes_waiting)  # type: ignore[method-assign,assignment]


def close_port(port: Any) -> None:
    """Close a board's port; a socket:// one without pyserial's 0.3 s sleep (this process never reopens it)."""
    from serial.urlhandler import protocol_socket

    if type(port) is protocol_socket.Serial and port._socket is not None:
        sock, port._socket = port._socket, None
        port.is_open = False
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the board went first
        sock.close()
        return
    port.close()

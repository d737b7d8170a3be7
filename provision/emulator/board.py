"""One emulated ESP board in download mode: the ROM bootloader's serial protocol, then the flasher stub's.

Written against Espressif's "Serial Protocol" description (esptool documentation, advanced-topics/
serial-protocol) and checked by driving it with the real esptool. Register addresses, magic values
and chip ids are read from esptool's own target classes (`esptool.targets.CHIP_DEFS`), so the
emulated chip answers exactly where esptool looks.

What it emulates, because esptool (or the station) uses it:
  SYNC, READ_REG/WRITE_REG (chip-detect magic, MAC and flash-crypt eFuses, UART divider, the SPI
  peripheral's user-command registers for flash id and SFDP), GET_SECURITY_INFO (chips that have it),
  MEM_BEGIN/DATA/END (stub upload, answered with "OHAI"), SPI_ATTACH, SPI_SET_PARAMS, CHANGE_BAUDRATE,
  FLASH_BEGIN/DATA/END, FLASH_DEFL_BEGIN/DATA/END, SPI_FLASH_MD5, ERASE_REGION, ERASE_FLASH.
Flash semantics are NOR: writing only clears bits, erasing sets a 4 KiB sector to 0xFF; the ROM erases
the whole region at BEGIN, the stub erases each sector just before it first writes to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from esptool.loader import ESPLoader
from esptool.targets import CHIP_DEFS

from provision.emulator.app_console import boot_console
from provision.emulator.rfc2217_link import Rfc2217Link
from provision.rom_serial import SlipDecoder, slip_encode, xor_checksum

__all__ = ["BoardSpec", "EmulatedBoard", "FlashMemory", "LinkTally", "parse_mac"]

SECTOR = 0x1000
BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
OP = dict(ESPLoader.ESP_CMDS)
ROM_SYNC_VALUE = 0x20120707  # the value field of the ROM's SYNC reply (stub replies 0)
# Error codes of the ROM loader (serial protocol doc, "Status bytes").
ERR_INVALID_MESSAGE = 0x05
ERR_BAD_CHECKSUM = 0x07
ERR_FLASH_WRITE = 0x08
ERR_DEFLATE = 0x0B
SPI_CMD_USR = 1 << 18  # SPI_CMD_REG bit that starts a user command (esptool run_spiflash_command)
SPIFLASH_RDID = 0x9F
SPIFLASH_RDSFDP = 0x5A
SFDP_SIGNATURE = 0x50444653
WINBOND_ID = 0xEF
WINBOND_TYPE = 0x40


def parse_mac(text: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


@dataclass(frozen=True)
class BoardSpec:
    """What one emulated board is: its chip, identity, flash file, eFuse state and injected faults.

    Attributes:
        name: label used in logs.
        chip: esptool chip name ("esp32", "esp32c3", ...).
        mac: base MAC "aa:bb:cc:dd:ee:ff" burned in the emulated eFuse.
        flash_path: file backing the SPI flash (created full of 0xFF when missing).
        flash_size: bytes of flash; a power of two.
        flash_crypt_cnt: FLASH_CRYPT_CNT eFuse value (odd = flash encryption on).
        key_purposes: purpose of eFuse key blocks 0..5 (chips with key blocks; 8 = HMAC_UP).
        disconnect_after_bytes: fault: drop the link once, after this many flash bytes were written,
            and stay unplugged (every connection dropped at once) for `unplugged_s` seconds.
        unplugged_s: how long the board stays away after the disconnect fault.
        line_baud: throttle the link to this serial line speed (10 bits per byte); None = no throttle.
        transport: "socket" (raw TCP, no modem lines: the board sits in download mode) or "rfc2217"
            (DTR/RTS reach EN/GPIO0: the board runs its application until reset into download mode,
            and a hard reset boots the application, which prints its console lines).
        link_log_path: when set, each connection appends one JSON line here when it ends: the bytes that
            crossed the link in each direction at each baud rate, and their wire time (see `LinkTally`).
    """

    name: str
    chip: str
    mac: str
    flash_path: str
    flash_size: int = 4 * 1024 * 1024
    flash_crypt_cnt: int = 0
    key_purposes: tuple[int, ...] = (0, 0, 0, 0, 0, 0)
    disconnect_after_bytes: int | None = None
    unplugged_s: float = 12.0
    line_baud: int | None = None
    transport: str = "socket"
    link_log_path: str | None = None


class FlashMemory:
    """NOR flash backed by a file through mmap, so other processes see every write at once."""

    def __init__(self, path: str, size: int) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, 0)
                os.write(fd, b"\xff" * size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.size = size

    def erase(self, offset: int, length: int) -> None:
        start = offset - offset % SECTOR
        end = min(self.size, -(-(offset + length) // SECTOR) * SECTOR)
        if start < end:
            self._map[start:end] = b"\xff" * (end - start)

    def program(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        if end > self.size:
            raise ValueError("write past the end of flash")
        old = int.from_bytes(self._map[offset:end], "little")
        self._map[offset:end] = (old & int.from_bytes(data, "little")).to_bytes(len(data), "little")

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._map[offset : offset + length])

    def close(self) -> None:
        self._map.flush()
        self._map.close()


@dataclass
class _WriteSession:
    offset: int
    compressed: bool
    written: int = 0
    inflater: zlib._Decompress | None = None
    erased_sectors: set[int] = field(default_factory=set)


class _Disconnect(Exception):
    """Raised to drop the link on purpose (fault injection)."""


@dataclass
class LinkTally:
    """What crossed one connection, counted where the emulated UART would put it on the wire.

    Bytes are counted after framing (SLIP, and telnet escaping on rfc2217 links), under the baud rate in
    force when they crossed; `wire_s` is their time on a real 8N1 line (10 bits a byte) at that rate, the
    floor no flasher can beat over this link whatever it does with its CPU.
    """

    to_board: dict[int, int] = field(default_factory=dict)  # baud -> bytes the host sent
    to_host: dict[int, int] = field(default_factory=dict)  # baud -> bytes the board sent

    def add(self, direction: dict[int, int], baud: int, count: int) -> None:
        direction[baud] = direction.get(baud, 0) + count

    @property
    def wire_s(self) -> float:
        return sum(
            count * BITS_PER_BYTE / baud
            for direction in (self.to_board, self.to_host)
            for baud, count in direction.items()
        )

    def as_json(self) -> str:
        return json.dumps(
            {
                "to_board": {str(k): v for k, v in self.to_board.items()},
                "to_host": {str(k): v for k, v in self.to_host.items()},
                "wire_s": round(self.wire_s, 6),
            }
        )


class _Link:
    """A connected client socket with an optional line-speed throttle in each direction.

    The link starts at the ROM's 115200 baud and follows CHANGE_BAUDRATE, up to `line_baud` when set
    (the most the emulated USB-UART bridge carries), 10 bits on the wire per byte (8N1). Throttled, each
    byte takes that long to arrive; unthrottled, bytes are only counted.
    """

    def __init__(self, sock: socket.socket, line_baud: int | None) -> None:
        self.sock = sock
        self.line_baud = line_baud
        self.tally = LinkTally()
        self._baud = ESPLoader.ESP_ROM_BAUD
        self._seconds_per_byte = 0.0
        self._rx_free_at = 0.0
        self._tx_free_at = 0.0
        self.set_baud(ESPLoader.ESP_ROM_BAUD)

    def set_baud(self, baud: int) -> None:
        self._baud = min(baud, self.line_baud) if self.line_baud else baud
        if self.line_baud:
            self._seconds_per_byte = BITS_PER_BYTE / self._baud

    def _pace(self, free_at: float, count: int) -> float:
        if not self._seconds_per_byte:
            return 0.0
        free_at = max(time.monotonic(), free_at) + count * self._seconds_per_byte
        delay = free_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return free_at

    def recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the host closed the port")
        self.tally.add(self.tally.to_board, self._baud, len(data))
        self._rx_free_at = self._pace(self._rx_free_at, len(data))
        return data

    def send(self, data: bytes) -> None:
        self.tally.add(self.tally.to_host, self._baud, len(data))
        self._tx_free_at = self._pace(self._tx_free_at, len(data))
        self.sock.sendall(data)


class EmulatedBoard:
    """Serves one board on a loopback TCP port (esptool port `socket://127.0.0.1:PORT`).

    Each new connection is a board freshly reset into its ROM bootloader; the flash persists.
    """

    def __init__(self, spec: BoardSpec, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if spec.chip not in CHIP_DEFS:
            raise ValueError(f"unknown chip {spec.chip!r}")
        self.spec = spec
        self.rom = CHIP_DEFS[spec.chip]
        self.flash = FlashMemory(spec.flash_path, spec.flash_size)
        self._fault_armed = spec.disconnect_after_bytes is not None
        self._unplugged_until = 0.0
        self._flash_bytes_written = 0
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((host, port))
        self._server.listen(4)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"board-{spec.name}", daemon=True)

    @property
    def url(self) -> str:
        scheme = "rfc2217" if self.spec.transport == "rfc2217" else "socket"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=5)
        self.flash.close()

    # --- connection handling -------------------------------------------------------------------

    def _serve(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                if time.monotonic() < self._unplugged_until:
                    continue  # nobody there: the cable is out
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(0.2)
                link = _Link(conn, self.spec.line_baud)
                try:
                    self._run_session(link)
                finally:
                    self._log_link(link.tally)

    def _log_link(self, tally: LinkTally) -> None:
        if self.spec.link_log_path and (tally.to_board or tally.to_host):
            with open(self.spec.link_log_path, "a", encoding="utf-8") as log:
                log.write(tally.as_json() + "\n")

    def _run_session(self, raw_link: _Link) -> None:
        link: Any = raw_link
        state = {"session": _Session(self.rom), "download": True}
        if self.spec.transport == "rfc2217":
            state["download"] = False  # powered on, running whatever the flash holds

            def on_boot(download: bool) -> None:
                state["session"] = _Session(self.rom)
                state["download"] = download
                if not download:
                    banner = boot_console(self.flash)
                    with contextlib.suppress(OSError):
                        link.send(banner)

            link = Rfc2217Link(raw_link, on_boot)
        decoder = SlipDecoder()
        while not self._stop.is_set():
            session = state["session"]
            try:
                raw = link.recv()
            except TimeoutError:
                continue
            except OSError:
                return
            if not state["download"]:
                continue  # the application ignores the flasher's bytes
            for packet in decoder.feed(raw):
                try:
                    reply = self._handle(session, packet)
                except _Disconnect:
                    self._unplugged_until = time.monotonic() + self.spec.unplugged_s
                    link.sock.shutdown(socket.SHUT_RDWR)
                    return
                try:
                    if reply:
                        link.send(reply)
                except OSError:
                    return
                if packet[1:2] == bytes([OP["CHANGE_BAUDRATE"]]):
                    link.set_baud(struct.unpack_from("<I", packet, 8)[0])

    # --- protocol ------------------------------------------------------------------------------

    def _reply(self, session: _Session, op: int, value: int = 0, data: bytes = b"", error: int = 0) -> bytes:
        if session.stub:
            status = bytes([1 if error else 0, error])
        else:
            status = bytes([1 if error else 0, error, 0, 0])
        body = data + status
        return slip_encode(struct.pack("<BBHI", 1, op, len(body), value) + body)

    def _handle(self, session: _Session, packet: bytes) -> bytes:
        if len(packet) < 8 or packet[0] != 0:
            return b""
        _, op, length, checksum = struct.unpack_from("<BBHI", packet)
        data = packet[8 : 8 + length]
        handler = _HANDLERS.get(op)
        if handler is None:
            return self._reply(session, op, error=ERR_INVALID_MESSAGE)
        return handler(self, session, op, data, checksum)

    def _sync(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        value = 0 if session.stub else ROM_SYNC_VALUE
        return self._reply(session, op, value) * 8

    def _read_reg(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        (addr,) = struct.unpack_from("<I", data)
        return self._reply(session, op, session.read_reg(addr, self.spec))

    def _write_reg(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        addr, value, mask, _delay = struct.unpack_from("<IIII", data)
        session.write_reg(addr, value, mask, self.spec)
        return self._reply(session, op)

    def _security_info(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        if self.rom.USES_MAGIC_VALUE:
            return self._reply(session, op, error=ERR_INVALID_MESSAGE)  # ESP32/ESP8266 ROMs lack it
        purposes = (list(self.spec.key_purposes) + [0] * 7)[:7]
        info = struct.pack("<IB7BII", 0, self.spec.flash_crypt_cnt, *purposes, self.rom.IMAGE_CHIP_ID, 0)
        return self._reply(session, op, data=info)

    def _ok(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        return self._reply(session, op)

    def _mem_data(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        if not _checksum_ok(data, checksum):
            return self._reply(session, op, error=ERR_BAD_CHECKSUM)
        return self._reply(session, op)

    def _mem_end(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        stay_in_loader, entry = struct.unpack_from("<II", data)
        reply = self._reply(session, op)
        if stay_in_loader == 0 and entry != 0:
            session.stub = True  # the uploaded flasher stub starts and greets
            reply += slip_encode(b"OHAI")
        return reply

    def _flash_begin(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        size, _blocks, _block_size, offset = struct.unpack_from("<IIII", data)
        if offset + size > self.flash.size:
            return self._reply(session, op, error=ERR_FLASH_WRITE)
        compressed = op == OP["FLASH_DEFL_BEGIN"]
        session.write = _WriteSession(offset, compressed, inflater=zlib.decompressobj() if compressed else None)
        if not session.stub:
            self.flash.erase(offset, size)  # the ROM erases the whole region up front
        return self._reply(session, op)

    def _flash_data(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        write = session.write
        if write is None:
            return self._reply(session, op, error=ERR_INVALID_MESSAGE)
        (length,) = struct.unpack_from("<I", data)
        payload = data[16 : 16 + length]
        if not _checksum_ok(data, checksum):
            return self._reply(session, op, error=ERR_BAD_CHECKSUM)
        if write.inflater is not None:
            try:
                payload = write.inflater.decompress(payload)
            except zlib.error:
                return self._reply(session, op, error=ERR_DEFLATE)
        self._program(session, write, payload)
        return self._reply(session, op)

    def _program(self, session: _Session, write: _WriteSession, payload: bytes) -> None:
        at = write.offset + write.written
        if self._fault_armed and self.spec.disconnect_after_bytes is not None:
            room = self.spec.disconnect_after_bytes - self._flash_bytes_written
            if room < len(payload):
                self._fault_armed = False
                self._write_bytes(session, write, at, payload[: max(room, 0)])
                raise _Disconnect
        self._write_bytes(session, write, at, payload)

    def _write_bytes(self, session: _Session, write: _WriteSession, at: int, payload: bytes) -> None:
        if session.stub:
            for sector in range(at // SECTOR, -(-(at + len(payload)) // SECTOR)):
                if sector not in write.erased_sectors:
                    self.flash.erase(sector * SECTOR, SECTOR)
                    write.erased_sectors.add(sector)
        self.flash.program(at, payload)
        write.written += len(payload)
        self._flash_bytes_written += len(payload)

    def _flash_end(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        session.write = None
        return self._reply(session, op)

    def _md5(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        addr, size = struct.unpack_from("<II", data)
        digest = hashlib.md5(self.flash.read(addr, size), usedforsecurity=False)
        # The ROM answers in hex text, the stub in 16 raw bytes (serial protocol doc, SPI_FLASH_MD5).
        body = digest.digest() if session.stub else digest.hexdigest().encode("ascii")
        return self._reply(session, op, data=body)

    def _read_flash(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        # Stub READ_FLASH (esptool loader.read_flash): the status reply, then the data in frames of
        # sector_size bytes, then the MD5 of it all in one 16-byte frame. The host's acknowledgements
        # (4-byte frames) pace the real stub; this one sends at once and the link paces it by baud.
        if not session.stub:
            return self._reply(session, op, error=ERR_INVALID_MESSAGE)
        offset, size, sector_size, _packet_size = struct.unpack_from("<IIII", data)
        content = self.flash.read(offset, size)
        frames = [slip_encode(content[at : at + sector_size]) for at in range(0, size, sector_size)]
        digest = slip_encode(hashlib.md5(content, usedforsecurity=False).digest())
        return self._reply(session, op) + b"".join(frames) + digest

    def _erase_region(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        if not session.stub:
            return self._reply(session, op, error=ERR_INVALID_MESSAGE)
        offset, size = struct.unpack_from("<II", data)
        self.flash.erase(offset, size)
        return self._reply(session, op)

    def _erase_flash(self, session: _Session, op: int, data: bytes, checksum: int) -> bytes:
        if not session.stub:
            return self._reply(session, op, error=ERR_INVALID_MESSAGE)
        self.flash.erase(0, self.flash.size)
        return self._reply(session, op)


def _checksum_ok(data: bytes, checksum: int) -> bool:
    (length,) = struct.unpack_from("<I", data)
    return xor_checksum(data[16 : 16 + length]) == (checksum & 0xFF)


class _Session:
    """State that lives from one reset into the bootloader to the next."""

    def __init__(self, rom: type) -> None:
        self.rom = rom
        self.stub = False
        self.write: _WriteSession | None = None
        self.regs: dict[int, int] = {}

    def _fixed_registers(self, spec: BoardSpec) -> dict[int, int]:
        rom = self.rom
        mac = parse_mac(spec.mac)
        high, low = struct.unpack(">II", b"\x00\x00" + mac)
        regs: dict[int, int] = {}
        if rom.USES_MAGIC_VALUE:
            regs[ESPLoader.CHIP_DETECT_MAGIC_REG_ADDR] = rom.MAGIC_VALUE
        if hasattr(rom, "MAC_EFUSE_REG"):  # ESP32-S2 and later: MAC0 word then MAC1 (esptool read_mac)
            regs[rom.MAC_EFUSE_REG] = low
            regs[rom.MAC_EFUSE_REG + 4] = high
        else:  # ESP32: eFuse words 1 and 2 of block 0
            regs[rom.EFUSE_RD_REG_BASE + 4] = low
            regs[rom.EFUSE_RD_REG_BASE + 8] = high
        xtal_hz = 40_000_000
        regs[rom.UART_CLKDIV_REG] = int(xtal_hz * getattr(rom, "XTAL_CLK_DIVIDER", 1) / ESPLoader.ESP_ROM_BAUD)
        crypt_reg = getattr(rom, "EFUSE_SPI_BOOT_CRYPT_CNT_REG", None)
        if crypt_reg is not None:
            mask = rom.EFUSE_SPI_BOOT_CRYPT_CNT_MASK
            shift = (mask & -mask).bit_length() - 1
            regs[crypt_reg] = regs.get(crypt_reg, 0) | ((spec.flash_crypt_cnt << shift) & mask)
        for block, purpose in enumerate(spec.key_purposes):
            reg = getattr(rom, f"EFUSE_PURPOSE_KEY{block}_REG", None)
            if reg is not None:
                key_shift = getattr(rom, f"EFUSE_PURPOSE_KEY{block}_SHIFT")
                regs[reg] = regs.get(reg, 0) | (purpose << key_shift)
        return regs

    def read_reg(self, addr: int, spec: BoardSpec) -> int:
        if addr in self.regs:
            return self.regs[addr]
        if addr == getattr(self.rom, "SPI_REG_BASE", -1):
            return 0  # SPI_CMD_REG: the user command has always finished
        return self._fixed_registers(spec).get(addr, 0)

    def write_reg(self, addr: int, value: int, mask: int, spec: BoardSpec) -> None:
        old = self.read_reg(addr, spec)
        self.regs[addr] = (old & ~mask) | (value & mask)
        base = getattr(self.rom, "SPI_REG_BASE", None)
        if base is not None and addr == base and value & SPI_CMD_USR:
            self.regs[addr] = 0
            self._run_spi_command(spec)

    def _run_spi_command(self, spec: BoardSpec) -> None:
        base = self.rom.SPI_REG_BASE
        command = self.regs.get(base + self.rom.SPI_USR2_OFFS, 0) & 0xFF
        if command == SPIFLASH_RDID:
            capacity = spec.flash_size.bit_length() - 1
            result = (capacity << 16) | (WINBOND_TYPE << 8) | WINBOND_ID
        elif command == SPIFLASH_RDSFDP:
            result = SFDP_SIGNATURE
        else:
            result = 0
        self.regs[base + self.rom.SPI_W0_OFFS] = result


_HANDLERS = {
    OP["SYNC"]: EmulatedBoard._sync,
    OP["READ_REG"]: EmulatedBoard._read_reg,
    OP["WRITE_REG"]: EmulatedBoard._write_reg,
    OP["GET_SECURITY_INFO"]: EmulatedBoard._security_info,
    OP["MEM_BEGIN"]: EmulatedBoard._ok,
    OP["MEM_DATA"]: EmulatedBoard._mem_data,
    OP["MEM_END"]: EmulatedBoard._mem_end,
    OP["SPI_ATTACH"]: EmulatedBoard._ok,
    OP["SPI_SET_PARAMS"]: EmulatedBoard._ok,
    OP["CHANGE_BAUDRATE"]: EmulatedBoard._ok,
    OP["FLASH_BEGIN"]: EmulatedBoard._flash_begin,
    OP["FLASH_DATA"]: EmulatedBoard._flash_data,
    OP["FLASH_END"]: EmulatedBoard._flash_end,
    OP["FLASH_DEFL_BEGIN"]: EmulatedBoard._flash_begin,
    OP["FLASH_DEFL_DATA"]: EmulatedBoard._flash_data,
    OP["FLASH_DEFL_END"]: EmulatedBoard._flash_end,
    OP["SPI_FLASH_MD5"]: EmulatedBoard._md5,
    OP["ERASE_REGION"]: EmulatedBoard._erase_region,
    OP["READ_FLASH"]: EmulatedBoard._read_flash,
    OP["ERASE_FLASH"]: EmulatedBoard._erase_flash,
}

"""Serial ports: pass URLs through, bind slots to USB serial numbers or locations, discover boards.

A slot written `usb-serial=SERIAL` or `usb-location=1-1.4` keeps its board when the OS renumbers
/dev/ttyUSB*: it is resolved to whatever device path carries that serial number or sits at that USB
location (pyserial's `list_ports`). Anything else (`/dev/ttyUSB0`, `socket://h:p`, `rfc2217://h:p`)
is used as given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from provision.errors import EnvironmentProblem, InputError

__all__ = ["Slot", "discover_slots", "list_usb_ports", "resolve_slot", "watch_new_slots"]

SERIAL_PREFIX = "usb-serial="
LOCATION_PREFIX = "usb-location="
# USB-UART bridges found on ESP32 boards, and Espressif's own USB (vendor ids from the USB-IF list).
KNOWN_VIDS = {0x303A: "Espressif", 0x10C4: "Silicon Labs CP210x", 0x1A86: "WCH CH34x", 0x0403: "FTDI"}


@dataclass(frozen=True)
class Slot:
    """A place on the line: `name` is what the operator sees, `device` what esptool opens."""

    name: str
    device: str


def list_usb_ports() -> list[Any]:
    from serial.tools import list_ports

    return [p for p in list_ports.comports() if p.vid is not None]


def resolve_slot(spec: str, ports: Iterable[Any] | None = None) -> Slot:
    """Turn one --port value into a slot.

    Raises:
        InputError: a usb-serial / usb-location that no connected port has.
    """
    if not spec.startswith((SERIAL_PREFIX, LOCATION_PREFIX)):
        return Slot(spec, spec)
    candidates = list(ports) if ports is not None else list_usb_ports()
    if spec.startswith(SERIAL_PREFIX):
        wanted = spec.removeprefix(SERIAL_PREFIX)
        found = [p for p in candidates if p.serial_number == wanted]
    else:
        wanted = spec.removeprefix(LOCATION_PREFIX)
        found = [p for p in candidates if p.location == wanted]
    if not found:
        raise InputError(f"--port {spec}: no connected serial port matches: is the board plugged in?")
    if len(found) > 1:
        raise InputError(f"--port {spec}: {len(found)} ports match: bind by usb-location instead")
    return Slot(spec, found[0].device)


def slot_for(port: Any) -> Slot:
    """The most stable name for a discovered port: its serial number, else its USB location."""
    if port.serial_number:
        return Slot(SERIAL_PREFIX + port.serial_number, port.device)
    if port.location:
        return Slot(LOCATION_PREFIX + port.location, port.device)
    return Slot(port.device, port.device)


def discover_slots(ports: Sequence[Any] | None = None) -> list[Slot]:
    """Every USB serial port of a known USB-UART bridge or Espressif USB.

    Raises:
        EnvironmentProblem: none found.
    """
    found = [p for p in (ports if ports is not None else list_usb_ports()) if p.vid in KNOWN_VIDS]
    if not found:
        raise EnvironmentProblem(
            "no ESP board found on USB: plug one in, pass --port, or try --emulate N to run with emulated boards"
        )
    return [slot_for(p) for p in sorted(found, key=lambda p: p.device)]


def watch_new_slots(list_ports: Callable[[], Sequence[Any]] = list_usb_ports) -> Callable[[set[str]], list[Slot]]:
    """A poller for --ports-watch: each call returns the boards plugged in since the last call.

    A port counts as new once per plug-in: it must disappear (board unplugged) before the same port
    is flashed again, so a board left on the line is not flashed over and over.
    """
    present: set[str] = set()

    def poll(busy: set[str]) -> list[Slot]:
        now = [p for p in list_ports() if p.vid in KNOWN_VIDS]
        devices = {p.device for p in now}
        present.intersection_update(devices)
        fresh = [slot_for(p) for p in now if p.device not in present]
        present.update(devices)
        return [slot for slot in fresh if slot.name not in busy]

    return poll

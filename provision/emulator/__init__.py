"""Emulated ESP boards in download mode, for running the factory line with no hardware.

`EmulatedRack` starts a separate process (`python -m provision.emulator`) holding one `EmulatedBoard`
per `BoardSpec`, each on its own loopback port; the station talks to them with the real esptool
through `socket://127.0.0.1:PORT`. The rack lives in its own process so that killing the station
(SIGKILL tests) leaves the boards, and their flash files, as real boards would be left.
"""

from __future__ import annotations

from provision.emulator.board import BoardSpec, EmulatedBoard, FlashMemory, parse_mac
from provision.emulator.rack import EmulatedRack, demo_specs

__all__ = ["BoardSpec", "EmulatedBoard", "EmulatedRack", "FlashMemory", "demo_specs", "parse_mac"]

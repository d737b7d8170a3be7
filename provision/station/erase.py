"""`provision erase`: wipe a board's credential partitions, read them back blank, tell the ledger.

A triple whose board was erased and read back blank by the station may be released as free again
(`ledger release`); without that proof a released triple that reached a board is retired.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from provision.errors import EnvironmentProblem, ProvisionError
from provision.station.build import FirmwareBuild

__all__ = ["EraseResult", "erase_board"]


@dataclass(frozen=True)
class EraseResult:
    mac: str
    regions: tuple[str, ...]
    device_name: str | None  # the triple the ledger had bound to this MAC, now marked erased


def erase_board(device: str, build: FirmwareBuild, ledger: object | None, *, station: str) -> EraseResult:
    """Erase the credential partitions of the board on `device` and prove them blank.

    Raises:
        EnvironmentProblem: no board answers on `device`.
        ProvisionError: a region did not read back blank (nothing is recorded then).
    """
    from esptool.cmds import attach_flash, detect_chip

    from provision.ledger import Claim

    try:
        esp = detect_chip(device, 115200, connect_attempts=3)
    except Exception as exc:
        raise EnvironmentProblem(f"--port {device}: no answer from a board in download mode: check BOOT/EN") from exc
    try:
        mac = ":".join(f"{b:02x}" for b in esp.read_mac())
        esp = esp.run_stub()
        attach_flash(esp)
        parts = [p for p in (build.nvs, build.nvs_keys) if p is not None]
        for part in parts:
            esp.erase_region(part.offset, part.size)
        for part in parts:
            blank = hashlib.md5(b"\xff" * part.size, usedforsecurity=False).hexdigest()
            if esp.flash_md5sum(part.offset, part.size) != blank:
                raise ProvisionError(f"--port {device}: {part.label} did not read back blank after the erase")
    finally:
        esp._port.close()
    name = None
    if ledger is not None:
        bound = ledger.bound_to(mac, [r.product_key for r in ledger.rows()])  # type: ignore[attr-defined]
        if bound is not None:
            claim = Claim(bound.product_key, bound.device_name, mac, again=True)
            ledger.record(claim, "erased", "erased and read back blank", station=station)  # type: ignore[attr-defined]
            name = f"{bound.product_key}/{bound.device_name}"
    return EraseResult(mac, tuple(p.label for p in parts), name)

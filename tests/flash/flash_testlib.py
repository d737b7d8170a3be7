"""Helpers for the factory-line tests: run the CLI, make device files and emulated board specs."""

from __future__ import annotations

import csv
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from provision.emulator import BoardSpec

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_cli(*args: str, timeout: float = 180, cwd: Path | None = None) -> Run:
    """`provision ARGS` in a child process, as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "provision.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**os.environ, "COLUMNS": "200"},
    )
    return Run(done.returncode, done.stdout, done.stderr)


def write_devices(path: Path, count: int, *, product_key: str = "a1TestProd9", prefix: str = "board") -> Path:
    """A device file with fresh secrets from `secrets` (never reused between tests)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ProductKey", "DeviceName", "DeviceSecret", "Region"])
        for n in range(count):
            writer.writerow([product_key, f"{prefix}-{n:04d}", secrets.token_hex(16), "cn-shanghai"])
    return path


def read_secrets(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [row["DeviceSecret"] for row in csv.DictReader(handle)]


def board_specs(
    directory: Path, count: int, *, chip: str = "esp32", first: int = 1, **extra: object
) -> list[BoardSpec]:
    return [
        BoardSpec(
            name=f"b{n}",
            chip=chip,
            mac=f"02:7e:57:00:{n >> 8:02x}:{n & 0xFF:02x}",
            flash_path=str(directory / f"board-{n}.bin"),
            **extra,  # type: ignore[arg-type]
        )
        for n in range(first, first + count)
    ]


def wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False

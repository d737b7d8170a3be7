"""A rack of emulated boards in a child process, and the spec files that describe it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from provision.emulator.board import BoardSpec
from provision.errors import EnvironmentProblem

__all__ = ["EmulatedRack", "demo_specs", "load_specs", "write_specs"]

# Locally administered unicast prefix (bit 1 of the first octet set): these MACs are made up and say so.
EMULATED_MAC_PREFIX = "02:e5:00"


def demo_specs(
    count: int, directory: Path, *, chip: str = "esp32", line_baud: int | None = None, transport: str = "socket"
) -> list[BoardSpec]:
    """Specs for `count` emulated boards with stable MACs, so a rerun meets the same boards again."""
    return [
        BoardSpec(
            name=f"emulated-{slot + 1}",
            chip=chip,
            mac=f"{EMULATED_MAC_PREFIX}:00:{(slot + 1) >> 8:02x}:{(slot + 1) & 0xFF:02x}",
            flash_path=str(directory / f"emulated-{slot + 1}.flash.bin"),
            line_baud=line_baud,
            transport=transport,
        )
        for slot in range(count)
    ]


def write_specs(specs: list[BoardSpec], path: Path) -> None:
    path.write_text(json.dumps([dataclasses.asdict(spec) for spec in specs]), encoding="utf-8")


def load_specs(path: Path) -> list[BoardSpec]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [BoardSpec(**{**item, "key_purposes": tuple(item["key_purposes"])}) for item in raw]


class EmulatedRack:
    """Context manager: start the boards in a child process, expose their port URLs, stop them."""

    def __init__(self, specs: list[BoardSpec]) -> None:
        self.specs = specs
        self.urls: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> EmulatedRack:
        for spec in self.specs:
            Path(spec.flash_path).parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            spec_path = Path(handle.name)
        try:
            write_specs(self.specs, spec_path)
            # Its own session: a Ctrl-C on the terminal is the caller's to handle (it stops the rack); the
            # emulator interrupted in its imports would print a traceback of its own.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "provision.emulator", str(spec_path)],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
            assert self._process.stdout is not None
            line = self._process.stdout.readline()
        except BaseException:  # Ctrl-C while it starts: __exit__ will not run, so stop it here
            self.stop()
            raise
        finally:
            spec_path.unlink(missing_ok=True)
        if not line:
            self.stop()
            raise EnvironmentProblem("the board emulator did not start: run `python -m provision.emulator` to see why")
        self.urls = json.loads(line)["urls"]
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> EmulatedRack:
        return self.start() if self._process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

"""Whole-line expectations for the suite, and the restart check every case gets.

Serial output reaches pytest-embedded in chunks (QEMU, boards): a pattern like `aliyun: subscribed (\\S+)`
matched the first chunk of a line (`/`). Every expectation here matches from a line start through the line
end (`\\r\\n` on ESP-IDF's console, `\\n` on the host). The same search also watches for a restart: the ROM's
`rst:` line after the first (the boot pytest-embedded started), ESP-IDF's `Rebooting...` (panic, watchdog,
esp_restart) or the host build's `host: reboot requested`. A case that sees one fails at once; a restart
after a case's last expectation fails it at teardown (conftest reads the DUT's whole log).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

# ESP32 ("rst:0x1 (POWERON_RESET),boot:...") and ESP32-C3 ("rst:0x1 (POWERON),boot:...") ROM banners.
ROM_RESET = rb"rst:0x[0-9a-fA-F]+ [^\r\n]*"
# Restarts no case asks for: any of these is unexpected, whatever came before.
RESTART = rb"Rebooting\.\.\.|host: reboot requested"
_BOOTS_SEEN = "_aliyun_rom_resets_seen"


def _line_pattern(line: bytes) -> re.Pattern[bytes]:
    return re.compile(
        rb"^(?:" + line + rb")\r?\n|^(?P<restart>" + ROM_RESET + rb"|" + RESTART + rb")\r?\n", re.MULTILINE
    )


def expect_line(dut, line: str | bytes, *, timeout: float, regex: bool = False) -> re.Match[bytes]:
    """Wait for one whole line: `line` verbatim, or a regex (bytes or str) that must span the whole line.
    Groups of the regex keep their numbers. Fails the case when the device restarted on the way."""
    if isinstance(line, str):
        line = line.encode()
    pattern = _line_pattern(line if regex else re.escape(line))
    deadline = time.monotonic() + timeout
    while True:
        match = dut.expect(pattern, timeout=max(deadline - time.monotonic(), 0.1))
        restart = match.group("restart")
        if restart is None:
            return match
        seen = getattr(dut, _BOOTS_SEEN, 0) + 1
        setattr(dut, _BOOTS_SEEN, seen)
        if not restart.startswith(b"rst:") or seen > 1:
            pytest.fail(f"the device restarted unexpectedly: {restart.decode(errors='replace')!r}")


# An ESP-IDF error or warning line ("E (1787) temperature_sensor: Exceeding temperature measure range."): its
# level, milliseconds since boot, then the tag and message, the part that repeats (ESP-IDF v5.5 esp_log format).
IDF_PROBLEM = rb"^[EW] \(\d+\) ([^\r\n]+?)\r?$"


def repeated_problems_in_log(text: bytes, limit: int) -> list[bytes]:
    """The ESP-IDF error and warning lines of a DUT's log (tag and message, without the time stamp) that occur
    more than `limit` times: a device that is online with nothing wrong says a problem once, not every tick."""
    counts = Counter(re.findall(IDF_PROBLEM, text, re.MULTILINE))
    return sorted(line for line, seen in counts.items() if seen > limit)


def restarts_in_log(text: bytes) -> list[bytes]:
    """The unexpected restarts in a DUT's whole log: every ROM reset after the first, every reboot line."""
    found = re.findall(rb"^(" + ROM_RESET + rb"|" + RESTART + rb")\r?$", text, re.MULTILINE)
    first_reset = next((i for i, line in enumerate(found) if line.startswith(b"rst:")), None)
    return [line for i, line in enumerate(found) if i != first_reset]


def check_log_for_restarts(logfile: str | Path | None) -> None:
    """Teardown: fail the case when its DUT log shows a restart (also one after its last expectation)."""
    if not logfile or not Path(logfile).is_file():
        return
    restarts = restarts_in_log(Path(logfile).read_bytes())
    if restarts:
        pytest.fail(f"the device restarted unexpectedly during the case: {restarts[0].decode(errors='replace')!r}")

"""The suite's expectation helpers on a console that delivers its output in chunks, as QEMU and boards do."""

from __future__ import annotations

import re

import pytest
from e2e_lines import check_log_for_restarts, expect_line, repeated_problems_in_log, restarts_in_log


class ChunkedConsole:
    """pexpect's contract in small: expect() searches what has arrived, consumes through the match, and
    reads another chunk when nothing matches yet."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.buffer = b""

    def expect(self, pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
        while True:
            match = pattern.search(self.buffer)
            if match:
                self.buffer = self.buffer[match.end() :]
                return match
            if not self.chunks:
                raise TimeoutError(f"no match for {pattern.pattern!r} within {timeout} s")
            self.buffer += self.chunks.pop(0)


ESP32C3_BOOT = (
    b"ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\nrst:0x1 (POWERON),boot:0x8 (SPI_FAST_FLASH_BOOT)\r\n"
)


def test_a_line_split_over_chunks_is_matched_whole():
    console = ChunkedConsole([b"aliyun: subscribed /", b"sys/pk/dn/thing/service/property/set\r\n"])
    match = expect_line(console, rb"aliyun: subscribed (\S+)", regex=True, timeout=1)
    assert match.group(1) == b"/sys/pk/dn/thing/service/property/set"


def test_a_verbatim_line_does_not_match_a_longer_one():
    console = ChunkedConsole([b"aliyun: led only a prefix\n", b"aliyun: led o", b"n\n"])
    assert expect_line(console, "aliyun: led on", timeout=1).group(0) == b"aliyun: led on\n"


def test_the_first_boot_is_fine_a_second_fails_the_case():
    console = ChunkedConsole([ESP32C3_BOOT, b"aliyun: online\r\n", ESP32C3_BOOT, b"aliyun: online\r\n"])
    expect_line(console, "aliyun: online", timeout=1)
    with pytest.raises(pytest.fail.Exception, match=r"restarted unexpectedly.*rst:0x1"):
        expect_line(console, "aliyun: online", timeout=1)


@pytest.mark.parametrize("line", [b"Rebooting...\r\n", b"host: reboot requested\n"])
def test_a_reboot_line_fails_the_case(line: bytes):
    console = ChunkedConsole([b"aliyun: mqtt disconnected\r\n", line, b"aliyun: reconnecting in 100 ms\r\n"])
    expect_line(console, "aliyun: mqtt disconnected", timeout=1)
    with pytest.raises(pytest.fail.Exception, match="restarted unexpectedly"):
        expect_line(console, rb"aliyun: reconnecting in \d+ ms", regex=True, timeout=1)


def test_the_log_check_finds_a_restart_after_the_last_expectation(tmp_path):
    log = tmp_path / "dut.log"
    log.write_bytes(ESP32C3_BOOT + b"aliyun: online\r\n")
    assert restarts_in_log(log.read_bytes()) == []
    check_log_for_restarts(log)
    log.write_bytes(ESP32C3_BOOT + b"aliyun: online\r\nGuru Meditation Error\r\nRebooting...\r\n" + ESP32C3_BOOT)
    assert len(restarts_in_log(log.read_bytes())) == 2
    with pytest.raises(pytest.fail.Exception, match="Rebooting"):
        check_log_for_restarts(log)


def test_an_error_line_on_every_tick_is_found_one_said_once_is_not():
    log = (
        b"W (744) temperature_sensor: Calibration failed\r\n"
        b"E (744) temperature_sensor: Exceeding temperature measure range.\r\n"
        b"W (744) thing_app: internal temperature sensor unreadable: CurrentTemperature stays 25.0\r\n"
        b"aliyun: online\r\n"
        b"E (1787) temperature_sensor: Exceeding temperature measure range.\r\n"
        b"I (2787) thing_app: brightness 50%\r\n"
        b"E (2787) temperature_sensor: Exceeding temperature measure range.\r\n"
    )
    assert repeated_problems_in_log(log, limit=1) == [b"temperature_sensor: Exceeding temperature measure range."]
    assert repeated_problems_in_log(log, limit=3) == []
    assert repeated_problems_in_log(b"aliyun: online\n" * 5, limit=1) == []

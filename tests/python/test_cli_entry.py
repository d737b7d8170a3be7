"""The CLI's top-level contract: version, help, and how expected failures leave the process."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from provision import __version__, cli
from provision.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, InputError


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_expected_failure_is_lines_on_stderr_and_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    @cli.cli.command("explode-for-test", hidden=True)
    def _explode() -> None:
        raise InputError("devices.csv:3: DeviceName: empty", "devices.csv:4: DeviceSecret: empty")

    try:
        assert cli.main(["explode-for-test"]) == EXIT_BAD_INPUT
    finally:
        cli.cli.commands.pop("explode-for-test")
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["devices.csv:3: DeviceName: empty", "devices.csv:4: DeviceSecret: empty"]
    assert "Traceback" not in captured.err


def test_unknown_flag_is_a_usage_error() -> None:
    assert cli.main(["--no-such-flag"]) == click.UsageError.exit_code


def test_an_unwritable_output_path_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text("ProductKey,DeviceName,DeviceSecret\na1Sample0PK,dev-0001,abcdefghijklmnopqrstuvwxyz012345\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "nvs"  # its parent is a file, so it cannot be created
    assert cli.main(["gen-nvs", "--csv", str(csv_path), "--out", str(out)]) == EXIT_ENVIRONMENT
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"{blocker}: ")
    assert not list(tmp_path.glob(".nvs.*"))


def test_a_header_that_cannot_be_written_names_the_header_not_its_temp_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /proc takes no new files, for root too; the OS's error names the temp file render-ca writes first.
    assert cli.main(["render-ca", "--out", "/proc/aliyun_root_ca.h"]) == EXIT_ENVIRONMENT
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("/proc/aliyun_root_ca.h: cannot write it ("), lines
    assert ".tmp-" not in lines[0] and lines[0].endswith("check that /proc exists and is writable")

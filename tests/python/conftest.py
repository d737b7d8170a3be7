"""Fixtures for the provisioning-core tests: run the CLI in-process, work in a temp directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from provision_testlib import Result, RunCli

from provision.cli import main


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    def run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path, so messages name files as the tests give them ("devices.csv")."""
    monkeypatch.chdir(tmp_path)
    return tmp_path

"""The commands of the README's provisioning section, run as written from a scratch copy of the working
directory. (The README's first command, the factory line, is run by tests/flash/test_flash_line.py.)"""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

from provision_testlib import REPO, SAMPLE_CSV

README = (REPO / "README.md").read_text(encoding="utf-8")


def scratch(tmp_path: Path) -> Path:
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "examples").symlink_to(REPO / "examples")
    (tmp_path / "firmware" / "main").mkdir(parents=True)
    (tmp_path / "firmware" / "main" / "aliyun_root_ca.h").symlink_to(REPO / "firmware/main/aliyun_root_ca.h")
    return tmp_path


def run(command: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def section_commands() -> list[str]:
    section = README.split("## Provisioning: sign, check, gen-nvs, inspect, render-ca", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_section_commands_run_as_written(tmp_path: Path) -> None:
    with open(SAMPLE_CSV, newline="", encoding="utf-8") as handle:
        first_secret = next(csv.DictReader(handle))["DeviceSecret"]
    work = scratch(tmp_path)
    env = {**os.environ, "DEVICE_SECRET": first_secret}
    commands = section_commands()
    assert [c.split()[1] for c in commands] == ["check", "gen-nvs", "inspect", "sign", "render-ca"]
    outputs = []
    for command in commands:
        done = run(command, work, env)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout + done.stderr)
    assert "esp32-demo-001" in outputs[2] and "********" in outputs[2]
    assert '"username": "esp32-demo-001&a1Sample0PK"' in outputs[3]
    assert all(first_secret not in text for text in outputs)

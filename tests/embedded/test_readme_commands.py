"""The command lines of README's "Local broker and end-to-end tests" section, run as written (ports and
output directories moved to free ports and tmp_path). The QEMU and board lines need what this machine
lacks; they are `hardware` tests and say so when they cannot run."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from provision.cloud.broker import REPO_ROOT

SECTION = "## Local broker and end-to-end tests"


def _commands() -> list[list[str]]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.find("\n## ", len(SECTION))] if "\n## " in section[len(SECTION) :] else section
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


def _find(prefix: list[str], *must: str) -> list[str]:
    for command in _commands():
        if command[: len(prefix)] == prefix and all(word in command for word in must):
            return command
    raise AssertionError(f"README has no {' '.join(prefix)} line with {must}")


def _with(command: list[str], option: str, value: str) -> list[str]:
    out = list(command)
    if option in out:
        out[out.index(option) + 1] = value
    else:
        out += [option, value]
    return out


def _start_broker(command: list[str], tmp_path: Path) -> tuple[subprocess.Popen, int]:
    command = _with(_with(command, "--port", "0"), "--cert-dir", str(tmp_path / "broker"))
    command[0] = str(REPO_ROOT / command[0])
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("broker: mqtts://"):
            return process, int(line.split()[1].rsplit(":", 1)[1])
    raise AssertionError(f"the README broker line did not start: {process.wait()}")


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=10)
    return output


def test_the_readme_broker_and_host_device_lines_work(tmp_path):
    broker_line = _find([".venv/bin/provision", "broker"], "--route")
    broker, port = _start_broker(broker_line, tmp_path)
    try:
        subprocess.run(
            [sys.executable, "-m", "provision.cli", "gen-nvs", "--csv", "examples/devices.csv", "--out",
             str(tmp_path / "nvs"), "--encrypt", "--force"],
            cwd=REPO_ROOT, check=True, capture_output=True,
        )  # fmt: skip
        device_line = _find(["build/host/device/aliyun_device"])
        binary = REPO_ROOT / device_line[0]
        if not binary.exists():
            subprocess.run(["cmake", "--build", str(REPO_ROOT / "build/host"), "--target", "aliyun_device"], check=True)
        command = [str(binary)] + [
            arg.replace("out/nvs", str(tmp_path / "nvs")).replace("out/broker", str(tmp_path / "broker"))
            for arg in device_line[1:]
        ]
        device = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.PIPE, text=True)
        try:
            assert device.stdout is not None
            lines = []
            for line in device.stdout:
                lines.append(line)
                if "aliyun: online" in line or "refused" in line or len(lines) > 50:
                    break
            assert lines[-1].startswith("aliyun: online"), lines
        finally:
            device.terminate()
            device.wait(timeout=10)
    finally:
        output = _stop(broker)
    assert broker.returncode == 0, output
    assert "broker: stopped" in output


def test_the_readme_host_test_line_passes():
    command = _find([".venv/bin/pytest", "tests/broker", "tests/embedded"])
    assert "--embedded-services" not in command
    result = subprocess.run(
        [str(REPO_ROOT / command[0]), *command[1:], "-q", "-p", "no:cacheprovider",
         "--deselect", "tests/embedded/test_readme_commands.py"],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\d+ passed", result.stdout)


def _run_hardware_line(command: list[str], needs: str) -> None:
    result = subprocess.run([str(REPO_ROOT / command[0]), *command[1:]], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{needs}\n{result.stdout[-3000:]}"


@pytest.mark.hardware
def test_the_readme_qemu_line_passes():
    """Needs Espressif's QEMU (qemu-system-xtensa), pytest-embedded-qemu and a QEMU build of the firmware."""
    command = _find([".venv/bin/pytest", "tests/embedded"], "idf,qemu")
    if shutil.which("qemu-system-xtensa") is None or not (REPO_ROOT / "firmware/build_qemu").is_dir():
        pytest.skip("hardware: no qemu-system-xtensa or no firmware/build_qemu on this machine")
    _run_hardware_line(command, "QEMU run")


@pytest.mark.hardware
def test_the_readme_esp32c3_qemu_line_passes():
    """Needs Espressif's QEMU for RISC-V (qemu-system-riscv32), pytest-embedded-qemu and the ESP32-C3 QEMU build
    with its eFuse image (README "QEMU and real boards")."""
    command = _find([".venv/bin/pytest", "tests/embedded"], "idf,qemu", "esp32c3")
    build = REPO_ROOT / "firmware/build_qemu_c3"
    if shutil.which("qemu-system-riscv32") is None or not (build / "qemu_efuse.bin").is_file():
        pytest.skip("hardware: no qemu-system-riscv32 or no firmware/build_qemu_c3 with its eFuse image here")
    _run_hardware_line(command, "ESP32-C3 QEMU run")


@pytest.mark.hardware
def test_the_readme_board_line_passes():
    """Needs a flashed board on /dev/ttyUSB0 and pytest-embedded-serial-esp."""
    command = _find([".venv/bin/pytest", "tests/embedded"], "esp,idf")
    port = command[command.index("--port") + 1]
    if not Path(port).exists():
        pytest.skip(f"hardware: no board on {port}")
    _run_hardware_line(command, "board run")

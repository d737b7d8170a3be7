"""README "QEMU and real boards": what can run here runs as written (the CA, the plain NVS images, the flash
image), and the QEMU and board command lines use only options that pytest and the suite really have. The
build and the QEMU/board runs themselves need ESP-IDF, QEMU or a board: not run here."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SECTION = "## QEMU and real boards"


def _section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    body = text[text.index(title) + len(title) :]
    return body.split("\n## ", 1)[0]


def _commands(title: str = SECTION) -> list[list[str]]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", _section(title), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("   # ")[0].strip()
            if line and not line.startswith("#"):
                for part in line.split(" && "):
                    commands.append(shlex.split(part))
    return commands


def _find(*words: str) -> list[str]:
    for command in _commands():
        if all(word in command for word in words):
            return command
    raise AssertionError(f"README {SECTION!r} has no command with {words}")


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    if command[0].startswith(".venv/bin/"):
        command = [str(VENV_BIN / command[0].removeprefix(".venv/bin/")), *command[1:]]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_the_ca_line_makes_a_certificate_the_qemu_guest_can_check(tmp_path: Path) -> None:
    result = _run(_find("-c"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cert = x509.load_pem_x509_certificate((tmp_path / "out/broker/server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.0.2.2" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    render = _find("render-ca")
    render[render.index("--pem") + 1] = str(tmp_path / "out/broker/ca.pem")
    render[render.index("--out") + 1] = str(tmp_path / "aliyun_root_ca.h")
    result = _run(render, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "aliyun_root_ca.h").stat().st_size > 0


def test_the_nvs_and_flash_image_lines_put_the_triple_at_fctry(tmp_path: Path) -> None:
    gen = _find("gen-nvs")
    assert "--encrypt" not in gen and "--encrypt-hmac" not in gen  # the QEMU build has NVS encryption off
    gen[gen.index("--out") + 1] = str(tmp_path / "out/nvs-qemu")
    result = _run(gen, cwd=REPO)
    assert result.returncode == 0, result.stderr

    # a stand-in for what idf.py writes into the build dir: flash_args and the three images it names
    build = tmp_path / "firmware/build_qemu"
    images = {0x1000: "bootloader/bootloader.bin", 0x8000: "partition_table/partition-table.bin", 0x20000: "app.bin"}
    for offset, name in images.items():
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        (build / name).write_bytes(bytes([offset >> 12 & 0xFF]) * 4096)
    lines = ["--flash_mode dio --flash_freq 40m --flash_size 4MB"] + [f"{hex(o)} {n}" for o, n in images.items()]
    (build / "flash_args").write_text("\n".join(lines) + "\n")

    merge = _find("merge-bin")
    merge[0] = str(VENV_BIN / "esptool.py")
    result = _run(merge, cwd=build)
    assert result.returncode == 0, result.stdout + result.stderr
    image = (build / "flash_image.bin").read_bytes()
    assert len(image) == 4 * 1024 * 1024
    fctry = next(
        line for line in (REPO / "firmware/partitions.csv").read_text().splitlines() if line.startswith("fctry")
    )
    offset = int(fctry.split(",")[3], 16)
    assert merge[merge.index("@flash_args") + 1] == hex(offset)
    nvs = (tmp_path / "out/nvs-qemu/esp32-demo-001/nvs.bin").read_bytes()
    assert image[offset : offset + len(nvs)] == nvs
    assert image[0x20000 : 0x20000 + 4096] == (build / "app.bin").read_bytes()


def test_the_build_line_is_the_one_the_qemu_defaults_file_names() -> None:
    build = _find("idf.py")
    defaults = build[build.index("-D") :]
    assert "SDKCONFIG_DEFAULTS=sdkconfig.defaults;sdkconfig.defaults.qemu;sdkconfig.defaults.suite" in defaults
    assert "SDKCONFIG=build_qemu/sdkconfig" in defaults
    for name in ("sdkconfig.defaults", "sdkconfig.defaults.qemu", "sdkconfig.defaults.suite"):
        assert (REPO / "firmware" / name).is_file()
    header = (REPO / "firmware/sdkconfig.defaults.qemu").read_text()
    named = next(line for line in header.splitlines() if "idf.py" in line)
    assert shlex.split(named.lstrip("# ")) == build[build.index("idf.py") :]


@pytest.fixture(scope="module")
def suite_options() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/embedded", "--help", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return set(re.findall(r"(--[a-z][a-z0-9-]+)", result.stdout))


@pytest.mark.parametrize("services", ["idf,qemu", "esp,idf"])
def test_the_qemu_and_board_lines_use_only_options_pytest_and_the_suite_have(
    suite_options: set[str], services: str
) -> None:
    command = _find("tests/embedded", services)
    used = {word.split("=")[0] for word in command if word.startswith("--")}
    assert used - suite_options == set()


def test_the_qemu_line_gives_the_guest_ethernet_and_is_the_same_in_the_e2e_section() -> None:
    command = _find("tests/embedded", "idf,qemu")
    extra = shlex.split(command[command.index("--qemu-extra-args") + 1])
    assert extra[extra.index("-nic") + 1] == "user,model=open_eth"
    assert extra[extra.index("-global") + 1] == "driver=timer.esp32.timg,property=wdt_disable,value=true"
    assert command in _commands("## Local broker and end-to-end tests")


def test_the_esp32c3_build_uses_the_same_defaults_for_its_target() -> None:
    build = next(c for c in _commands() if "idf.py" in c and "IDF_TARGET=esp32c3" in c)
    assert "SDKCONFIG_DEFAULTS=sdkconfig.defaults;sdkconfig.defaults.qemu;sdkconfig.defaults.suite" in build
    assert "SDKCONFIG=build_qemu_c3/sdkconfig" in build and build[build.index("-B") + 1] == "build_qemu_c3"


def test_the_esp32c3_efuse_line_writes_chip_revision_0_3(tmp_path: Path) -> None:
    line = next(c for c in _commands() if c[:2] == ["python3", "-c"] and "qemu_efuse.bin" in c[2])
    (tmp_path / "firmware" / "build_qemu_c3").mkdir(parents=True)
    result = _run([sys.executable, *line[1:]], tmp_path)
    assert result.returncode == 0, result.stderr
    image = (tmp_path / "firmware" / "build_qemu_c3" / "qemu_efuse.bin").read_bytes()
    # ESP-IDF v5.5 tools/idf_py_actions/qemu_ext.py, esp32c3 default_efuse ("Chip revision 0.3"): its first hex row,
    # as IDF spells it, so the byte's place is IDF's and not a count of ours (an image with 0x0c one byte early
    # boots to "chip revision check failed. Required >= v0.3, found v0.0" in a reboot loop)
    idf_first_row = bytes.fromhex("00" * 38 + "0c00")
    assert len(image) == 1024 and image[: len(idf_first_row)] == idf_first_row and image.count(0) == 1023


def test_the_esp32c3_line_drives_the_efuse_through_extra_args_not_the_efuse_option() -> None:
    command = next(c for c in _commands() if "tests/embedded" in c and "esp32c3" in c and "idf,qemu" in c)
    assert "--qemu-efuse-path" not in command  # pytest-embedded-qemu 2.9.3 would add a UART-download strap
    extra = shlex.split(command[command.index("--qemu-extra-args") + 1])
    assert extra[extra.index("-nic") + 1] == "user,model=open_eth"
    assert "driver=timer.esp32c3.timg,property=wdt_disable,value=true" in extra
    drive = extra[extra.index("-drive") + 1]
    assert drive == "file=firmware/build_qemu_c3/qemu_efuse.bin,if=none,format=raw,id=efuse"
    assert "driver=nvram.esp32c3.efuse,property=drive,value=efuse" in extra
    assert command[command.index("--build-dir") + 1] == "firmware/build_qemu_c3"
    assert command in _commands("## Local broker and end-to-end tests")


def test_the_esp32c3_line_uses_only_options_pytest_and_the_suite_have(suite_options: set[str]) -> None:
    command = next(c for c in _commands() if "tests/embedded" in c and "esp32c3" in c and "idf,qemu" in c)
    assert {word.split("=")[0] for word in command if word.startswith("--")} - suite_options == set()

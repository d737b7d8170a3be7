"""The firmware's network step is a build choice: Wi-Fi by default, OpenCores Ethernet for QEMU, never both.

ESP-IDF is not installed here, so main/CMakeLists.txt is evaluated by plain cmake with a stand-in for
idf_component_register() that records the sources, and the QEMU defaults are checked against the options
main/Kconfig.projbuild declares. (Against ESP-IDF v5.5's own Kconfig and headers the same files were checked
by hand with kconfgen and gcc -fsyntax-only; see the README section "QEMU and real boards".)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
QEMU_GUEST_HOST_ADDRESS = "10.0.2.2"  # the host as QEMU's user-mode network shows it to the guest


def _main_sources(tmp_path: Path, config: dict[str, str]) -> list[str]:
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("cmake missing: scripts/setup installs it (scripts/apt-packages.txt)")
    script = tmp_path / "eval_main.cmake"
    out = tmp_path / "srcs.txt"
    script.write_text(
        "function(idf_component_register)\n"
        '  cmake_parse_arguments(ARG "" "" "SRCS;INCLUDE_DIRS;REQUIRES;PRIV_REQUIRES" ${ARGN})\n'
        f'  file(WRITE "{out}" "${{ARG_SRCS}}")\n'
        "endfunction()\n"
        f'include("{FIRMWARE / "main" / "CMakeLists.txt"}")\n'
    )
    defines = [f"-D{name}={value}" for name, value in config.items()]
    subprocess.run([cmake, *defines, "-P", str(script)], check=True, capture_output=True, text=True)
    return out.read_text().split(";")


def _defaults(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        unset = re.fullmatch(r"# (CONFIG_\w+) is not set", line.strip())
        if unset:
            values[unset.group(1)] = "n"
        elif line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip().strip('"')
    return values


def test_ethernet_build_compiles_the_ethernet_file_and_not_the_wifi_one(tmp_path: Path) -> None:
    sources = _main_sources(tmp_path, {"CONFIG_ALIYUN_NET_OPENETH": "y", "CONFIG_ETH_USE_OPENETH": "y"})
    assert "net_eth.c" in sources
    assert "net_wifi.c" not in sources


def test_default_build_compiles_the_wifi_file_and_not_the_ethernet_one(tmp_path: Path) -> None:
    sources = _main_sources(tmp_path, {"CONFIG_ALIYUN_NET_WIFI": "y"})
    assert "net_wifi.c" in sources
    assert "net_eth.c" not in sources


def test_only_net_eth_c_calls_the_ethernet_driver_and_only_net_wifi_c_the_wifi_driver() -> None:
    for source in (FIRMWARE / "main").glob("*.c"):
        text = source.read_text()
        assert ("esp_wifi_" in text) == (source.name == "net_wifi.c"), source.name
        assert ("esp_eth_" in text) == (source.name == "net_eth.c"), source.name


def test_qemu_defaults_choose_ethernet_and_point_broker_and_sntp_at_the_host() -> None:
    qemu = _defaults(FIRMWARE / "sdkconfig.defaults.qemu")
    assert qemu["CONFIG_ALIYUN_NET_OPENETH"] == "y"
    assert qemu["CONFIG_ETH_USE_OPENETH"] == "y"
    assert qemu["CONFIG_ALIYUN_ENDPOINT"] == QEMU_GUEST_HOST_ADDRESS
    assert qemu["CONFIG_ALIYUN_SNTP_SERVER"] == QEMU_GUEST_HOST_ADDRESS
    assert qemu["CONFIG_ALIYUN_SNTP_SERVER_2"] == ""
    assert qemu["CONFIG_ALIYUN_NVS_PLAIN"] == "y"
    assert qemu["CONFIG_ESPTOOLPY_FLASHSIZE_4MB"] == "y"
    base = _defaults(FIRMWARE / "sdkconfig.defaults")
    assert "CONFIG_ALIYUN_NET_OPENETH" not in base and "CONFIG_ETH_USE_OPENETH" not in base


def test_every_project_option_the_defaults_set_is_declared_in_kconfig() -> None:
    declared = set(re.findall(r"^\s*config (ALIYUN_\w+)", (FIRMWARE / "main" / "Kconfig.projbuild").read_text(), re.M))
    for defaults in ("sdkconfig.defaults", "sdkconfig.defaults.qemu"):
        used = {name.removeprefix("CONFIG_") for name in _defaults(FIRMWARE / defaults) if "ALIYUN_" in name}
        assert used <= declared, (defaults, used - declared)


def test_kconfig_defaults_for_sntp_are_aliyun_and_the_pool() -> None:
    kconfig = (FIRMWARE / "main" / "Kconfig.projbuild").read_text()
    servers = re.findall(r'config ALIYUN_SNTP_SERVER(?:_2)?\n\s+string "[^"]*"\n\s+default "([^"]*)"', kconfig)
    assert servers == ["ntp.aliyun.com", "pool.ntp.org"]

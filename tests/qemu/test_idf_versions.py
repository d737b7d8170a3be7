"""What the firmware asks of ESP-IDF v5.5 and v6.0: the components v6 moved out (espressif/mqtt, espressif/cjson)
come from the component manager there and from IDF itself on v5.5; the hash provider follows Mbed TLS.

ESP-IDF is not installed here, so each CMakeLists.txt is evaluated by plain cmake with a stand-in for
idf_component_register() that records what it was given (as tests/qemu/test_firmware_network_choice.py does).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def _registered(tmp_path: Path, cmakelists: Path, idf_major: int) -> dict[str, list[str]]:
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("cmake missing: scripts/setup installs it (scripts/apt-packages.txt)")
    script = tmp_path / "eval.cmake"
    out = tmp_path / "registered.txt"
    script.write_text(
        "function(idf_component_register)\n"
        '  cmake_parse_arguments(ARG "" "" "SRCS;INCLUDE_DIRS;REQUIRES;PRIV_REQUIRES" ${ARGN})\n'
        f'  file(WRITE "{out}" "SRCS=${{ARG_SRCS}}\\nREQUIRES=${{ARG_REQUIRES}}\\n"\n'
        '    "PRIV_REQUIRES=${ARG_PRIV_REQUIRES}")\n'
        "endfunction()\n"
        f'include("{cmakelists}")\n'
    )
    defines = ["-DESP_PLATFORM=1", f"-DIDF_VERSION_MAJOR={idf_major}", "-DCONFIG_ALIYUN_NET_WIFI=y"]
    subprocess.run([cmake, *defines, "-P", str(script)], check=True, capture_output=True, text=True)
    lines = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return {key: [item for item in value.split(";") if item] for key, value in lines.items()}


@pytest.mark.parametrize(
    ("idf_major", "mqtt", "json"), [(5, "mqtt", "json"), (6, "espressif__mqtt", "espressif__cjson")]
)
def test_moved_components_by_idf_version(tmp_path: Path, idf_major: int, mqtt: str, json: str) -> None:
    main = _registered(tmp_path, FIRMWARE / "main" / "CMakeLists.txt", idf_major)
    link = _registered(tmp_path, FIRMWARE / "components" / "aliyun_link" / "CMakeLists.txt", idf_major)
    assert mqtt in main["PRIV_REQUIRES"] and {"mqtt", "espressif__mqtt"} & set(main["PRIV_REQUIRES"]) == {mqtt}
    assert link["PRIV_REQUIRES"] == [json]


@pytest.mark.parametrize(("idf_major", "provider"), [(5, "aliyun_hash_mbedtls.c"), (6, "aliyun_hash_psa.c")])
def test_the_hash_provider_follows_mbedtls(tmp_path: Path, idf_major: int, provider: str) -> None:
    hashing = _registered(tmp_path, FIRMWARE / "components" / "aliyun_hash" / "CMakeLists.txt", idf_major)
    assert hashing["SRCS"] == ["aliyun_hash_hmac.c", provider]
    auth = _registered(tmp_path, FIRMWARE / "components" / "aliyun_auth" / "CMakeLists.txt", idf_major)
    assert auth["PRIV_REQUIRES"] == ["aliyun_hash"]  # aliyun_auth itself names no crypto library


@pytest.mark.parametrize(
    ("manifest", "name"),
    [("main/idf_component.yml", "espressif/mqtt"), ("components/aliyun_link/idf_component.yml", "espressif/cjson")],
)
def test_managed_components_only_from_v6(manifest: str, name: str) -> None:
    # the manifest's own layout (no YAML parser among the test dependencies): the entry and its one rule
    text = (FIRMWARE / manifest).read_text()
    assert f'  {name}:\n    version: "*"\n    rules:\n      - if: "idf_version >=6.0"\n' in text


def test_the_ethernet_phy_call_exists_in_both_versions() -> None:
    source = (FIRMWARE / "main" / "net_eth.c").read_text()
    assert "esp_eth_phy_new_generic(" in source and "esp_eth_phy_new_dp83848(" not in source

"""What the firmware asks of ESP-IDF v5.5 and v6.0: the components v6 moved out (espressif/mqtt, espressif/cjson)
come from the component manager there and from IDF itself on v5.5; the hash provider follows Mbed TLS.

ESP-IDF is not installed here, so each CMakeLists.txt is evaluated by plain cmake with a stand-in for
idf_component_register() that records what it was given (as tests/qemu/test_firmware_network_choice.py does).
"""

from __future__ import annotations

import re
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
    # the OTA digest (aliyun_hash_stream.c) is PSA Crypto on every version
    assert hashing["SRCS"] == ["aliyun_hash_hmac.c", provider, "aliyun_hash_stream.c"]
    # public: aliyun_hash_stream.h holds a psa_hash_operation_t
    assert hashing["REQUIRES"] == ["aliyun_auth", "mbedtls"]
    auth = _registered(tmp_path, FIRMWARE / "components" / "aliyun_auth" / "CMakeLists.txt", idf_major)
    assert auth["PRIV_REQUIRES"] == ["aliyun_hash"]  # aliyun_auth itself names no crypto library
    main = _registered(tmp_path, FIRMWARE / "main" / "CMakeLists.txt", idf_major)
    assert "aliyun_hash" in main["PRIV_REQUIRES"]  # ota_update.c hashes the image through it


# What Mbed TLS 4 (ESP-IDF v6.0) removed from the hashing API: the legacy headers and the functions behind them
# (TF-PSA-Crypto 1.0, Mbed TLS 4's crypto, moved md5.h/sha1.h/sha256.h under mbedtls/private/ and its ChangeLog
# leaves hashing to PSA Crypto). Only the v5.5 provider may use them.
LEGACY_HASH = re.compile(r'#include\s*"mbedtls/(?:md5|sha1|sha256)\.h"|\bmbedtls_(?:md5|sha1|sha256)\w*\s*\(')


def _code(path: Path) -> str:
    """The C source without its comments (which may name the old API)."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(), flags=re.DOTALL)


def test_no_legacy_hash_api_where_idf_v6_builds() -> None:
    v5_only = FIRMWARE / "components" / "aliyun_hash" / "aliyun_hash_mbedtls.c"
    sources = sorted((FIRMWARE / "main").glob("*.[ch]")) + sorted((FIRMWARE / "components").glob("*/*.[ch]"))
    users = [str(path.relative_to(FIRMWARE)) for path in sources if path != v5_only and LEGACY_HASH.search(_code(path))]
    assert users == []
    assert LEGACY_HASH.search(_code(v5_only))  # the pattern does find the legacy API


@pytest.mark.parametrize(
    ("manifest", "name"),
    [("main/idf_component.yml", "espressif/mqtt"), ("components/aliyun_link/idf_component.yml", "espressif/cjson")],
)
def test_managed_components_only_from_v6(manifest: str, name: str) -> None:
    # the manifest's own layout (no YAML parser among the test dependencies): the entry and its one rule
    text = (FIRMWARE / manifest).read_text()
    assert f'  {name}:\n    version: "*"\n    rules:\n      - if: "idf_version >=6.0"\n' in text


# The one PHY driver ESP-IDF compiles with the OpenCores MAC (esp_eth/CMakeLists.txt, CONFIG_ETH_USE_OPENETH branch):
# v5.5 through v5.5.5 and release/v5.5 build esp_eth_phy_dp83848.c only (esp_eth_phy_generic.c comes only with
# CONFIG_ETH_USE_ESP32_EMAC, which the QEMU defaults turn off and the ESP32-C3 lacks); v6.0 builds
# esp_eth_phy_generic.c only. Calling the other one fails the QEMU build's link (seen on v5.5: undefined
# esp_eth_phy_new_generic).
OPENETH_PHY_BY_IDF_MAJOR = {5: "esp_eth_phy_new_dp83848", 6: "esp_eth_phy_new_generic"}


def _phy_constructors_called(tmp_path: Path, idf_major: int) -> list[str]:
    """net_eth.c run through the host's C preprocessor as an ESP-IDF build of that major version would see it
    (the IDF headers stubbed empty), and the esp_eth_phy_new_* calls left in it."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.fail("cc missing: scripts/setup installs build-essential (scripts/apt-packages.txt)")
    source = FIRMWARE / "main" / "net_eth.c"
    stubs = tmp_path / f"idf{idf_major}"
    stubs.mkdir()
    # net_eth.c's own directory comes first for its quoted includes, so net_connect.h is the real one
    for including in (source, source.parent / "net_connect.h"):
        for header in re.findall(r'^#include "([^"]+)"', including.read_text(), flags=re.MULTILINE):
            (stubs / header).write_text("")
    (stubs / "sdkconfig.h").write_text("#define CONFIG_ETH_USE_OPENETH 1\n")
    (stubs / "esp_idf_version.h").write_text(f"#define ESP_IDF_VERSION_MAJOR {idf_major}\n")
    result = subprocess.run([cc, "-E", "-P", f"-I{stubs}", str(source)], check=True, capture_output=True, text=True)
    return re.findall(r"\b(esp_eth_phy_new_\w+)\s*\(", result.stdout)


@pytest.mark.parametrize("idf_major", sorted(OPENETH_PHY_BY_IDF_MAJOR))
def test_the_ethernet_phy_is_the_one_idf_builds_with_the_opencores_mac(tmp_path: Path, idf_major: int) -> None:
    assert _phy_constructors_called(tmp_path, idf_major) == [OPENETH_PHY_BY_IDF_MAJOR[idf_major]]

"""The MQTT receive buffer the firmware is built with is the core's ALINK_MQTT_BUFFER_SIZE.

esp-mqtt's Kconfig reads CONFIG_MQTT_BUFFER_SIZE only when CONFIG_MQTT_USE_CUSTOM_CONFIG is set (otherwise the
buffer is 1024 bytes and longer commands are dropped). main/mqtt_link.c refuses to compile against an sdkconfig
that breaks either rule; this test holds the committed defaults to the same rules where ESP-IDF cannot run.
"""

from __future__ import annotations

import re
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def _defaults(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if re.match(r"CONFIG_\w+=", line))
    return {name: value for name, value in pairs}


def _core_define(name: str) -> int:
    header = (FIRMWARE / "components" / "aliyun_link" / "include" / "alink_json.h").read_text()
    match = re.search(rf"^#define {name} (\d+)u", header, re.MULTILINE)
    assert match, f"{name} not found in alink_json.h"
    return int(match.group(1))


def test_the_buffer_size_is_applied_and_equals_the_core_constant():
    defaults = _defaults(FIRMWARE / "sdkconfig.defaults")
    assert defaults.get("CONFIG_MQTT_USE_CUSTOM_CONFIG") == "y"
    assert int(defaults["CONFIG_MQTT_BUFFER_SIZE"]) == _core_define("ALINK_MQTT_BUFFER_SIZE")


def test_the_buffer_holds_the_largest_inbound_message_on_the_longest_topic():
    topic_header = (FIRMWARE / "components" / "aliyun_link" / "include" / "alink_topics.h").read_text()
    topic_size = int(re.search(r"#define ALINK_TOPIC_SIZE (\d+)u", topic_header).group(1))  # type: ignore[union-attr]
    fixed_header, topic_length, packet_id = 5, 2, 2  # MQTT 3.1.1 sections 2.2.3 and 3.3.2
    needed = fixed_header + topic_length + (topic_size - 1) + packet_id + _core_define("ALINK_INBOUND_MAX")
    assert _core_define("ALINK_MQTT_BUFFER_SIZE") >= needed


def test_the_shell_checks_the_sdkconfig_at_build_time():
    source = (FIRMWARE / "main" / "mqtt_link.c").read_text()
    assert "_Static_assert(CONFIG_MQTT_BUFFER_SIZE == ALINK_MQTT_BUFFER_SIZE" in source
    assert "#if !defined(CONFIG_MQTT_USE_CUSTOM_CONFIG)" in source

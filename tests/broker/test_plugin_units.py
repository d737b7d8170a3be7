"""The plugin's pure C parts (client id parsing, topic rules, rules file) under ASan and UBSan."""

from __future__ import annotations

import os
import subprocess

from provision.cloud.broker import PLUGIN_SOURCE, REPO_ROOT


def test_plugin_rules_unit_tests_pass_under_sanitizers(tmp_path):
    build = REPO_ROOT / "build" / "broker-plugin-tests"
    for command in (
        ["cmake", "-S", str(PLUGIN_SOURCE), "-B", str(build), "-DALIYUN_PLUGIN_TESTS=ON", "-DCMAKE_BUILD_TYPE=Debug"],
        ["cmake", "--build", str(build), "--target", "test_plugin_rules", "-j", str(os.cpu_count() or 1)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    result = subprocess.run([str(build / "test_plugin_rules"), str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "all checks passed" in result.stdout

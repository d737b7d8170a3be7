"""The README's console lines ("The local platform") run against a real broker, device-free ones end to end."""

from __future__ import annotations

import json
import shlex

from cloud_platform import RunningBroker

from provision.cloud.broker import REPO_ROOT

# these need a device answering (set-property, rrpc, ...) or run until Ctrl-C (watch): tests/cloud covers them
_NEEDS_A_DEVICE = ("set-property", "invoke-service", "rrpc", "ota", "watch")


def _readme_console_lines() -> list[list[str]]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## The local platform", 1)[1].split("\n## ", 1)[0]
    return [
        shlex.split(line.split("#", 1)[0] if "  #" in line else line)
        for line in section.splitlines()
        if line.startswith(".venv/bin/provision cloud ")
    ]


def test_every_console_command_is_in_the_readme() -> None:
    commands = {argv[4] for argv in _readme_console_lines()}
    assert commands == {"devices", "set-property", "invoke-service", "rrpc", "broadcast", "shadow", "ota", "watch"}


def test_the_device_free_readme_lines_run(running_broker: RunningBroker) -> None:
    ran = 0
    for argv in _readme_console_lines():
        assert argv[2:4] == ["--cert-dir", "out/broker"]
        if argv[4] in _NEEDS_A_DEVICE:
            continue
        result = running_broker.cloud(*argv[4:])
        assert result.stdout.strip(), argv
        if "--json" in argv:
            json.loads(result.stdout)
        ran += 1
    assert ran == 4

"""The README's firmware host-build commands run as written (docs stay honest)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _firmware_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Firmware")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_host_build_commands_run() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", _firmware_section(), flags=re.S)
    host = next(b for b in blocks if "cmake -S firmware/host" in b)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", host], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "100% tests passed" in done.stdout
    assert '"password": "FAFD82A3D602B37FB0FA8B7892F24A477F851A14"' in done.stdout


def test_documented_log_lines_are_in_the_header() -> None:
    include = REPO / "firmware/components/aliyun_link/include"
    header = (include / "aliyun_link.h").read_text() + (include / "alink_shell_facts.h").read_text()
    for line in re.findall(r"`(aliyun: [^`<]+)", _firmware_section()):
        assert line.strip() in header, line

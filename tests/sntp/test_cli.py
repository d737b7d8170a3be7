"""`provision sntp-serve` as users run it: a foreground process that prints where it listens and stops on SIGTERM."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import ntplib
import pytest

from provision.errors import EXIT_ENVIRONMENT

PROVISION = [sys.executable, "-m", "provision.cli"]
ANNOUNCE = re.compile(r"sntp: serving the host clock ([+-][0-9.]+) s on udp 127\.0\.0\.1:(\d+)")


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [*PROVISION, "sntp-serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = ANNOUNCE.search(line)
    if match is None:
        proc.kill()
        raise AssertionError(f"no announce line, got {line!r}; stderr: {proc.communicate()[1]!r}")
    return proc, int(match.group(2))


def test_serves_skewed_time_and_stops_cleanly_on_sigterm() -> None:
    proc, port = _start_cli("--port", "0", "--skew-s", "-120")
    try:
        stats = ntplib.NTPClient().request("127.0.0.1", port=port, version=4, timeout=2)
        assert abs(stats.offset + 120) < 0.05
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "sntp: stopped after 1 answers, 0 ignored datagrams" in out
    assert err == ""


def test_busy_port_is_one_line_and_exit_4() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        result = subprocess.run(
            [*PROVISION, "sntp-serve", "--port", str(port)], capture_output=True, text=True, timeout=20
        )
    assert result.returncode == EXIT_ENVIRONMENT
    assert result.stderr.splitlines()[0] == f"sntp: cannot bind UDP 127.0.0.1:{port}: Address already in use"
    assert "Traceback" not in result.stderr


def test_debian_sntp_client_accepts_the_answer_on_port_123_in_a_private_network_namespace(tmp_path: Path) -> None:
    """Debian's `sntp` (ntpsec's ntpdig) only talks to port 123 and applies its own sanity checks to the reply
    (mode, version, stratum, leap, originate). 123 is where a QEMU guest sends, so this runs the CLI there too,
    inside a user + network namespace (`unshare -rn`) so that no real root port is taken on the host."""
    for tool in ("unshare", "sntp", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: scripts/setup installs it (scripts/apt-packages.txt)")
    script = tmp_path / "run.sh"
    script.write_text(
        "set -eu\n"
        "ip link set lo up\n"
        f'{" ".join(PROVISION)} sntp-serve --port 123 --skew-s 3600 > "$1/serve.out" 2>&1 &\n'
        "server=$!\n"
        'for _ in $(seq 50); do grep -q serving "$1/serve.out" && break; sleep 0.1; done\n'
        'sntp -j -t 3 127.0.0.1 > "$1/sntp.json"; rc=$?\n'
        "kill -TERM $server; wait $server\n"
        "exit $rc\n"
    )
    result = subprocess.run(
        ["unshare", "-rn", "bash", str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, (result.stdout, result.stderr, (tmp_path / "serve.out").read_text())
    report = json.loads((tmp_path / "sntp.json").read_text())
    assert report["stratum"] == 1
    assert abs(report["offset"] - 3600) < 0.5
    assert "stopped after 1 answers" in (tmp_path / "serve.out").read_text()

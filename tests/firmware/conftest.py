"""Fixtures for the firmware's host tools: builds firmware/host (the same build scripts/test runs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST_BUILD = REPO / "build" / "host"


@pytest.fixture(scope="session")
def aliyun_sign() -> Path:
    """The C signing tool, configured and built if needed (a no-op when scripts/test already built it)."""
    subprocess.run(
        ["cmake", "-S", str(REPO / "firmware" / "host"), "-B", str(HOST_BUILD), "-DCMAKE_BUILD_TYPE=Debug"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        ["cmake", "--build", str(HOST_BUILD), "--target", "aliyun_sign"], check=True, stdout=subprocess.DEVNULL
    )
    return HOST_BUILD / "aliyun_sign"

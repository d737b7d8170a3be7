"""Fixtures for the factory line: device files, synthetic builds, emulated boards, a throwaway PostgreSQL."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flash_testlib import write_devices

from provision.emulator.synthetic_build import synthetic_build


@pytest.fixture
def devices_csv(tmp_path: Path) -> Path:
    return write_devices(tmp_path / "devices.csv", 12)


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    return synthetic_build(tmp_path / "build", chip="esp32", app_size=48 * 1024)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        pytest.fail(f"{name} not found: PostgreSQL is in scripts/apt-packages.txt; run scripts/setup")
    return found


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL cluster of our own on a free loopback port, run as an unprivileged user, removed after."""
    base = Path(tempfile.mkdtemp(prefix="provision-pg-"))
    data = base / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        user = pwd.getpwnam("nobody")
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "nobody", "--"]
    port = _free_port()
    subprocess.run(
        [*run_as, _pg_bin("initdb"), "-D", str(data), "-U", "provision", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    log = base / "server.log"
    options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=60"
    subprocess.run(
        [*run_as, _pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://provision@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh_pg_db(pg_url: str) -> str:
    """A new empty database in the session's cluster (one ledger per test)."""
    import psycopg

    name = f"ledger_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_url.rsplit("/", 1)[0] + f"/{name}"

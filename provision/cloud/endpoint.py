"""Where a running local platform can be reached, and the console's credential for it.

The broker writes `console.json` (mode 0600) into its `--cert-dir` once it listens and removes it when it stops;
`provision cloud ...` commands started with the same `--cert-dir` read it. The console logs in as the broker's
console principal (username `CONSOLE_USERNAME`, which no device can have: a device's username holds `&`), which
the broker's plugin lets publish and subscribe on every topic.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from provision.atomic import write_private_file
from provision.errors import InputError

__all__ = ["CONSOLE_FILE", "CONSOLE_USERNAME", "ConsoleEndpoint", "new_console_password", "read_console_endpoint"]

CONSOLE_FILE = "console.json"
CONSOLE_USERNAME = "$console"


@dataclass(frozen=True)
class ConsoleEndpoint:
    """A running broker's TLS listener and the console credential of this run."""

    host: str
    port: int
    ca_file: str
    username: str
    password: str
    broker_pid: int

    def write(self, cert_dir: Path) -> Path:
        """Write `cert_dir/console.json`, 0600 from its first byte, atomically."""
        path = cert_dir / CONSOLE_FILE
        write_private_file(path, json.dumps(asdict(self), indent=1).encode())
        return path


def new_console_password() -> str:
    """A fresh console password for one broker run (from `secrets`)."""
    return secrets.token_urlsafe(24)


def read_console_endpoint(cert_dir: Path) -> ConsoleEndpoint:
    """Read the endpoint a broker started with `--cert-dir cert_dir` recorded.

    Raises:
        InputError: no broker recorded there (not started, or stopped), or the file is not one we wrote.
    """
    path = cert_dir / CONSOLE_FILE
    try:
        data = json.loads(path.read_text())
        return ConsoleEndpoint(
            host=str(data["host"]),
            port=int(data["port"]),
            ca_file=str(data["ca_file"]),
            username=str(data["username"]),
            password=str(data["password"]),
            broker_pid=int(data["broker_pid"]),
        )
    except FileNotFoundError:
        raise InputError(
            f"{path}: no running broker recorded here: start `provision broker --cert-dir {cert_dir}` first"
        ) from None
    except (ValueError, KeyError, TypeError, OSError):
        raise InputError(f"{path}: not a console file written by `provision broker`: restart the broker") from None

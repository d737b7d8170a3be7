"""The console's own Mosquitto listener, until the broker plugin knows the console principal.

The console logs in on a loopback listener of the same Mosquitto (messages cross listeners), authenticated
by Mosquitto's password file and allowed every topic by an ACL file. Devices never reach it: it listens on
127.0.0.1 only and its only user is `$console`, a name no device username can take (theirs hold `&`).
The password file holds a PBKDF2 hash in Mosquitto 2.0's `$7$` format (mosquitto_passwd: PBKDF2-SHA512,
101 iterations, 12-byte salt, both base64), never the password, and is deleted once Mosquitto has read it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provision.atomic import write_private_file
from provision.cloud.certs import BrokerCertificates
from provision.cloud.endpoint import CONSOLE_USERNAME, ConsoleEndpoint, new_console_password

__all__ = ["ConsoleListener", "mosquitto_password_line"]

_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12
CONSOLE_HOST = "127.0.0.1"


def mosquitto_password_line(username: str, password: str) -> str:
    """One line of a Mosquitto 2.0 password file for `username`."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    salt_b64, hash_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"{username}:$7${_PBKDF2_ITERATIONS}${salt_b64}${hash_b64}\n"


@dataclass
class ConsoleListener:
    """A fresh console credential, its listener's config lines, and the files Mosquitto reads at start."""

    port: int
    password: str
    certs: BrokerCertificates
    _dir: Path

    @classmethod
    def create(cls, certs: BrokerCertificates) -> ConsoleListener:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((CONSOLE_HOST, 0))
            port = int(probe.getsockname()[1])
        work = Path(tempfile.mkdtemp(prefix="provision-console-"))
        password = new_console_password()
        write_private_file(work / "passwd", mosquitto_password_line(CONSOLE_USERNAME, password).encode())
        # Mosquitto's `#` does not match topics that start with `$`: grant the console's own namespace too.
        acl = f"user {CONSOLE_USERNAME}\ntopic readwrite #\ntopic readwrite $aliyun/#\n"
        # Mosquitto's `#` does not match topics that start with `$`: grant the console's own namespace too.
        acl = f"user {CONSOLE_USERNAME}\ntopic readwrite #\ntopic readwrite $aliyun/#\n"
        write_private_file(work / "acl", acl.encode())
        return cls(port, password, certs, work)

    def config_lines(self) -> tuple[str, ...]:
        return (
            f"listener {self.port} {CONSOLE_HOST}",
            "allow_anonymous false",
            f"password_file {self._dir / 'passwd'}",
            f"acl_file {self._dir / 'acl'}",
            f"certfile {self.certs.server_cert}",
            f"keyfile {self.certs.server_key}",
        )

    def endpoint(self, broker_pid: int) -> ConsoleEndpoint:
        return ConsoleEndpoint(
            CONSOLE_HOST, self.port, str(self.certs.ca_cert), CONSOLE_USERNAME, self.password, broker_pid
        )

    def forget_files(self) -> None:
        """Mosquitto has read them once it listens; a restart makes a new listener."""
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)

"""Start and stop the platform next to Mosquitto: the console listener, the platform service, console.json.

Used by `provision broker` and by test fixtures, in this order: `PlatformRun(certs, cert_dir)`, pass
`extra_config` to BrokerSettings, start the broker, `started(broker.pid)`, and `stop()` before the broker
stops. console.json (the console password, 0600) exists only between started() and stop().
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from provision.cloud.certs import BrokerCertificates
from provision.cloud.console_listener import ConsoleListener
from provision.cloud.endpoint import CONSOLE_FILE, ConsoleEndpoint
from provision.cloud.platform import PlatformService

__all__ = ["PlatformRun"]


class PlatformRun:
    def __init__(self, certs: BrokerCertificates, cert_dir: Path) -> None:
        self.cert_dir = cert_dir
        self.listener = ConsoleListener.create(certs)
        self.service: PlatformService | None = None
        self.endpoint: ConsoleEndpoint | None = None

    @property
    def extra_config(self) -> tuple[str, ...]:
        return self.listener.config_lines()

    def started(self, broker_pid: int | None) -> ConsoleEndpoint:
        """The broker listens: forget the password file, start the service, record the endpoint."""
        self.listener.forget_files()
        endpoint = self.listener.endpoint(broker_pid or 0)
        service = PlatformService(endpoint)
        service.start()
        self.service = service
        endpoint.write(self.cert_dir)
        self.endpoint = endpoint
        return endpoint

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.cert_dir / CONSOLE_FILE).unlink()
        if self.service is not None:
            self.service.stop()
            self.service = None
        self.listener.forget_files()

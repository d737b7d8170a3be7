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
from provision.cloud.ota_server import OtaFileServer
from provision.cloud.platform import PlatformService

__all__ = ["PlatformRun"]


class PlatformRun:
    def __init__(
        self, certs: BrokerCertificates, cert_dir: Path, host: str = "127.0.0.1", url_host: str | None = None
    ) -> None:
        """Args:
        host: where the OTA file server listens (the broker's listen address).
        url_host: the address devices reach it by, when `host` is a wildcard.
        """
        self.cert_dir = cert_dir
        self.certs = certs
        self.host, self.url_host = host, url_host
        self.listener = ConsoleListener.create(certs)
        self.ota: OtaFileServer | None = None
        self.service: PlatformService | None = None
        self.endpoint: ConsoleEndpoint | None = None

    @property
    def extra_config(self) -> tuple[str, ...]:
        return self.listener.config_lines()

    def started(self, broker_pid: int | None, *, restartable: bool = False) -> ConsoleEndpoint:
        """The broker listens: forget the password file, start the service, record the endpoint.

        Args:
            restartable: keep the listener's password-hash and ACL files until stop(), for a test that
                restarts the same BrokerProcess (Mosquitto reads them again).
        """
        if not restartable:
            self.listener.forget_files()
        endpoint = self.listener.endpoint(broker_pid or 0)
        self.ota = OtaFileServer(self.certs, self.host, self.url_host)
        self.ota.start()
        service = PlatformService(endpoint, self.ota)
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
        if self.ota is not None:
            self.ota.stop()
            self.ota = None
        self.listener.forget_files()

"""Start and stop the platform next to Mosquitto: the OTA file server, the platform service, console.json.

Used by `provision broker` and by test fixtures, in this order: start the broker (BrokerSettings with
`write_console_file=False`), `started(broker.console_endpoint)`, and `stop()` before the broker stops.
The service logs in as the plugin's console principal on the broker's TLS listener, so the plugin sees what
it publishes (its `_ss=1` delivery copies downstream messages to devices that did not subscribe).
console.json (the console password, 0600) exists only between started() and stop(): written once the
service answers, so a console that finds the file finds the service ready.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from provision.cloud.certs import BrokerCertificates
from provision.cloud.endpoint import CONSOLE_FILE, ConsoleEndpoint
from provision.cloud.gate import PeerBook
from provision.cloud.ota_server import OtaFileServer
from provision.cloud.platform import PlatformService
from provision.errors import EnvironmentProblem

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
        self.ota: OtaFileServer | None = None
        self.service: PlatformService | None = None
        self.endpoint: ConsoleEndpoint | None = None

    def started(self, endpoint: ConsoleEndpoint | None, peers: PeerBook) -> ConsoleEndpoint:
        """The broker listens at `endpoint` (its console_endpoint): start the service, record the endpoint.

        Args:
            peers: the broker's `peers`, where the connect gate records each device's address.

        Raises:
            EnvironmentProblem: the broker is not running (no endpoint), or did not accept the console.
        """
        if endpoint is None:
            raise EnvironmentProblem("platform: the broker is not running: start it before the platform")
        self.ota = OtaFileServer(self.certs, self.host, self.url_host)
        self.ota.start()
        service = PlatformService(endpoint, self.ota, peers)
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

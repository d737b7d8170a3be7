"""The broker's server certificate is valid for every address a device uses to reach it: 127.0.0.1 and localhost
(host build), 10.0.2.2 (QEMU's user-mode network), plus a LAN address given with --san (a board). Checked the way
a device checks it: a TLS handshake that verifies the chain and the host name."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from provision.cloud.certs import BrokerCertificates, ensure_certificates

LAN_ADDRESS = "192.168.1.50"  # only written into the certificate; nothing is sent there


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> BrokerCertificates:
    return ensure_certificates(tmp_path_factory.mktemp("broker-certs"), extra_sans=[LAN_ADDRESS])


@pytest.fixture(scope="module")
def tls_server(certs: BrokerCertificates) -> Iterator[int]:
    """A loopback TLS server presenting the broker's certificate; completes handshakes, then closes."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def _serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                conn.close()  # a client that refused our certificate

    thread = threading.Thread(target=_serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listener.close()


def _handshake(certs: BrokerCertificates, port: int, server_hostname: str) -> None:
    client = ssl.create_default_context(cafile=str(certs.ca_cert))
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client.wrap_socket(raw, server_hostname=server_hostname) as tls:
            tls.sendall(b"x")


def test_certificate_names_the_host_the_qemu_guest_and_the_extra_san(certs: BrokerCertificates) -> None:
    cert = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address(a) for a in ("127.0.0.1", "10.0.2.2", LAN_ADDRESS)
    }
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "10.0.2.2", LAN_ADDRESS])
def test_tls_handshake_checks_the_host_name_and_accepts(certs: BrokerCertificates, tls_server: int, name: str) -> None:
    _handshake(certs, tls_server, name)


@pytest.mark.parametrize("name", ["10.0.2.3", "broker.example.com", "192.168.1.51"])
def test_tls_handshake_refuses_a_name_the_certificate_does_not_carry(
    certs: BrokerCertificates, tls_server: int, name: str
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(certs, tls_server, name)


def test_a_ca_the_device_does_not_trust_is_refused(tls_server: int, tmp_path: Path) -> None:
    stranger = ensure_certificates(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"unable to get local issuer|self.signed"):
        _handshake(stranger, tls_server, "localhost")

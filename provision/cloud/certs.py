"""The test CA and server certificate of `provision broker`, kept across runs in one directory.

DIR/ca.pem is what clients trust (render it into the firmware with `provision render-ca --pem DIR/ca.pem`);
DIR/ca.key and DIR/server.key are private (0600). The CA is made once; the server certificate is remade
when its names change or it nears expiry, so a board flashed with DIR/ca.pem keeps working.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision.atomic import PRIVATE_DIR_MODE, write_private_file
from provision.errors import InputError

__all__ = [
    "DEFAULT_SANS",
    "BrokerCertificates",
    "ensure_certificates",
    "issue_server_certificate",
    "parse_san",
]

# 10.0.2.2 is the host as QEMU's user-mode network shows it to the guest.
DEFAULT_SANS: tuple[str, ...] = ("127.0.0.1", "localhost", "10.0.2.2")
CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=7)

SanName = x509.IPAddress | x509.DNSName


@dataclass(frozen=True)
class BrokerCertificates:
    """Paths of the PEM files Mosquitto and clients use."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def parse_san(text: str) -> SanName:
    """An IP address or DNS name for the server certificate.

    Raises:
        InputError: neither an IP address nor a host name.
    """
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    labels = text.split(".")
    if text and len(text) <= 253 and all(0 < len(label) <= 63 and label.replace("-", "").isalnum() for label in labels):
        return x509.DNSName(text)
    raise InputError(f"--san {text!r}: not an IP address or host name")


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256 ECDSA: supported by ESP-IDF's mbedtls defaults and by OpenSSL on the host.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_ca(cert_dir: Path) -> None:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provision broker test CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private_file(cert_dir / "ca.key", _key_pem(key))
    (cert_dir / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def issue_server_certificate(
    ca_cert_path: Path,
    ca_key_path: Path,
    sans: Sequence[str],
    cert_out: Path,
    key_out: Path,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> None:
    """Issue a server certificate for `sans` signed by the CA (tests use it for expired certificates)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise InputError(f"{ca_key_path}: not an EC private key")
    names = [parse_san(san) for san in sans]
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private_file(key_out, _key_pem(key))
    write_private_file(cert_out, cert.public_bytes(serialization.Encoding.PEM))


def _server_cert_current(certs: BrokerCertificates, sans: Sequence[str]) -> bool:
    if not certs.server_cert.is_file() or not certs.server_key.is_file():
        return False
    cert = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.timezone.utc):
        return False
    try:
        have = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return False
    return have == {parse_san(san) for san in sans}


def ensure_certificates(cert_dir: Path, extra_sans: Sequence[str] = ()) -> BrokerCertificates:
    """Make (or keep) the CA and a server certificate for DEFAULT_SANS plus `extra_sans`.

    Raises:
        InputError: a SAN is neither an IP address nor a host name.
    """
    sans = list(dict.fromkeys([*DEFAULT_SANS, *extra_sans]))
    for san in sans:
        parse_san(san)
    cert_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    certs = BrokerCertificates(
        ca_cert=cert_dir / "ca.pem",
        ca_key=cert_dir / "ca.key",
        server_cert=cert_dir / "server.pem",
        server_key=cert_dir / "server.key",
    )
    if not certs.ca_cert.is_file() or not certs.ca_key.is_file():
        _make_ca(cert_dir)
    if not _server_cert_current(certs, sans):
        now = dt.datetime.now(dt.timezone.utc)
        issue_server_certificate(
            certs.ca_cert,
            certs.ca_key,
            sans,
            certs.server_cert,
            certs.server_key,
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + SERVER_VALIDITY,
        )
    return certs

"""The test CA and server certificate of `provision broker`, kept across runs in one directory.

DIR/ca.pem is what clients trust (render it into the firmware with `provision render-ca --pem DIR/ca.pem`);
DIR/ca.key and DIR/server.key are private (0600). The CA is made once; the server certificate is remade
when its names or its key type change or it nears expiry, so a board flashed with DIR/ca.pem keeps working.

The server key is RSA 2048 by default: Alibaba's endpoint serves an RSA certificate, and the mbedtls Alibaba's
C Link SDK bundles has RSA key exchange only, so it cannot handshake with an ECDSA server (issue 10).
`key_type="ecdsa"` gives a P-256 server key instead. A new CA takes the same key type; an existing CA is
kept whatever its type (boards hold it), and only the server certificate is remade.
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
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision.atomic import PRIVATE_DIR_MODE, write_private_file
from provision.errors import InputError

__all__ = [
    "DEFAULT_SANS",
    "KEY_TYPES",
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
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KEY_TYPES: tuple[str, ...] = ("rsa", "ecdsa")
_RSA_BITS = 2048


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


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    if key_type == "ecdsa":
        # P-256 ECDSA: supported by ESP-IDF's mbedtls defaults and by OpenSSL on the host.
        return ec.generate_private_key(ec.SECP256R1())
    raise InputError(f"--key-type {key_type!r}: expected one of {', '.join(KEY_TYPES)}")


def _key_type_of(public_key: object) -> str | None:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ecdsa"
    return None


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_ca(cert_dir: Path, key_type: str) -> None:
    key = _new_key(key_type)
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
    key_type: str = "rsa",
) -> None:
    """Issue a server certificate for `sans` signed by the CA (tests use it for expired certificates)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InputError(f"{ca_key_path}: not an EC or RSA private key")
    names = [parse_san(san) for san in sans]
    key = _new_key(key_type)
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


def _server_cert_current(certs: BrokerCertificates, sans: Sequence[str], key_type: str) -> bool:
    if not certs.server_cert.is_file() or not certs.server_key.is_file():
        return False
    cert = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    if _key_type_of(cert.public_key()) != key_type:
        return False
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


def ensure_certificates(cert_dir: Path, extra_sans: Sequence[str] = (), key_type: str = "rsa") -> BrokerCertificates:
    """Make (or keep) the CA and a server certificate for DEFAULT_SANS plus `extra_sans`.

    Args:
        key_type: the server key, "rsa" (2048, the default, as the real endpoint) or "ecdsa" (P-256).

    Raises:
        InputError: a SAN is neither an IP address nor a host name, or an unknown key type.
    """
    if key_type not in KEY_TYPES:
        raise InputError(f"--key-type {key_type!r}: expected one of {', '.join(KEY_TYPES)}")
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
        _make_ca(cert_dir, key_type)
    if not _server_cert_current(certs, sans, key_type):
        now = dt.datetime.now(dt.timezone.utc)
        issue_server_certificate(
            certs.ca_cert,
            certs.ca_key,
            sans,
            certs.server_cert,
            certs.server_key,
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + SERVER_VALIDITY,
            key_type=key_type,
        )
    return certs

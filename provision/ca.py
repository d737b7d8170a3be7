"""The root-CA bundle the firmware trusts, rendered into a C header from a jinja2 template.

Default roots, taken by name from the system trust store (Debian's ca-certificates bundle, else certifi):
GlobalSign Root CA (R1) and GlobalSign Root CA - R6, the roots of the certificates Alibaba Cloud IoT
Platform's public MQTT endpoints present, and GlobalSign Root CA - R3 and GlobalSign Root R46, the roots of OSS,
where the platform's OTA images are downloaded from (Alibaba's notice "OSS HTTPS root certificate upgrade": R3
since July 2024, R46 from 15 June 2026, cross-signed by R1 only until 28 January 2027).
More roots (such as the "Aliyun IoT Root CA" of newer
instances, in no public trust store) come from PEM files the user passes; none of them is committed.
A name matches a certificate whose subject CN or OU equals it (R1: CN "GlobalSign Root CA";
R6: OU "GlobalSign Root CA - R6"; R46: CN "GlobalSign Root R46"), which is also how Mozilla labels them.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from provision.atomic import write_private_file
from provision.errors import EnvironmentProblem, InputError, ProvisionError

__all__ = [
    "DEFAULT_ROOT_NAMES",
    "RootCertificate",
    "check_header",
    "collect_roots",
    "render_header",
    "system_trust_stores",
    "write_header",
]

DEFAULT_ROOT_NAMES: Final = (
    "GlobalSign Root CA",
    "GlobalSign Root CA - R6",
    "GlobalSign Root CA - R3",
    "GlobalSign Root R46",
)
DEBIAN_BUNDLE: Final = Path("/etc/ssl/certs/ca-certificates.crt")
WARN_MONTHS: Final = 18
TEMPLATE: Final = "aliyun_root_ca.h.j2"


class HeaderOutOfDate(ProvisionError):
    """`render-ca --check` found a header that differs from what would be rendered (exit 1)."""


@dataclass(frozen=True)
class RootCertificate:
    """One root, with what the header's comment shows about it."""

    source: str
    subject: str
    sha256: str
    not_after: dt.datetime
    pem: str


def system_trust_stores() -> list[Path]:
    """PEM bundles searched for the default roots: Debian's, then certifi's when installed."""
    stores = [DEBIAN_BUNDLE]
    try:
        import certifi  # optional: only a fallback store

        stores.append(Path(certifi.where()))
    except ImportError:
        pass
    return stores


def _names(cert: x509.Certificate) -> set[str]:
    found = set()
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME):
        for attribute in cert.subject.get_attributes_for_oid(oid):
            found.add(str(attribute.value))
    return found


def _load_pem_file(path: Path, label: str) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{label}: cannot read: {exc.strerror}") from None
    try:
        # Trust-store bundles hold a few old roots with non-positive serials; cryptography warns on them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InputError(f"{label}: no PEM certificate could be read") from None


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, 28)
    return moment.replace(year=year, month=month, day=day)


def _validated(cert: x509.Certificate, source: str, now: dt.datetime, warn: Callable[[str], None]) -> RootCertificate:
    subject = cert.subject.rfc4514_string()
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise InputError(f"{source}: {subject}: not a CA certificate (basicConstraints CA:TRUE missing)")
    not_after = cert.not_valid_after_utc
    if not_after <= now:
        raise InputError(f"{source}: {subject}: expired on {not_after:%Y-%m-%d}")
    if cert.not_valid_before_utc > now:
        raise InputError(f"{source}: {subject}: not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    if not_after <= _add_months(now, WARN_MONTHS):
        warn(
            f"warning: {source}: {subject} expires on {not_after:%Y-%m-%d}, within {WARN_MONTHS} months: "
            "ship firmware that also trusts its successor"
        )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return RootCertificate(source, subject, _fingerprint(cert), not_after, pem)


def collect_roots(
    pem_files: Sequence[str | os.PathLike[str]] = (),
    *,
    names: Sequence[str] = DEFAULT_ROOT_NAMES,
    stores: Sequence[Path] | None = None,
    now: dt.datetime | None = None,
    warn: Callable[[str], None] = lambda _line: None,
) -> list[RootCertificate]:
    """The default roots by name from the trust stores, then every certificate of each PEM file,
    validated and without duplicates (same SHA-256).

    Raises:
        EnvironmentProblem: a default root is in none of the trust stores.
        InputError: a PEM file is unreadable, or a certificate is not a CA, expired or not yet valid.
    """
    moment = now or dt.datetime.now(dt.timezone.utc)
    search = list(stores) if stores is not None else system_trust_stores()
    found: dict[str, tuple[x509.Certificate, str]] = {}
    for store in search:
        if len(found) == len(names) or not store.is_file():
            continue
        for cert in _load_pem_file(store, str(store)):
            for name in names:
                if name not in found and name in _names(cert):
                    found[name] = (cert, f"{store} ({name})")
    missing = [name for name in names if name not in found]
    if missing:
        places = ", ".join(str(store) for store in search) or "no trust store"
        raise EnvironmentProblem(
            f"root CA {', '.join(missing)}: not found in {places}; install Debian's ca-certificates "
            "(apt-get install ca-certificates) or pass the certificate with --pem"
        )
    candidates = [found[name] for name in names]
    for pem_file in pem_files:
        label = os.fspath(pem_file)
        candidates.extend((cert, label) for cert in _load_pem_file(Path(pem_file), label))

    roots: list[RootCertificate] = []
    seen: set[str] = set()
    for cert, source in candidates:
        root = _validated(cert, source, moment, warn)
        if root.sha256 in seen:
            warn(f"note: {source}: {root.subject} is already in the bundle; dropped the duplicate")
            continue
        seen.add(root.sha256)
        roots.append(root)
    return roots


def render_header(roots: Sequence[RootCertificate]) -> str:
    """The C header text (deterministic: the same roots always render the same bytes)."""
    template_text = resources.files("provision").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    environment = jinja2.Environment(
        autoescape=False,  # noqa: S701 - renders C source, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["c_string_lines"] = _c_string_lines
    environment.filters["c_comment"] = c_comment_text
    bundle = "".join(root.pem for root in roots)
    return environment.from_string(template_text).render(roots=roots, bundle=bundle, bundle_len=len(bundle) + 1)


def c_comment_text(text: str) -> str:
    """`text` made safe inside a C block comment on one line: a subject is whatever the CA's owner typed, and
    `*/` would end the comment (the rest compiled as code), a newline would break the layout, a backslash
    at a line end would splice lines, and a non-ASCII character would not fit the ASCII header. Such
    characters become `\\xNN` / `\\uNNNN`, a backslash `\\\\`, and `*/` / `/*` get a backslash between."""
    out = []
    for char in text:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out).replace("*/", "*\\/").replace("/*", "/\\*")


def _c_string_lines(pem: str) -> list[str]:
    # PEM is base64 and header lines: no quote or backslash to escape, which this asserts.
    if any(char in pem for char in '"\\?'):
        raise ValueError("PEM text holds characters that need escaping in a C string")
    return [f'"{line}\\n"' for line in pem.splitlines()]


def write_header(out: str | os.PathLike[str], text: str) -> None:
    """Write the header atomically (a public file: mode 0644)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(path, text.encode("ascii"), mode=0o644)


def check_header(out: str | os.PathLike[str], text: str) -> None:
    """Raise HeaderOutOfDate unless the file at `out` is exactly `text`."""
    path = Path(out)
    try:
        current = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        current = None
    if current != text:
        state = "missing" if current is None else "out of date"
        raise HeaderOutOfDate(f"{path}: {state}; regenerate it with `provision render-ca --out {path}` (same --pem)")

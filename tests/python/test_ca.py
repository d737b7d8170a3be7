"""`provision render-ca` and provision.ca: default roots, extra PEMs, validation, --check, the C header."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from provision_testlib import ALIYUN_ROOT_PEM, REPO, RunCli

from provision import ca
from provision.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_FAILED

FIRMWARE_HEADER = REPO / "firmware" / "main" / "aliyun_root_ca.h"
NOW = dt.datetime.now(dt.timezone.utc)


def make_cert(path: Path, name: str, *, is_ca: bool = True, days_left: int = 3650, days_old: int = 10) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=days_old))
        .not_valid_after(NOW + dt.timedelta(days=days_left))
    )
    if is_ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_repository_header_is_current(run_cli: RunCli) -> None:
    """What CI runs over the header the firmware includes."""
    result = run_cli("render-ca", "--out", str(FIRMWARE_HEADER), "--check")
    assert result.code == 0, result.err
    assert result.out == f"{FIRMWARE_HEADER}: up to date (4 roots)\n"


def test_default_bundle_is_globalsign_r1_r6_and_the_oss_roots_r3_r46() -> None:
    roots = ca.collect_roots()
    assert [r.subject for r in roots] == [
        "CN=GlobalSign Root CA,OU=Root CA,O=GlobalSign nv-sa,C=BE",
        "CN=GlobalSign,O=GlobalSign,OU=GlobalSign Root CA - R6",
        "CN=GlobalSign,O=GlobalSign,OU=GlobalSign Root CA - R3",
        "CN=GlobalSign Root R46,O=GlobalSign nv-sa,C=BE",
    ]
    assert [f"{r.not_after:%Y-%m-%d}" for r in roots] == ["2028-01-28", "2034-12-10", "2029-03-18", "2046-03-20"]


def test_header_compiles_and_its_length_counts_the_nul(tmp_path: Path) -> None:
    source = tmp_path / "check.c"
    source.write_text(
        '#include "aliyun_root_ca.h"\n#include <string.h>\n#include <stdio.h>\n'
        "int main(void) {\n"
        '  printf("%zu %zu\\n", strlen(aliyun_root_ca_pem), aliyun_root_ca_pem_len);\n'
        "  return 0;\n}\n"
    )
    binary = tmp_path / "check"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(FIRMWARE_HEADER.parent),
            str(source),
            "-o",
            str(binary),
        ],
        check=True,
    )
    strlen, declared = map(
        int, subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.split()
    )
    assert declared == strlen + 1
    pem = "".join(r.pem for r in ca.collect_roots())
    assert strlen == len(pem)


def test_extra_pem_is_appended_and_commented(tmp_path: Path, run_cli: RunCli) -> None:
    out = tmp_path / "ca.h"
    result = run_cli("render-ca", "--out", str(out), "--pem", str(ALIYUN_ROOT_PEM))
    assert result.code == 0, result.err
    text = out.read_text()
    assert " * 5. CN=Aliyun IoT Root CA,OU=Root CA,O=Aliyun IoT,L=Hangzhou,ST=Zhejiang,C=CN" in text
    assert "expires 2053-07-04" in text
    assert text.count('"-----BEGIN CERTIFICATE-----\\n"') == 5
    assert run_cli("render-ca", "--out", str(out), "--pem", str(ALIYUN_ROOT_PEM), "--check").code == 0


def test_check_fails_on_a_stale_or_missing_header(tmp_path: Path, run_cli: RunCli) -> None:
    out = tmp_path / "ca.h"
    assert run_cli("render-ca", "--out", str(out)).code == 0
    result = run_cli("render-ca", "--out", str(out), "--pem", str(ALIYUN_ROOT_PEM), "--check")
    assert result.code == EXIT_FAILED
    assert result.err.splitlines()[-1] == (
        f"{out}: out of date; regenerate it with `provision render-ca --out {out}` (same --pem)"
    )
    result = run_cli("render-ca", "--out", str(tmp_path / "absent.h"), "--check")
    assert result.code == EXIT_FAILED
    assert not (tmp_path / "absent.h").exists()


def test_duplicates_are_dropped(tmp_path: Path, run_cli: RunCli) -> None:
    r6 = Path("/usr/share/ca-certificates/mozilla/GlobalSign_Root_CA_-_R6.crt")
    out = tmp_path / "ca.h"
    result = run_cli(
        "render-ca", "--out", str(out), "--pem", str(r6), "--pem", str(ALIYUN_ROOT_PEM), "--pem", str(ALIYUN_ROOT_PEM)
    )
    assert result.code == 0, result.err
    assert out.read_text().count("BEGIN CERTIFICATE") == 5
    assert "already in the bundle; dropped the duplicate" in result.err


def test_expiry_within_18_months_warns(tmp_path: Path, run_cli: RunCli) -> None:
    soon = make_cert(tmp_path / "soon.pem", "Soon Root", days_left=365)
    result = run_cli("render-ca", "--out", str(tmp_path / "ca.h"), "--pem", str(soon))
    assert result.code == 0
    assert f"warning: {soon}: CN=Soon Root expires on" in result.err
    # GlobalSign R1 ends 2028-01-28: the warning starts 18 months before.
    assert ("GlobalSign Root CA" in result.err) == (NOW >= dt.datetime(2026, 7, 28, tzinfo=dt.timezone.utc))


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"days_left": -1, "days_old": 400}, "expired on"),
        ({"is_ca": False}, "not a CA certificate (basicConstraints CA:TRUE missing)"),
        ({"is_ca": None}, "not a CA certificate (basicConstraints CA:TRUE missing)"),
        ({"days_old": -30}, "not valid before"),
    ],
    ids=["expired", "leaf", "no-constraints", "not-yet-valid"],
)
def test_bad_root_is_refused_and_nothing_written(tmp_path: Path, run_cli: RunCli, kwargs: dict, reason: str) -> None:
    bad = make_cert(tmp_path / "bad.pem", "Bad Root", **kwargs)
    out = tmp_path / "ca.h"
    result = run_cli("render-ca", "--out", str(out), "--pem", str(bad))
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines()[-1].startswith(f"{bad}: CN=Bad Root: {reason}")
    assert not out.exists()


def test_unreadable_pem(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    result = run_cli("render-ca", "--out", str(tmp_path / "ca.h"), "--pem", str(tmp_path / "junk.pem"))
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines()[-1] == f"{tmp_path / 'junk.pem'}: no PEM certificate could be read"


def test_default_root_missing_from_the_store(tmp_path: Path) -> None:
    store = make_cert(tmp_path / "store.pem", "Some Other Root")
    with pytest.raises(ca.EnvironmentProblem) as caught:
        ca.collect_roots(stores=[store])
    assert caught.value.exit_code == EXIT_ENVIRONMENT
    assert caught.value.lines == (
        "root CA GlobalSign Root CA, GlobalSign Root CA - R6, GlobalSign Root CA - R3, GlobalSign Root R46: "
        f"not found in {store}; install Debian's "
        "ca-certificates (apt-get install ca-certificates) or pass the certificate with --pem",
    )


def test_rendering_is_deterministic() -> None:
    roots = ca.collect_roots()
    assert ca.render_header(roots) == ca.render_header(ca.collect_roots())


def test_subject_cannot_end_the_comment_or_inject_code(tmp_path: Path, run_cli: RunCli) -> None:
    """A --pem CA is someone else's text: `*/` in its subject must not close the header's comment."""
    pem = make_cert(tmp_path / "evil.pem", "Evil */ int injected = 1; /* x\nsecond line é")
    out = tmp_path / "aliyun_root_ca.h"
    result = run_cli("render-ca", "--out", str(out), "--pem", str(pem))
    assert result.code == 0, result.err
    text = out.read_text(encoding="ascii")
    # rfc4514_string() has already escaped the `;` as `\;`; the filter doubles that backslash.
    assert " * 5. CN=Evil *\\/ int injected = 1\\\\; /\\* x\\x0asecond line \\u00e9\n" in text
    comment = text[: text.index("*/") + 2]
    assert "injected" in comment
    source = tmp_path / "use.c"
    # Were the subject compiled as code, `injected` would be defined twice (or the comment broken).
    source.write_text('#include "aliyun_root_ca.h"\nint injected = 2;\nint main(void) { return injected - 2; }\n')
    command = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), str(source), "-o", "use"]
    subprocess.run(command, check=True, cwd=tmp_path)
    assert subprocess.run([str(tmp_path / "use")], check=False).returncode == 0

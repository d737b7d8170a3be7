"""`provision broker` as a user runs it: certificates, foreground run, clean stop, secrets gone afterwards."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from provision.cli import main
from provision.cloud.broker import parse_route
from provision.cloud.certs import ensure_certificates
from provision.errors import InputError


def _mosquitto_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and "mosquitto" in stat.split(")")[0]:
            found.append(int(entry.name))
    return found


def test_the_server_certificate_names_loopback_qemu_and_extra_sans(tmp_path):
    certs = ensure_certificates(tmp_path, ["192.168.7.20", "broker.lan"])
    cert = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.2.2"),
        ipaddress.ip_address("192.168.7.20"),
    }
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "broker.lan"}
    assert oct(certs.ca_key.stat().st_mode & 0o777) == "0o600"
    assert oct(certs.server_key.stat().st_mode & 0o777) == "0o600"


def test_the_ca_is_kept_across_runs_and_the_server_cert_follows_the_sans(tmp_path):
    first = ensure_certificates(tmp_path)
    ca = first.ca_cert.read_bytes()
    server = first.server_cert.read_bytes()
    second = ensure_certificates(tmp_path)
    assert second.ca_cert.read_bytes() == ca
    assert second.server_cert.read_bytes() == server
    third = ensure_certificates(tmp_path, ["192.168.7.21"])
    assert third.ca_cert.read_bytes() == ca
    assert third.server_cert.read_bytes() != server


def test_a_tls_client_checking_the_host_name_accepts_localhost(broker, broker_certs):
    context = ssl.create_default_context(cafile=str(broker_certs.ca_cert))
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="not-the-broker.example")


@pytest.mark.parametrize("route", ["noequals", "=/a", "/a=", "/a/#/b=/c", "/a/b+=/c", "/a/+=/c/+", "/a=/c/#"])
def test_bad_routes_are_refused_with_one_line(route):
    with pytest.raises(InputError) as info:
        parse_route(route)
    assert len(info.value.lines) == 1
    assert route in info.value.lines[0]


def test_the_cli_refuses_a_bad_route_and_starts_nothing(devices_csv, tmp_path, capsys):
    code = main(["broker", "--csv", str(devices_csv), "--cert-dir", str(tmp_path / "c"), "--route", "bad"])
    assert code == 3
    assert "--route 'bad'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("stop_signal", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["sigterm", "sigint", "ctrl-c-to-the-terminal-group"],
)
def test_the_broker_runs_in_the_foreground_and_stops_cleanly(
    stop_signal, to_group, devices_csv, devices, tmp_path, broker_plugin
):
    cert_dir = tmp_path / "certs"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provision.cli",
            "broker",
            "--csv",
            str(devices_csv),
            "--cert-dir",
            str(cert_dir),
            "--port",
            "0",
            "--plugin",
            str(broker_plugin),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, as a shell gives a foreground job
    )
    try:
        seen = []
        while not (line := process.stdout.readline()).startswith("broker: mqtts://") and line:
            seen.append(line)  # Mosquitto's own log shares stdout in the foreground
        banner = line
        assert banner.startswith("broker: mqtts://127.0.0.1:"), seen
        assert str(cert_dir / "ca.pem") in banner
        children = _mosquitto_children(process.pid)
        assert len(children) == 1
        command = Path(f"/proc/{children[0]}/cmdline").read_bytes().split(b"\0")
        run_dir = Path(command[command.index(b"-c") + 1].decode()).parent
        assert (run_dir / "mosquitto.conf").exists()
        assert not (run_dir / "rules").exists(), "the secrets file is gone once Mosquitto has read it"
        time.sleep(0.2)
        if to_group:
            os.killpg(process.pid, stop_signal)
        else:
            process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
    assert process.returncode == 0, output
    assert "broker: stopped" in output
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not run_dir.exists(), "the run directory with the secrets file is deleted on stop"
    for device in devices:
        assert device.device_secret not in output


def test_the_broker_log_holds_no_secret_or_password(broker, broker_certs, devices):
    from provision.device_client import connect_device

    device = devices[0]
    client, outcome = connect_device(device, host="127.0.0.1", port=broker.port, ca_file=broker_certs.ca_cert)
    password = client.credentials.password
    client.close()
    assert outcome.accepted
    time.sleep(0.2)
    log = broker.log_file.read_text()
    assert device.device_name in log  # the log is the real one
    assert device.device_secret not in log
    assert password not in log


def test_a_start_that_fails_before_mosquitto_listens_leaves_no_secrets_file(
    broker_plugin, broker_certs, devices, tmp_path, monkeypatch
):
    import provision.cloud.broker as broker_module
    from provision.cloud.broker import BrokerProcess, BrokerSettings

    run_root = tmp_path / "runs"
    run_root.mkdir()
    monkeypatch.setattr(broker_module.tempfile, "tempdir", str(run_root))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C between writing the rules file and Mosquitto reading it

    monkeypatch.setattr(broker_module.subprocess, "Popen", interrupted)
    settings = BrokerSettings(devices=devices, certs=broker_certs, port=0, plugin=broker_plugin)
    with pytest.raises(KeyboardInterrupt), BrokerProcess(settings):
        pass
    assert list(run_root.iterdir()) == [], "the run directory with the secrets file is removed"


def test_a_sigkill_during_start_leaves_secrets_that_the_next_start_removes(devices_csv, tmp_path, broker_plugin):
    runs = tmp_path / "tmp"
    runs.mkdir()
    command = [sys.executable, "-m", "provision.cli", "broker", "--csv", str(devices_csv), "--cert-dir"]
    command += [str(tmp_path / "certs"), "--port", "0", "--plugin", str(broker_plugin)]
    env = {**os.environ, "TMPDIR": str(runs)}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not list(runs.glob("provision-broker-*/rules")) and time.monotonic() < deadline:
        time.sleep(0.001)  # the rules file lives until Mosquitto listens: kill inside that window
    first.kill()
    first.wait()
    leftovers = list(runs.glob("provision-broker-*/rules"))
    assert leftovers, "the kill landed outside the start window"
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while (line := second.stdout.readline()) and not line.startswith("broker: Ctrl-C"):
            pass
        assert line, "the second broker did not start"
        assert not any(path.exists() for path in leftovers), "the killed run's secrets file is still there"
        assert not any(runs.glob("provision-broker-*/rules"))
    finally:
        second.terminate()
        second.wait(timeout=10)


def test_the_server_key_is_rsa_by_default_ecdsa_on_request_and_an_old_dir_follows(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def server_key(certs):
        return x509.load_pem_x509_certificate(certs.server_cert.read_bytes()).public_key()

    assert isinstance(server_key(ensure_certificates(tmp_path / "new")), rsa.RSAPublicKey)
    old = ensure_certificates(tmp_path / "old", key_type="ecdsa")  # a cert dir of an earlier version
    assert isinstance(server_key(old), ec.EllipticCurvePublicKey)
    ca = old.ca_cert.read_bytes()
    again = ensure_certificates(tmp_path / "old")
    assert isinstance(server_key(again), rsa.RSAPublicKey)
    assert again.ca_cert.read_bytes() == ca, "boards flashed with the old CA keep working"
    with pytest.raises(InputError):
        ensure_certificates(tmp_path / "bad", key_type="dsa")


def test_a_client_with_rsa_key_exchange_only_handshakes(broker, broker_certs):
    # Alibaba's C Link SDK's mbedtls offers only TLS_RSA_* suites: it cannot use an ECDSA server key
    context = ssl.create_default_context(cafile=str(broker_certs.ca_cert))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-SHA256:AES256-SHA256:AES128-GCM-SHA256")
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.cipher()[0] in ("AES128-SHA256", "AES256-SHA256", "AES128-GCM-SHA256")

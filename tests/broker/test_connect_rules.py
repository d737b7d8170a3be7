"""CONNECT rules the plugin enforces, checked with real paho-mqtt clients over TLS against real Mosquitto."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from provision.cloud.broker import BrokerProcess
from provision.cloud.certs import BrokerCertificates
from provision.credentials import Device
from provision.device_client import DeviceClient, connect_device
from provision.signing import MqttCredentials, now_ms, sign_content

SIGN_METHODS = ("hmacmd5", "hmacsha1", "hmacsha256")


def _connect(device: Device, broker: BrokerProcess, certs: BrokerCertificates, **kwargs: object):
    client, outcome = connect_device(
        device,
        host="127.0.0.1",
        port=broker.port,
        ca_file=certs.ca_cert,
        **kwargs,  # type: ignore[arg-type]
    )
    client.close()
    return outcome


def _hand_signed(device: Device, cid: str, extension: str, timestamp: int | None, secret: str) -> MqttCredentials:
    """Credentials built here, bypassing sign()'s own checks, to send what a broken client would send."""
    content = sign_content(cid, device.device_name, device.product_key, timestamp)
    password = hmac.new(secret.encode(), content.encode(), hashlib.sha1).hexdigest().upper()
    return MqttCredentials(
        client_id=f"{cid}|{extension}|",
        username=f"{device.device_name}&{device.product_key}",
        password=password,
        host="127.0.0.1",
        port=0,
        sign_method="hmacsha1",
        timestamp=timestamp,
    )


def _connect_raw(credentials: MqttCredentials, broker: BrokerProcess, certs: BrokerCertificates, keepalive_s: int = 60):
    client = DeviceClient(
        credentials, host="127.0.0.1", port=broker.port, ca_file=certs.ca_cert, keepalive_s=keepalive_s
    )
    outcome = client.connect()
    client.close()
    return outcome


@pytest.mark.parametrize("method", SIGN_METHODS)
def test_right_credentials_are_accepted_for_every_sign_method(method, broker, broker_certs, devices):
    assert _connect(devices[0], broker, broker_certs, sign_method=method).accepted


@pytest.mark.parametrize("method", SIGN_METHODS)
def test_a_wrong_secret_is_refused_for_every_sign_method(method, broker, broker_certs, devices):
    device = devices[0]
    wrong = Device(device.product_key, device.device_name, "0" * 32, None, None, 0)
    outcome = _connect(wrong, broker, broker_certs, sign_method=method)
    assert not outcome.accepted
    assert "authori" in outcome.reason.lower()


def test_without_timestamp_the_signature_covers_only_what_was_sent(broker, broker_certs, devices):
    assert _connect(devices[0], broker, broker_certs, timestamp=None).accepted


def test_the_aliyun_sdk_fixed_timestamp_is_accepted_when_skew_is_not_checked(broker, broker_certs, devices):
    assert _connect(devices[0], broker, broker_certs, timestamp=2524608000000, client_id="a1BrokerTst.lamp").accepted


def test_a_signature_over_other_fields_is_refused(broker, broker_certs, devices):
    device = devices[0]
    # signed with a timestamp, but the client id extension does not send it
    credentials = _hand_signed(device, "cid1", "securemode=2,signmethod=hmacsha1", None, device.device_secret)
    assert _connect_raw(credentials, broker, broker_certs).accepted
    signed_with_time = _hand_signed(device, "cid1", "securemode=2,signmethod=hmacsha1", 789, device.device_secret)
    assert not _connect_raw(
        MqttCredentials(
            credentials.client_id,
            credentials.username,
            signed_with_time.password,
            "127.0.0.1",
            0,
            "hmacsha1",
            None,
        ),
        broker,
        broker_certs,
    ).accepted


def test_an_unknown_device_is_refused(broker, broker_certs, devices):
    stranger = Device(devices[0].product_key, "not-in-csv", devices[0].device_secret, None, None, 0)
    assert not _connect(stranger, broker, broker_certs).accepted


def test_a_client_id_without_extension_is_refused(broker, broker_certs, devices):
    credentials = _hand_signed(devices[0], "cid1", "securemode=2,signmethod=hmacsha1", None, devices[0].device_secret)
    bare = MqttCredentials("cid1", credentials.username, credentials.password, "127.0.0.1", 0, "hmacsha1", None)
    assert not _connect_raw(bare, broker, broker_certs).accepted


@pytest.mark.parametrize(("keepalive_s", "accepted"), [(29, False), (30, True), (1200, True), (1201, False)])
def test_keepalive_must_be_30_to_1200_seconds(keepalive_s, accepted, broker, broker_certs, devices):
    assert _connect(devices[0], broker, broker_certs, keepalive_s=keepalive_s).accepted is accepted


@pytest.mark.parametrize(("length", "accepted"), [(64, True), (65, False)])
def test_client_id_is_at_most_64_characters(length, accepted, broker, broker_certs, devices):
    device = devices[0]
    ts = now_ms()
    credentials = _hand_signed(
        device, "c" * length, f"securemode=2,signmethod=hmacsha1,timestamp={ts}", ts, device.device_secret
    )
    assert _connect_raw(credentials, broker, broker_certs).accepted is accepted


def test_securemode_3_is_refused_on_the_tls_listener(broker, broker_certs, devices):
    device = devices[0]
    credentials = _hand_signed(device, "cid1", "securemode=3,signmethod=hmacsha1", None, device.device_secret)
    assert not _connect_raw(credentials, broker, broker_certs).accepted


def test_plain_tcp_listens_only_with_allow_tcp(start_broker, devices):
    plain_only = start_broker()
    assert plain_only.tcp_port is None
    broker = start_broker(allow_tcp=True)
    device = devices[0]
    client, outcome = connect_device(device, host="127.0.0.1", port=broker.tcp_port, ca_file=None)
    client.close()
    assert outcome.accepted
    # securemode 2 credentials over the plain listener are refused
    credentials = _hand_signed(device, "cid1", "securemode=2,signmethod=hmacsha1", None, device.device_secret)
    plain = DeviceClient(credentials, host="127.0.0.1", port=broker.tcp_port, ca_file=None)
    assert not plain.connect().accepted
    plain.close()


def test_max_skew_refuses_timestamps_far_from_the_broker_clock(start_broker, broker_certs, devices):
    broker = start_broker(max_skew_s=60)
    now = int(time.time() * 1000)
    assert _connect(devices[0], broker, broker_certs, timestamp=now).accepted
    assert not _connect(devices[0], broker, broker_certs, timestamp=now - 600_000).accepted
    assert not _connect(devices[0], broker, broker_certs, timestamp=now + 600_000).accepted
    assert not _connect(devices[0], broker, broker_certs, timestamp=None).accepted


def test_skew_is_not_checked_by_default(broker, broker_certs, devices):
    assert _connect(devices[0], broker, broker_certs, timestamp=int(time.time() * 1000) - 86_400_000).accepted

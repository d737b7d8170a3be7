"""`provision sign` and provision.signing: the published vector, independent vectors, refusals."""

from __future__ import annotations

import json
import subprocess

import pytest
from provision_testlib import RunCli

from provision import signing
from provision.errors import EXIT_BAD_INPUT, InputError


def openssl_hmac(algorithm: str, key: str, content: str) -> str:
    """An independent implementation: OpenSSL's command-line HMAC."""
    done = subprocess.run(
        ["openssl", "dgst", f"-{algorithm}", "-hmac", key],
        input=content.encode(),
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().rsplit("= ", 1)[1].strip().upper()


def test_published_aliyun_vector() -> None:
    creds = signing.sign("pk", "device", "secret", client_id="12345", timestamp=789)
    assert creds.password == "FAFD82A3D602B37FB0FA8B7892F24A477F851A14"
    assert creds.client_id == "12345|securemode=2,signmethod=hmacsha1,timestamp=789|"
    assert creds.username == "device&pk"
    assert (creds.host, creds.port) == ("pk.iot-as-mqtt.cn-shanghai.aliyuncs.com", 8883)


def test_sign_json_has_exactly_the_documented_keys(run_cli: RunCli) -> None:
    result = run_cli(
        "sign", "--product-key", "pk", "--device-name", "device", "--device-secret", "secret",
        "--client-id", "12345", "--timestamp", "789", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "client_id": "12345|securemode=2,signmethod=hmacsha1,timestamp=789|",
        "username": "device&pk",
        "password": "FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
        "host": "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com",
        "port": 8883,
        "sign_method": "hmacsha1",
        "timestamp": 789,
    }


@pytest.mark.parametrize(("method", "openssl_name"), [("hmacmd5", "md5"), ("hmacsha256", "sha256")])
def test_other_methods_match_openssl(run_cli: RunCli, method: str, openssl_name: str) -> None:
    content = "clientIdesp32-c3-07deviceNameesp32-c3-07productKeya1B2c3D4e5Ftimestamp1700000000000"
    expected = openssl_hmac(openssl_name, "Z5eSAPOUThaWNMGbDDvHXXAvrDtNQHPE", content)
    result = run_cli(
        "sign", "--product-key", "a1B2c3D4e5F", "--device-name", "esp32-c3-07",
        "--device-secret", "Z5eSAPOUThaWNMGbDDvHXXAvrDtNQHPE", "--timestamp", "1700000000000",
        "--sign-method", method, "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    fields = json.loads(result.out)
    assert fields["password"] == expected
    assert fields["client_id"] == f"esp32-c3-07|securemode=2,signmethod={method},timestamp=1700000000000|"


def test_no_timestamp_leaves_it_out_of_client_id_and_content(run_cli: RunCli) -> None:
    expected = openssl_hmac("sha1", "secret", "clientId12345deviceNamedeviceproductKeypk")
    result = run_cli(
        "sign", "--product-key", "pk", "--device-name", "device", "--device-secret", "secret",
        "--client-id", "12345", "--timestamp", "none", "--json",
    )  # fmt: skip
    fields = json.loads(result.out)
    assert fields["password"] == expected
    assert fields["client_id"] == "12345|securemode=2,signmethod=hmacsha1|"
    assert fields["timestamp"] is None


def test_default_timestamp_is_now_in_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing.time, "time_ns", lambda: 1_700_000_000_123_456_789)
    creds = signing.sign("pk", "device", "secret")
    assert creds.timestamp == 1_700_000_000_123
    assert creds.client_id == "device|securemode=2,signmethod=hmacsha1,timestamp=1700000000123|"


def test_secure_mode_3_and_instance_endpoint(run_cli: RunCli) -> None:
    result = run_cli(
        "sign", "--product-key", "pk", "--device-name", "device", "--device-secret", "secret",
        "--secure-mode", "3", "--endpoint", "iot-06z00abc.mqtt.iothub.aliyuncs.com", "--timestamp", "1", "--json",
    )  # fmt: skip
    fields = json.loads(result.out)
    assert (fields["host"], fields["port"]) == ("iot-06z00abc.mqtt.iothub.aliyuncs.com", 1883)
    assert "securemode=3" in fields["client_id"]


def test_region_builds_the_legacy_host() -> None:
    creds = signing.sign("a1B2c3D4e5F", "device", "secret", region="ap-southeast-1", timestamp=None)
    assert creds.host == "a1B2c3D4e5F.iot-as-mqtt.ap-southeast-1.aliyuncs.com"


def test_plain_output_lists_every_field(run_cli: RunCli) -> None:
    result = run_cli(
        "sign", "--product-key", "pk", "--device-name", "device", "--device-secret", "secret",
        "--client-id", "12345", "--timestamp", "789",
    )  # fmt: skip
    assert result.out.splitlines() == [
        "client_id: 12345|securemode=2,signmethod=hmacsha1,timestamp=789|",
        "username: device&pk",
        "password: FAFD82A3D602B37FB0FA8B7892F24A477F851A14",
        "host: pk.iot-as-mqtt.cn-shanghai.aliyuncs.com",
        "port: 8883",
        "sign_method: hmacsha1",
        "timestamp: 789",
    ]


def test_secret_may_come_from_the_environment(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_DEVICE_SECRET", "secret")
    result = run_cli("sign", "--product-key", "pk", "--device-name", "device", "--client-id", "12345",
                     "--timestamp", "789", "--json")  # fmt: skip
    assert json.loads(result.out)["password"] == "FAFD82A3D602B37FB0FA8B7892F24A477F851A14"


BASE = ["sign", "--product-key", "pk", "--device-name", "device", "--device-secret", "secret", "--timestamp", "789"]


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (["--client-id", "c" * 65], "client id: 65 characters, the platform accepts at most 64"),
        (["--client-id", "a|b"], "client id: character 2 is `|`, which ends the client id and starts its parameters"),
        (["--client-id", "a\nb"], "client id: character 2 is a control character"),
        (["--client-id", "a\x7fb"], "client id: character 2 is a control character"),
        (["--client-id", ""], "client id: empty"),
        (["--product-key", ""], "product key: empty"),
        (["--device-name", ""], "device name: empty"),
        (["--device-secret", ""], "device secret: empty"),
        (
            ["--device-name", "d v"],
            "device name: character 2 is not allowed: must be 4-32 characters of A-Z a-z 0-9 - _ @ . :",
        ),
        (["--product-key", "k" * 65], "product key: 65 characters, at most 64 are accepted"),
        (["--device-secret", "s" * 129], "device secret: 129 characters, at most 128 are accepted"),
        (["--device-secret", "has space"], "device secret: only printable ASCII without spaces is accepted"),
        (["--timestamp", "soon"], "timestamp: 'soon' is not milliseconds, 'now' or 'none'"),
        (["--timestamp", "1" * 21], "timestamp: 21 digits, at most 20 are accepted"),
        (["--region", "Shanghai"], "region: not a region id such as cn-shanghai (lower-case letters, digits and -)"),
        (
            ["--endpoint", "mqtts://x.cn:8883"],
            "endpoint: not a host name, localhost or an IP address (no scheme, no port)",
        ),
        (
            ["--endpoint", "127.0.0.1:8883"],
            "endpoint: not a host name, localhost or an IP address (no scheme, no port)",
        ),
        *(
            (["--product-key", f"a1ProbePK01{char}dev"], "product key: letters and digits only (/ + # & would "
             "change the topics and the username)")
            for char in "/+#&."
        ),
    ],
    ids=["cid-too-long", "cid-pipe", "cid-newline", "cid-del", "cid-empty", "pk-empty", "dn-empty", "secret-empty",
         "dn-space", "pk-65", "secret-129", "secret-space", "timestamp-word", "timestamp-21-digits", "region",
         "endpoint-url", "endpoint-port", "pk-slash", "pk-plus", "pk-hash", "pk-amp", "pk-dot"],
)  # fmt: skip
def test_refuses_what_the_platform_refuses(run_cli: RunCli, extra: list[str], line: str) -> None:
    result = run_cli(*BASE, *extra)
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == [line]
    assert result.out == ""


@pytest.mark.parametrize("client_id", ["a1TestPK001.dev-0001", "a1TestPK001&dev-0001", "A4:CF:12:34:56:78", "id,=x"])
def test_client_ids_of_the_platform_and_sdks_are_accepted(client_id: str) -> None:
    creds = signing.sign("pk", "device", "secret", client_id=client_id, timestamp=1)
    assert creds.client_id == f"{client_id}|securemode=2,signmethod=hmacsha1,timestamp=1|"


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1", "192.168.1.20", "::1", "localhost", "a1b.iot-as-mqtt.cn-shanghai.aliyuncs.com"]
)
def test_endpoint_may_be_an_address_or_localhost(run_cli: RunCli, endpoint: str) -> None:
    result = run_cli(*BASE, "--endpoint", endpoint, "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["host"] == endpoint


def test_client_id_of_exactly_64_is_accepted() -> None:
    creds = signing.sign("pk", "device", "secret", client_id="c" * 64, timestamp=1)
    assert creds.client_id.startswith("c" * 64 + "|")


def test_library_rejects_unknown_method_and_mode() -> None:
    with pytest.raises(InputError) as caught:
        signing.sign("pk", "device", "secret", sign_method="hmacsha512", secure_mode=1)
    assert caught.value.lines == (
        "sign method: 'hmacsha512' is not one of hmacmd5, hmacsha1, hmacsha256",
        "secure mode: 1 is not 2 (TLS) or 3 (TCP)",
    )


def test_password_never_in_repr() -> None:
    creds = signing.sign("pk", "device", "secret", timestamp=1)
    assert creds.password not in repr(creds)

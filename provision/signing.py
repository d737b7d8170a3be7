"""MQTT CONNECT parameters for one device on Alibaba Cloud IoT Platform (direct connection with a triple).

Source: Alibaba Cloud IoT Platform documentation, "Establish MQTT connections over TCP" (MQTT-TCP
连接通信) and "How do I calculate MQTT signature parameters": the password is the hex HMAC of
"clientId{cid}deviceName{dn}productKey{pk}timestamp{ts}" (parameters sorted by name; one left out of the
content when it is not sent in the client id) keyed with the DeviceSecret; the MQTT client id is
`{cid}|securemode={mode},signmethod={method}[,timestamp={ts}]|`; the username is `{dn}&{pk}`.
Published vector: key "secret", content "clientId12345deviceNamedeviceproductKeypktimestamp789",
hmacsha1 -> FAFD82A3D602B37FB0FA8B7892F24A477F851A14.

"Now" is a sentinel, not None: `timestamp=NOW` (the default) reads the clock in milliseconds,
`timestamp=None` leaves the timestamp out, an int is used as given.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from provision.credentials import PRODUCT_KEY_RULE, device_name_problem
from provision.errors import InputError

__all__ = [
    "CLIENT_ID_MAX",
    "NOW",
    "SECURE_MODE_PORTS",
    "SIGN_METHODS",
    "MqttCredentials",
    "Now",
    "endpoint_problem",
    "legacy_host",
    "now_ms",
    "parse_timestamp",
    "sign",
    "sign_content",
]


class Now(enum.Enum):
    """Type of the `NOW` sentinel: "read the clock when signing"."""

    NOW = "now"


NOW: Final = Now.NOW

SIGN_METHODS: Final = {"hmacmd5": hashlib.md5, "hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}
# securemode 2 = TLS on 8883; 3 = plain TCP on 1883 (refused for products created after 2022-08-02).
SECURE_MODE_PORTS: Final = {2: 8883, 3: 1883}
# The platform documents clientId as at most 64 characters. `|` ends the id and starts the extension, so it
# and control characters are refused; everything else is what the platform's own examples and Alibaba's SDKs
# put there (the MAC, `pk.dn`, `pk&dn`: the part before the first `|` is the id, whatever it holds).
CLIENT_ID_MAX: Final = 64
# The firmware core and the broker plugin hold a timestamp in 20 decimal digits (a uint64's width,
# ALIYUN_AUTH_TIMESTAMP_MAX): a longer one would sign here and be refused by both.
TIMESTAMP_DIGITS_MAX: Final = 20
# The same C buffers bound the product key and the secret (ALIYUN_AUTH_PRODUCT_KEY_MAX,
# ALIYUN_AUTH_DEVICE_SECRET_MAX in aliyun_auth.h): past them both C signers refuse, so this one does too.
PRODUCT_KEY_MAX: Final = 64
DEVICE_SECRET_MAX: Final = 128
PRODUCT_KEY_RE: Final = re.compile(r"[A-Za-z0-9]+")
SECRET_RE: Final = re.compile(r"[\x21-\x7e]+")
REGION_RE: Final = re.compile(r"[a-z]{2}(-[a-z0-9]+){1,3}")
HOSTNAME_RE: Final = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


@dataclass(frozen=True)
class MqttCredentials:
    """What an MQTT client needs to CONNECT. `password` is uppercase hex."""

    client_id: str
    username: str
    password: str = field(repr=False)
    host: str
    port: int
    sign_method: str
    timestamp: int | None

    def to_json_dict(self) -> dict[str, str | int | None]:
        """Exactly the keys `provision sign --json` prints."""
        return {
            "client_id": self.client_id,
            "username": self.username,
            "password": self.password,
            "host": self.host,
            "port": self.port,
            "sign_method": self.sign_method,
            "timestamp": self.timestamp,
        }


def now_ms() -> int:
    """The wall clock in milliseconds since the epoch, as the platform expects the timestamp."""
    return time.time_ns() // 1_000_000


def legacy_host(product_key: str, region: str) -> str:
    """The public-instance endpoint `${pk}.iot-as-mqtt.${region}.aliyuncs.com`."""
    return f"{product_key}.iot-as-mqtt.{region}.aliyuncs.com"


def sign_content(client_id: str, device_name: str, product_key: str, timestamp: int | None) -> str:
    """The signed string: parameters sorted by name, the timestamp left out when not sent."""
    content = f"clientId{client_id}deviceName{device_name}productKey{product_key}"
    if timestamp is not None:
        content += f"timestamp{timestamp}"
    return content


def _check(product_key: str, device_name: str, device_secret: str, client_id: str | None, region: str) -> list[str]:
    problems: list[str] = []
    if not product_key:
        problems.append("product key: empty")
    elif PRODUCT_KEY_RE.fullmatch(product_key) is None:
        problems.append(f"product key: {PRODUCT_KEY_RULE} (/ + # & would change the topics and the username)")
    elif len(product_key) > PRODUCT_KEY_MAX:
        problems.append(f"product key: {len(product_key)} characters, at most {PRODUCT_KEY_MAX} are accepted")
    if not device_name:
        problems.append("device name: empty")
    elif (problem := device_name_problem(device_name)) is not None:
        problems.append(f"device name: {problem}")
    if not device_secret:
        problems.append("device secret: empty")
    elif SECRET_RE.fullmatch(device_secret) is None:
        problems.append("device secret: only printable ASCII without spaces is accepted")
    elif len(device_secret) > DEVICE_SECRET_MAX:
        problems.append(f"device secret: {len(device_secret)} characters, at most {DEVICE_SECRET_MAX} are accepted")
    if client_id is None:
        pass  # the device name, already checked, is a valid client id
    elif not client_id:
        problems.append("client id: empty")
    elif len(client_id) > CLIENT_ID_MAX:
        problems.append(f"client id: {len(client_id)} characters, the platform accepts at most {CLIENT_ID_MAX}")
    elif (problem := _client_id_problem(client_id)) is not None:
        problems.append(f"client id: {problem}")
    if not region:
        problems.append("region: empty")
    elif REGION_RE.fullmatch(region) is None:
        problems.append("region: not a region id such as cn-shanghai (lower-case letters, digits and -)")
    return problems


def _client_id_problem(client_id: str) -> str | None:
    for position, char in enumerate(client_id, start=1):
        if char == "|":
            return f"character {position} is `|`, which ends the client id and starts its parameters"
        if unicodedata.category(char) == "Cc":
            return f"character {position} is a control character"
    return None


def endpoint_problem(endpoint: str) -> str | None:
    """Why `endpoint` is not a host to connect to (a DNS name, `localhost`, an IPv4 or IPv6 address), or None."""
    if endpoint == "localhost" or HOSTNAME_RE.fullmatch(endpoint) is not None:
        return None
    try:
        ipaddress.ip_address(endpoint)
    except ValueError:
        return "not a host name, localhost or an IP address (no scheme, no port)"
    return None


def sign(
    product_key: str,
    device_name: str,
    device_secret: str,
    *,
    client_id: str | None = None,
    timestamp: int | Now | None = NOW,
    sign_method: str = "hmacsha1",
    secure_mode: int = 2,
    region: str = "cn-shanghai",
    endpoint: str | None = None,
) -> MqttCredentials:
    """Compute the MQTT CONNECT parameters.

    Args:
        client_id: the `cid` part; default: the device name.
        timestamp: milliseconds; `None` leaves it out of the client id and the signed content;
            `NOW` (default) reads the clock.
        sign_method: hmacmd5, hmacsha1 or hmacsha256.
        secure_mode: 2 (TLS, port 8883) or 3 (plain TCP, port 1883).
        region: used for the legacy endpoint.
        endpoint: an instance endpoint host that replaces the legacy one.

    Raises:
        InputError: one line per value the platform would refuse (the secret is never quoted).
    """
    cid = device_name if client_id is None else client_id
    problems = _check(product_key, device_name, device_secret, client_id, region)
    digest = SIGN_METHODS.get(sign_method)
    if digest is None:
        problems.append(f"sign method: {sign_method!r} is not one of {', '.join(SIGN_METHODS)}")
    port = SECURE_MODE_PORTS.get(secure_mode)
    if port is None:
        problems.append(f"secure mode: {secure_mode} is not 2 (TLS) or 3 (TCP)")
    if endpoint is not None and (problem := endpoint_problem(endpoint)) is not None:
        problems.append(f"endpoint: {problem}")
    resolved = now_ms() if isinstance(timestamp, Now) else timestamp
    if resolved is not None and resolved < 0:
        problems.append(f"timestamp: {resolved} is negative")
    elif resolved is not None and len(str(resolved)) > TIMESTAMP_DIGITS_MAX:
        problems.append(f"timestamp: {len(str(resolved))} digits, at most {TIMESTAMP_DIGITS_MAX} are accepted")
    if problems or digest is None or port is None:
        raise InputError(*problems)

    content = sign_content(cid, device_name, product_key, resolved)
    password = hmac.new(device_secret.encode(), content.encode(), digest).hexdigest().upper()
    extension = f"securemode={secure_mode},signmethod={sign_method}"
    if resolved is not None:
        extension += f",timestamp={resolved}"
    return MqttCredentials(
        client_id=f"{cid}|{extension}|",
        username=f"{device_name}&{product_key}",
        password=password,
        host=endpoint if endpoint is not None else legacy_host(product_key, region),
        port=port,
        sign_method=sign_method,
        timestamp=resolved,
    )


def parse_timestamp(text: str) -> int | Now | None:
    """The `--timestamp` flag: "now", "none" (left out), or milliseconds since the epoch.

    Raises:
        InputError: anything else.
    """
    lowered = text.strip().lower()
    if lowered == "now":
        return NOW
    if lowered == "none":
        return None
    if not lowered.isdigit():
        raise InputError(f"timestamp: {text!r} is not milliseconds, 'now' or 'none'")
    return int(lowered)

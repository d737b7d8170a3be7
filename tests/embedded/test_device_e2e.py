"""The device end to end against the local broker, written once with whole-line expectations
(e2e_lines.expect_line over dut.expect()): the host build here,
the QEMU build with `--embedded-services idf,qemu`, a flashed board with `--embedded-services esp,idf`
(command lines in README, "Local broker and end-to-end tests"). Log lines are the core's
(components/aliyun_link/include/aliyun_link.h), identical on every platform.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path

import pytest
from e2e_backend import Backend
from e2e_lines import expect_line, repeated_problems_in_log
from e2e_roles import console_topics

from provision.cloud.certs import BrokerCertificates, ensure_certificates, issue_server_certificate
from provision.cloud.console import DeviceRef, console_session, set_property

ONLINE_S = 10  # boot to subscribed, host scale (the goal is < 0.3 s: bench/e2e_bench.py measures it)


def _online(dut, backend: Backend) -> None:
    expect_line(dut, "aliyun: time synced", timeout=backend.timeout(ONLINE_S))
    expect_line(dut, "aliyun: mqtt connected", timeout=backend.timeout(ONLINE_S))
    expect_line(dut, "aliyun: online", timeout=backend.timeout(ONLINE_S))


def test_boots_reads_its_triple_syncs_time_connects_and_subscribes(dut, backend, start_device, suite_devices):
    start_device()
    pk, dn = suite_devices.dut.product_key, suite_devices.dut.device_name
    expect_line(dut, f"aliyun: triple loaded: {dn}&{pk}", timeout=backend.timeout(ONLINE_S))
    expect_line(dut, "aliyun: network up", timeout=backend.timeout(ONLINE_S))
    expect_line(dut, "aliyun: time synced", timeout=backend.timeout(ONLINE_S))
    # the client id and username come from the decrypted image; the broker accepting the signature proves
    # the secret was read intact
    expect_line(
        dut,
        rb"aliyun: connecting to \S+ as [^|\s]+\|securemode=2,signmethod=hmac\w+(?:,timestamp=\d+)?\|",
        regex=True,
        timeout=backend.timeout(5),
    )
    expect_line(dut, "aliyun: mqtt connected", timeout=backend.timeout(ONLINE_S))
    subscribed = set()
    while True:
        line = rb"aliyun: subscribed (\S+)|aliyun: (online)"
        match = expect_line(dut, line, regex=True, timeout=backend.timeout(5))
        if match.group(2):
            break
        subscribed.add(match.group(1).decode())
    # the example product's thing model has a service (Blink): its topics, async and RRPC, come with it;
    # the ESP-IDF build also takes OTA updates, the host build only with --ota-dir
    expected = {
        f"/sys/{pk}/{dn}/thing/service/property/set",
        f"/{pk}/{dn}/user/setled",
        f"/sys/{pk}/{dn}/thing/service/+",
        f"/sys/{pk}/{dn}/rrpc/request/+",
    }
    if not backend.is_host:
        expected.add(f"/ota/device/upgrade/{pk}/{dn}")
    assert subscribed == expected


def test_wrong_nvs_keys_halt_with_a_reason(dut, backend, start_device, tmp_path):
    other_keys = tmp_path / "other_keys.bin"
    from provision.nvs_format import nvs_keys_partition

    other_keys.write_bytes(nvs_keys_partition(bytes(range(64))))
    start_device(keys_args=("--nvs-keys", str(other_keys)))
    expect_line(dut, rb"aliyun: halted: [^\r\n]*NVS keys do not match[^\r\n]*", regex=True, timeout=backend.timeout(5))


def test_an_led_command_from_the_cloud_switches_the_led(dut, backend, start_device, platform_cert_dir, suite_devices):
    start_device()
    _online(dut, backend)
    pk, dn = suite_devices.dut.product_key, suite_devices.dut.device_name
    with console_session(platform_cert_dir) as cloud:
        cloud.publish(f"/{pk}/{dn}/user/setled", json.dumps({"dn": dn, "s": 1}))
        expect_line(dut, "aliyun: led on", timeout=backend.timeout(5))
        cloud.publish(f"/{pk}/{dn}/user/setled", json.dumps({"dn": dn, "s": 0}))
        expect_line(dut, "aliyun: led off", timeout=backend.timeout(5))


def test_an_led_command_for_another_device_name_is_ignored(dut, backend, start_device, console, suite_devices):
    """The one case through the rule engine (--route): a second device's topic forwarded to the DUT."""
    start_device()
    _online(dut, backend)
    console.publish(console_topics(suite_devices).led, json.dumps({"dn": "someone-else", "s": 1}))
    expect_line(dut, "aliyun: ignored message: other device", timeout=backend.timeout(5))
    # nothing switched: the next LED line is the one this command causes
    console.publish(console_topics(suite_devices).led, json.dumps({"dn": suite_devices.dut.device_name, "s": 0}))
    match = expect_line(dut, rb"aliyun: (led on|led off)", regex=True, timeout=backend.timeout(5))
    assert match.group(1) == b"led off"


def test_a_property_set_from_the_console_gets_its_reply_and_switches_the_led(
    dut, backend, start_device, platform_cert_dir, suite_devices
):
    start_device()
    _online(dut, backend)
    device = DeviceRef(suite_devices.dut.product_key, suite_devices.dut.device_name)
    result = set_property(platform_cert_dir, device, {"LightSwitch": 1}, backend.timeout(5))
    reply = result["reply"]
    assert reply["id"] == result["sent"]["id"] and reply["code"] == 200 and reply["version"] == "1.0"
    # the thing-model engine answers first, then the application drives the LED
    expect_line(dut, f"aliyun: property set id={reply['id']} code=200", timeout=backend.timeout(5))
    expect_line(dut, "aliyun: led on", timeout=backend.timeout(5))
    refused = set_property(platform_cert_dir, device, {"LightSwitch": 7}, backend.timeout(5))["reply"]
    assert (refused["code"], refused["message"]) == (460, "bad value: LightSwitch")
    read_only = set_property(platform_cert_dir, device, {"CurrentTemperature": 20}, backend.timeout(5))["reply"]
    assert (read_only["code"], read_only["message"]) == (460, "read-only: CurrentTemperature")
    expect_line(dut, f"aliyun: property set id={refused['id']} code=460", timeout=backend.timeout(5))


INBOUND_MAX = 1024  # ALINK_INBOUND_MAX (alink_json.h); the firmware's MQTT buffer holds it whole (issue 14)


def _padded_setled(device_name: str, on: int, size: int) -> bytes:
    head = json.dumps({"dn": device_name, "s": on, "pad": ""})[:-2]
    return (head + "x" * (size - len(head) - 2) + '"}').encode()


def test_the_largest_allowed_command_arrives_whole(dut, backend, start_device, platform_cert_dir, suite_devices):
    start_device()
    _online(dut, backend)
    pk, dn = suite_devices.dut.product_key, suite_devices.dut.device_name
    largest = _padded_setled(dn, 1, INBOUND_MAX)
    assert len(largest) == INBOUND_MAX and json.loads(largest)["s"] == 1
    with console_session(platform_cert_dir) as cloud:
        cloud.publish(f"/{pk}/{dn}/user/setled", largest.decode())
        expect_line(dut, "aliyun: led on", timeout=backend.timeout(5))
        cloud.publish(f"/{pk}/{dn}/user/setled", _padded_setled(dn, 0, INBOUND_MAX + 1).decode())
        expect_line(dut, "aliyun: ignored message: too large", timeout=backend.timeout(5))


def test_property_posts_are_valid_alink_json_and_the_platform_answers_each(
    dut, backend, start_device, platform_cert_dir, suite_devices, _pexpect_logfile
):
    pk, dn = suite_devices.dut.product_key, suite_devices.dut.device_name
    post_topic = f"/sys/{pk}/{dn}/thing/event/property/post"
    with console_session(platform_cert_dir) as cloud:
        cloud.subscribe(post_topic, post_topic + "_reply")
        start_device()
        _online(dut, backend)
        ids = []
        for _ in range(2):
            post = json.loads(cloud.wait_for(lambda m: m.topic == post_topic, backend.timeout(10), "post").payload)
            assert post["version"] == "1.0"
            assert post["method"] == "thing.event.property.post"
            assert re.fullmatch(r"[0-9]{1,10}", post["id"])
            # the example product's properties (firmware/main/thing_model.json): all of them in the post on
            # going online; a later one may be a board's changed temperature alone
            params = post["params"]
            example = {"LightSwitch", "CurrentTemperature", "CurrentHumidity", "Brightness"}
            if not ids:
                assert set(params) == example
            else:
                assert params and set(params) <= example
            assert params.get("LightSwitch", 0) in (0, 1) and params.get("Brightness", 0) in range(0, 101)
            assert -40 <= params.get("CurrentTemperature", 0) <= 120 and 0 <= params.get("CurrentHumidity", 0) <= 100
            if backend.is_host:  # the host's stand-in readings: the middle of each range, every post
                assert (params["CurrentTemperature"], params["CurrentHumidity"]) == (40, 50)
            reply_message = cloud.wait_for(lambda m: m.topic == post_topic + "_reply", backend.timeout(5), "reply")
            reply = json.loads(reply_message.payload)
            assert (reply["id"], reply["code"], reply["method"]) == (post["id"], 200, "thing.event.property.post")
            ids.append(int(post["id"]))
    assert ids[1] > ids[0], "ids rise"
    # Online for two post periods with nothing wrong: no error line may come back on every tick (in QEMU the
    # temperature driver's out-of-range error did, once a second, until thing_app quieted it after saying so).
    assert repeated_problems_in_log(Path(_pexpect_logfile).read_bytes(), limit=1) == []


def _delays(dut, count: int, timeout_s: float) -> list[int]:
    return [
        int(expect_line(dut, rb"aliyun: reconnecting in (\d+) ms", regex=True, timeout=timeout_s).group(1))
        for _ in range(count)
    ]


@pytest.mark.e2e_broker(dut_secret="0" * 32)
def test_a_wrong_secret_is_refused_with_its_meaning_and_retries_wait_at_the_cap(dut, backend, start_device, broker):
    start_device()
    cap = backend.backoff_cap_ms
    expect_line(dut, "aliyun: connect refused: not authorized", timeout=backend.timeout(ONLINE_S))
    first = time.monotonic()
    for _ in range(3):
        delay = _delays(dut, 1, backend.timeout(5))[0]
        assert cap // 2 <= delay <= cap, "an auth refusal backs off to the cap (equal jitter: [cap/2, cap])"
        expect_line(dut, "aliyun: connect refused: not authorized", timeout=backend.timeout(5) + cap / 1000)
    elapsed_s = time.monotonic() - first
    # the broker's own count: no more attempts than one per cap/2 (plus the first and one in flight)
    refusals = broker.log_file.read_text().count("aliyun-auth: refused")
    assert 4 <= refusals <= 2 + elapsed_s / (cap / 2000), (refusals, elapsed_s)


def test_broker_restart_reconnects_within_the_backoff_bound_and_resubscribes(dut, backend, start_device, broker):
    start_device()
    _online(dut, backend)
    broker.stop()
    expect_line(dut, "aliyun: mqtt disconnected", timeout=backend.timeout(ONLINE_S))
    delays = _delays(dut, 3, backend.timeout(5) + backend.backoff_cap_ms / 1000)
    ceilings = [min(backend.backoff_cap_ms, backend.backoff_base_ms * 2**i) for i in range(3)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling // 2 <= delay <= ceiling, (delays, ceilings)
    broker.start()  # same port, as a real endpoint comes back
    restarted = time.monotonic()
    expect_line(dut, "aliyun: mqtt connected", timeout=backend.timeout(5) + backend.backoff_cap_ms / 1000)
    # the pending delay is at most the cap; the rest is one TLS connect, with room for a loaded CI machine
    assert time.monotonic() - restarted <= backend.backoff_cap_ms / 1000 + backend.timeout(2)
    expect_line(dut, rb"aliyun: subscribed /sys/\S+/thing/service/property/set", regex=True, timeout=backend.timeout(5))
    expect_line(dut, "aliyun: online", timeout=backend.timeout(5))


@pytest.mark.e2e_broker(max_skew_s=300)
@pytest.mark.e2e_clock_skew(3600)  # qemu: what the suite's SNTP responder serves while the guest boots
def test_a_skewed_clock_is_refused(dut, backend, start_device):
    start_device(clock_skew_s=3600)
    expect_line(dut, "aliyun: time synced", timeout=backend.timeout(ONLINE_S))
    expect_line(dut, "aliyun: connect refused: not authorized", timeout=backend.timeout(ONLINE_S))


def _certs_from_another_ca(tmp_path, suite_certs: BrokerCertificates) -> BrokerCertificates:
    return ensure_certificates(tmp_path / "stranger-ca")


def _expired_server_cert(tmp_path, suite_certs: BrokerCertificates) -> BrokerCertificates:
    now = dt.datetime.now(dt.timezone.utc)
    cert, key = tmp_path / "expired.pem", tmp_path / "expired.key"
    sans = ["127.0.0.1", "localhost", "10.0.2.2"]
    issue_server_certificate(
        suite_certs.ca_cert, suite_certs.ca_key, sans, cert, key,
        not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1),
    )  # fmt: skip
    return BrokerCertificates(suite_certs.ca_cert, suite_certs.ca_key, cert, key)


# The core names the refusal on every backend: the host maps OpenSSL's verify error, the ESP-IDF shell
# mbedtls' verify flags (esp-tls may hand over no flags, only -0x2700: "verification failed").
def _certificate_refusal(dut, backend: Backend) -> bytes:
    pattern = rb"aliyun: server certificate rejected: ([^\r\n]+)"
    reason = expect_line(dut, pattern, regex=True, timeout=backend.timeout(ONLINE_S)).group(1)
    expect_line(dut, "aliyun: connect failed", timeout=backend.timeout(5))
    return reason


@pytest.mark.e2e_broker(certs=_certs_from_another_ca)
def test_a_server_certificate_from_an_unknown_ca_is_refused(dut, backend, start_device):
    start_device()
    reason = _certificate_refusal(dut, backend)
    assert reason in ((b"unknown CA",) if backend.is_host else (b"unknown CA", b"verification failed"))


@pytest.mark.e2e_broker(certs=_expired_server_cert)
def test_an_expired_server_certificate_is_refused(dut, backend, start_device):
    start_device()
    reason = _certificate_refusal(dut, backend)
    assert reason in ((b"expired",) if backend.is_host else (b"expired", b"verification failed"))


def test_a_second_device_with_the_same_triple_kicks_the_first(
    dut, backend, start_device, broker, suite_devices, suite_certs
):
    from provision.device_client import connect_device

    start_device()
    _online(dut, backend)
    device = suite_devices.dut
    intruder, outcome = connect_device(
        device, host="127.0.0.1", port=broker.port, ca_file=suite_certs.ca_cert, client_id="second-board"
    )
    try:
        assert outcome.accepted
        expect_line(dut, "aliyun: mqtt disconnected", timeout=backend.timeout(5))
        expect_line(dut, rb"aliyun: reconnecting in \d+ ms", regex=True, timeout=backend.timeout(5))
    finally:
        intruder.close()

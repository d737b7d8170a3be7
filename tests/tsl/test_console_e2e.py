"""The second TSL end to end: the host device built with -DALIYUN_THING_MODEL=tests/tsl/every_type.json
answers the console of the local platform (`provision broker`, `provision cloud set-property / invoke-service /
rrpc / watch`) for valid, out-of-range, wrongly typed, read-only and unknown properties, checks service inputs
(async and sync through RRPC), and posts its events and readings."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tsl_device import Lines, Platform, build_device, start_platform, stop

from provision.cloud.broker import build_plugin, die_with_parent
from provision.gen_nvs import build_partition

UPTIME = 77  # the read-only reading the device is started with (--reading)
# No periodic post within a run: every post a case sees is the one on going online or one its action caused.
POST_PERIOD_S = 3600


@dataclass
class Running:
    platform: Platform
    device: subprocess.Popen[str]
    log: Lines  # the device's serial console
    watch: Lines  # `provision cloud watch` of the device

    @property
    def topic(self) -> str:
        return f"/sys/{self.platform.device.product_key}/{self.platform.device.device_name}"

    def upstream(self, topic_suffix: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next message the watch printed on the device's topic ending so; its payload."""
        line = self.watch.wait_for(lambda text: json.loads(text)["topic"] == self.topic + topic_suffix, timeout_s)
        return dict(json.loads(line)["payload"])

    def next_post(self) -> dict[str, Any]:
        return dict(self.upstream("/thing/event/property/post")["params"])

    def stdin(self, line: str) -> None:
        assert self.device.stdin is not None
        self.device.stdin.write(line + "\n")
        self.device.stdin.flush()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    binary = build_device()
    work = tmp_path_factory.mktemp("tsl-e2e")
    platform = start_platform(work, build_plugin())
    device = None
    try:
        watch = platform.watch_listening()  # before the device starts: it sees the post on going online
        nvs = work / "nvs.bin"
        nvs.write_bytes(build_partition(platform.device).nvs)
        command = [
            str(binary), "--nvs", str(nvs), "--endpoint", "127.0.0.1", "--port", str(platform.port),
            "--ca", str(platform.cert_dir / "ca.pem"), "--post-period-s", str(POST_PERIOD_S),
            "--reading", f"Uptime={UPTIME}", "--reading", 'Label="boot"', "--stdin",
        ]  # fmt: skip
        device = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        log = Lines(device.stdout)
        log.wait_for(lambda line: line == "aliyun: online", 20)
        yield Running(platform, device, log, watch)
    finally:
        if device is not None:
            stop(device)
        platform.stop()


def _set(running: Running, params: dict[str, Any]) -> dict[str, Any]:
    result = running.platform.cloud("set-property", "--device", running.platform.ref, "--params", json.dumps(params))
    assert result["reply"]["id"] == result["sent"]["id"]
    return dict(result["reply"])


def test_started_readings_are_posted(running: Running) -> None:
    post = running.upstream("/thing/event/property/post")  # the post on going online: every property
    assert post["method"] == "thing.event.property.post"
    params = post["params"]
    assert len(params) == 12
    assert params["Uptime"] == UPTIME and params["Label"] == "boot"
    # every other property at its deterministic value: the grid point nearest the middle of its range
    assert (params["Level"], params["Ratio"], params["Precise"], params["Mode"]) == (0, 0.5, 0, 0)
    assert params["Location"] == {"Lat": 0, "Lon": 0, "Name": ""} and params["Samples"] == []


def test_a_valid_set_of_every_type_is_answered_200_applied_and_posted_back(running: Running) -> None:
    params = {
        "Level": 4, "Ratio": 0.25, "Precise": -12.5, "Enabled": 1, "Mode": 5, "Label": 'say "hi"',
        "Since": "1700000000000", "Location": {"Lat": 30.25, "Lon": 120.5, "Name": "Hangzhou"},
        "Samples": [1, 255], "Points": [{"X": 1, "Y": 9}], "Tags": ["ab", "cdef"],
    }  # fmt: skip
    reply = _set(running, params)
    assert (reply["code"], reply["message"], reply["version"]) == (200, "success", "1.0")
    running.log.wait_for(lambda line: line == f"aliyun: property set id={reply['id']} code=200")
    applied = running.log.wait_for(lambda line: line.startswith("host: applied "))
    assert json.loads(applied.removeprefix("host: applied ")) == params
    # the changed properties come back in one post, and only they
    assert running.next_post() == params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"Level": 12}, "bad value: Level"),  # out of range
        ({"Level": 3}, "bad value: Level"),  # off its step
        ({"Ratio": "0.5"}, "bad value: Ratio"),  # wrongly typed
        ({"Location": {"Lat": 1, "Lon": 2}}, "bad value: Location"),  # a struct without a member
        ({"Samples": [1, 2, 3, 4, 5]}, "bad value: Samples"),  # more items than the array's size
        ({"Uptime": 1}, "read-only: Uptime"),
        ({"NoSuchProperty": 1}, "unknown property"),
        ({"Level": 2, "Enabled": 7}, "bad value: Enabled"),  # all or nothing
    ],
)
def test_a_refused_set_is_answered_460_naming_the_identifier(
    running: Running, params: dict[str, Any], message: str
) -> None:
    reply = _set(running, params)
    assert (reply["code"], reply["message"], reply["data"]) == (460, message, {})
    running.log.wait_for(lambda line: line == f"aliyun: property set id={reply['id']} code=460")


def test_nothing_of_a_refused_set_was_applied(running: Running) -> None:
    assert _set(running, {"Level": -10})["code"] == 200
    assert running.next_post() == {"Level": -10}
    refused = _set(running, {"Level": 2, "Enabled": 7})
    assert refused["code"] == 460
    running.log.wait_for(lambda line: line == f"aliyun: property set id={refused['id']} code=460")
    # Level is still -10: setting it to 2 now changes it (applied and posted), the refused set had not
    assert _set(running, {"Level": 2})["code"] == 200
    assert running.log.wait_for(lambda line: line.startswith("host: applied ")) == 'host: applied {"Level":2}'
    assert running.next_post() == {"Level": 2}


def _invoke(running: Running, service: str, params: dict[str, Any]) -> dict[str, Any]:
    result = running.platform.cloud(
        "invoke-service", "--device", running.platform.ref, "--service", service, "--params", json.dumps(params)
    )
    return dict(result["reply"])


def test_an_async_service_checks_its_input_and_runs(running: Running) -> None:
    reply = _invoke(running, "Reboot", {"DelayS": 5})
    assert (reply["code"], reply["message"], reply["data"]) == (200, "success", {})
    running.log.wait_for(lambda line: line == 'host: service Reboot input {"DelayS":5}')
    running.log.wait_for(lambda line: line == f"aliyun: service Reboot id={reply['id']} code=200")
    assert _invoke(running, "Reboot", {"DelayS": 61})["message"] == "bad value: DelayS"
    assert _invoke(running, "Reboot", {})["message"] == "missing: DelayS"
    assert _invoke(running, "Reboot", {"DelayS": 1, "Extra": 1})["message"] == "unknown parameter"


def _rrpc(running: Running, params: dict[str, Any]) -> dict[str, Any]:
    request = {"id": "31", "version": "1.0", "params": params, "method": "thing.service.Measure"}
    result = running.platform.cloud("rrpc", "--device", running.platform.ref, "--payload", json.dumps(request))
    return dict(result["response"])


def test_a_sync_service_answers_through_rrpc(running: Running) -> None:
    response = _rrpc(running, {"Channel": 2})
    # Reading's deterministic output: the middle of -100..100
    assert response == {"id": "31", "code": 200, "data": {"Reading": 0}, "message": "success", "version": "1.0"}
    running.log.wait_for(lambda line: line == 'host: service Measure input {"Channel":2}')
    refused = _rrpc(running, {"Channel": 3})
    assert (refused["code"], refused["message"]) == (460, "bad value: Channel")


def test_a_sync_service_is_not_run_from_the_async_topic(running: Running) -> None:
    running.platform.cloud(
        "invoke-service", "--device", running.platform.ref, "--service", "Measure", "--params", "{}", "--wait", "0"
    )
    running.log.wait_for(lambda line: line == "aliyun: ignored message: unknown service")


def test_events_are_posted_with_their_outputs(running: Running) -> None:
    running.stdin('event Fault={"Code":7}')
    event = running.upstream("/thing/event/Fault/post")
    assert event["method"] == "thing.event.Fault.post" and event["version"] == "1.0"
    assert event["params"]["value"] == {"Code": 7} and event["params"]["time"] > 1_600_000_000_000
    running.log.wait_for(lambda line: line.startswith("aliyun: event Fault id="))
    running.stdin("event Heartbeat")
    assert running.upstream("/thing/event/Heartbeat/post")["params"]["value"] == {}
    running.stdin('event Fault={"Code":1000}')  # out of its range: refused on the device, nothing posted
    running.log.wait_for(lambda line: line.startswith("host: stdin: --event Fault: expected a JSON object"))


def test_a_changed_reading_is_posted_alone(running: Running) -> None:
    running.stdin(f"reading Uptime={UPTIME + 1}")
    assert running.next_post() == {"Uptime": UPTIME + 1}


def test_bad_readings_and_events_on_the_command_line_are_usage_errors(tmp_path: Path) -> None:
    binary = build_device()
    for option, value, reason in (
        ("--reading", "Uptime=-1", "--reading Uptime: the value does not fit the property"),
        ("--reading", "Uptime=abc", "--reading Uptime: not one JSON value"),
        ("--reading", "Nope=1", "--reading: no property of the thing model has that identifier"),
        ("--reading", "Uptime", "--reading: expected IDENTIFIER=JSON_VALUE"),
        ("--event", "Nope", "--event: no event of the thing model has that identifier"),
        ("--event", 'Fault={"Code":1,"More":2}', "--event Fault: expected a JSON object of exactly its outputs"),
    ):
        done = subprocess.run(
            [str(binary), "--nvs", str(tmp_path / "none.bin"), option, value],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done
        assert "Nope" not in done.stderr  # a name the model lacks is not quoted back
        assert done.stderr.splitlines()[0].startswith(f"aliyun_device: {reason}"), done.stderr

"""The second TSL (every data type, structs, arrays, a sync and an async service) rendered, compiled
strictly with the engine, and answering valid, out-of-range, wrongly typed, read-only and unknown sets."""

from __future__ import annotations

import json
from collections.abc import Callable

Ask = Callable[[list[str]], list[str]]


def _set(params: dict[str, object]) -> str:
    return "set " + json.dumps({"id": "11", "version": "1.0", "params": params, "method": "thing.service.property.set"})


def test_valid_set_of_every_type_is_applied_and_posted(ask: Ask) -> None:
    params = {
        "Level": -10,
        "Ratio": 0.37,
        "Precise": 123.456,
        "Enabled": 1,
        "Mode": 5,
        "Label": 'a"b\\c',
        "Since": "1700000000000",
        "Location": {"Lat": 30.5, "Lon": -120.25, "Name": "Hangzhou"},
        "Samples": [0, 255],
        "Points": [{"X": 1, "Y": 9}],
        "Tags": ["ab", "cdef"],
    }
    answer, post = ask([_set(params), "post"])
    code, message, changed, reply = answer.split(" ", 3)
    assert (code, message) == ("200", "success")
    assert int(changed, 16) == 0b011111111111
    assert json.loads(reply) == {"id": "11", "code": 200, "data": {}, "message": "success", "version": "1.0"}
    posted = json.loads(post)["params"]
    assert posted["Label"] == 'a"b\\c'
    assert posted["Location"] == {"Lat": 30.5, "Lon": -120.25, "Name": "Hangzhou"}
    assert posted["Points"] == [{"X": 1, "Y": 9}] and posted["Tags"] == ["ab", "cdef"]
    assert abs(posted["Ratio"] - 0.37) < 1e-6 and posted["Uptime"] == 42


def test_refusals_name_the_identifier_and_change_nothing(ask: Ask) -> None:
    cases = [
        ({"Level": 12}, "bad value: Level"),  # out of range
        ({"Level": 3}, "bad value: Level"),  # off the step
        ({"Ratio": "0.5"}, "bad value: Ratio"),  # wrongly typed
        ({"Mode": 2}, "bad value: Mode"),
        ({"Label": "x" * 17}, "bad value: Label"),
        ({"Location": {"Lat": 1, "Lon": 2}}, "bad value: Location"),
        ({"Samples": [1, 2, 3, 4, 5]}, "bad value: Samples"),
        ({"Uptime": 1}, "read-only: Uptime"),
        ({"NoSuchThing": 1}, "unknown property"),
        ({"Level": 2, "Enabled": 7}, "bad value: Enabled"),  # all or nothing: Level stays
    ]
    answers = ask([_set(params) for params, _ in cases] + ["post"])
    for (params, message), answer in zip(cases, answers, strict=False):
        code, _, rest = answer.partition(" ")
        assert code == "460", params
        assert rest.startswith(message + " "), (params, answer)
        reply = json.loads(rest[rest.index("{") :])
        assert reply["code"] == 460 and reply["message"] == message
    assert json.loads(answers[-1])["params"]["Level"] == 0


def test_services_sync_and_async(ask: Ask) -> None:
    measure = json.dumps({"id": "5", "version": "1.0", "params": {"Channel": 2}, "method": "thing.service.Measure"})
    bad = json.dumps({"id": "6", "version": "1.0", "params": {"Channel": 3}, "method": "thing.service.Measure"})
    reboot = json.dumps({"id": "7", "version": "1.0", "params": {}, "method": "thing.service.Reboot"})
    ok, refused, missing = ask([f"call Measure {measure}", f"call Measure {bad}", f"call Reboot {reboot}"])
    assert json.loads(ok.split(" ", 3)[3]) == {
        "id": "5",
        "code": 200,
        "data": {"Reading": 3},
        "message": "success",
        "version": "1.0",
    }
    assert refused.startswith("460 bad value: Channel ")
    assert missing.startswith("460 missing: DelayS ")

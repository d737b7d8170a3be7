"""The C engine accepts and refuses exactly what provision.tsl.values does, on random property sets
and service calls over the every-type TSL (edges, one past them, off-grid, wrong types, missing and
extra struct members, oversized arrays and texts, read-only and unknown names)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from provision.tsl import load_tsl
from provision.tsl.model import DataType
from provision.tsl.values import answer_property_set, answer_service_inputs

Ask = Callable[[list[str]], list[str]]
EVERY_TYPE_TSL = Path(__file__).resolve().parent / "every_type.json"
PAYLOADS = 3000
INBOUND_MAX = 1024  # ALINK_INBOUND_MAX in alink_json.h


def _number(rng: random.Random, dt: DataType) -> object:
    lo, hi, step = dt.min, dt.max, dt.step or 1.0
    choices: list[object] = [lo, hi, lo - step, hi + step, (lo + hi) / 2, lo + step * rng.randint(0, 20)]
    choices += [lo + step * rng.randint(0, 20) + step / 3, rng.uniform(lo - 1, hi + 1), round(rng.uniform(lo, hi), 2)]
    value = rng.choice(choices)
    if dt.type == "int" and isinstance(value, float) and value.is_integer() and rng.random() < 0.7:
        return int(value)
    return value


def _value(rng: random.Random, dt: DataType, depth: int = 0) -> object:
    wrong: list[object] = [None, True, False, "1", [], {}, 1, 0, 2, -1, 0.5]
    if rng.random() < 0.15:
        return rng.choice(wrong)
    if dt.type in ("int", "float", "double"):
        return _number(rng, dt)
    if dt.type == "bool":
        return rng.choice([0, 1, 0.0, 1.0, 2, -1, 0.5])
    if dt.type == "enum":
        known = [v for v, _ in dt.enum_values]
        return rng.choice([*known, max(known) + 1, min(known) - 1, known[0] + 0.5])
    if dt.type == "text":
        size = rng.choice([0, 1, dt.length - 1, dt.length, dt.length + 1])
        alphabet = 'ab"\\é中 '
        return "".join(rng.choice(alphabet) for _ in range(max(size, 0)))
    if dt.type == "date":
        return rng.choice(["0", "1700000000000", "9999999999999", "10000000000000", "", "12a", "-1", 1700000000000])
    if dt.type == "struct":
        value = {m.identifier: _value(rng, m.data_type, depth + 1) for m in dt.members}
        roll = rng.random()
        if roll < 0.1:
            value.pop(rng.choice(list(value)))
        elif roll < 0.2:
            value["Extra"] = 1
        return value
    assert dt.item is not None
    return [_value(rng, dt.item, depth + 1) for _ in range(rng.choice([0, 1, dt.size, dt.size + 1]))]


def _params(rng: random.Random, fields: list[tuple[str, DataType]]) -> dict[str, object]:
    params: dict[str, object] = {}
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        if rng.random() < 0.05:
            params[rng.choice(["Nope", "level", "Level2"])] = 1
        else:
            name, dt = rng.choice(fields)
            params[name] = _value(rng, dt)
    return params


def _expected(payload: str, answer: tuple[int, str]) -> str:
    if len(payload.encode("utf-8")) > INBOUND_MAX:
        return "error too large"
    return f"{answer[0]} {answer[1]}"


def _observed(line: str) -> str:
    if line.startswith("error "):
        return line
    # "<code> <message> <changed mask> <reply JSON>"; only the message may hold spaces
    message_and_mask = line[: line.index(" {")]
    return message_and_mask.rsplit(" ", 1)[0]


def test_engine_agrees_with_python_on_random_payloads(ask: Ask) -> None:
    model = load_tsl(EVERY_TYPE_TSL)
    rng = random.Random(11)
    props = [(p.identifier, p.data_type) for p in model.properties]
    requests: list[str] = []
    expected: list[str] = []
    for n in range(PAYLOADS):
        if n % 4 == 3:
            service = rng.choice(model.services)
            params = _params(rng, [(f.identifier, f.data_type) for f in service.inputs])
            payload = json.dumps({"id": str(n), "version": "1.0", "params": params}, ensure_ascii=rng.random() < 0.5)
            refusal = answer_service_inputs(service.inputs, params)
            requests.append(f"call {service.identifier} {payload}")
            expected.append(_expected(payload, refusal or (200, "success")))
        else:
            params = _params(rng, props)
            payload = json.dumps({"id": str(n), "version": "1.0", "params": params}, ensure_ascii=rng.random() < 0.5)
            requests.append(f"set {payload}")
            expected.append(_expected(payload, answer_property_set(model, params)))
    observed = [_observed(line) for line in ask(requests)]
    assert len(observed) == len(expected)
    disagreements = [(r, e, o) for r, e, o in zip(requests, expected, observed, strict=True) if e != o]
    assert not disagreements, disagreements[:5]
    accepted = sum(e.startswith("200") for e in expected)
    print(f"{accepted} of {PAYLOADS} accepted")
    assert PAYLOADS // 10 < accepted < PAYLOADS - PAYLOADS // 10  # both sides of the line are exercised

"""The value rules of the firmware's thing-model engine (alink_thing.h), in Python: what a property
set or a service call carrying decoded JSON `params` is answered. Tests hold the C engine to it
(tests/tsl/test_differential.py); a console or a script can check a payload before sending it."""

from __future__ import annotations

import math
import re
from typing import Final

from provision.tsl.model import DataType, Field, ThingModel

__all__ = ["STEP_TOLERANCE", "answer_property_set", "answer_service_inputs", "value_ok"]

STEP_TOLERANCE: Final = 1e-6  # steps; the engine's rule for float/double grids (0.1 is no binary fraction)
DATE: Final = re.compile(r"[0-9]{1,13}")
CODE_OK: Final = 200
CODE_BAD_PARAMS: Final = 460


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _on_grid(dt: DataType, d: float) -> bool:
    if not math.isfinite(d) or d < dt.min or d > dt.max:
        return False
    if dt.step > 0:
        q = (d - dt.min) / dt.step
        return abs(q - round(q)) <= STEP_TOLERANCE
    return True


def value_ok(dt: DataType, value: object) -> bool:
    """Whether the engine accepts `value` (decoded JSON) for a value of type `dt`."""
    d = _number(value)
    if dt.type == "int":
        return d is not None and math.isfinite(d) and d == math.floor(d) and _on_grid(dt, d)
    if dt.type in ("float", "double"):
        return d is not None and _on_grid(dt, d)
    if dt.type == "bool":
        return d is not None and d in (0.0, 1.0)
    if dt.type == "enum":
        return d is not None and any(float(v) == d for v, _ in dt.enum_values)
    if dt.type == "text":
        return isinstance(value, str) and len(value.encode("utf-8")) <= dt.length
    if dt.type == "date":
        return isinstance(value, str) and DATE.fullmatch(value) is not None
    if dt.type == "struct":
        return (
            isinstance(value, dict)
            and len(value) == len(dt.members)
            and all(m.identifier in value and value_ok(m.data_type, value[m.identifier]) for m in dt.members)
        )
    if dt.type == "array":
        assert dt.item is not None
        return isinstance(value, list) and len(value) <= dt.size and all(value_ok(dt.item, v) for v in value)
    return False


def answer_property_set(model: ThingModel, params: object) -> tuple[int, str]:
    """(code, message) of the reply to a property set whose "params" is `params`."""
    if not isinstance(params, dict):
        return CODE_BAD_PARAMS, "no params"
    by_name = {p.identifier: p for p in model.properties}
    for name, value in params.items():
        prop = by_name.get(name)
        if prop is None:
            return CODE_BAD_PARAMS, "unknown property"
        if not prop.writable:
            return CODE_BAD_PARAMS, f"read-only: {name}"
        if not value_ok(prop.data_type, value):
            return CODE_BAD_PARAMS, f"bad value: {name}"
    return CODE_OK, "success"


def answer_service_inputs(inputs: tuple[Field, ...], params: object) -> tuple[int, str] | None:
    """The refusal of a service call's `params`, or None when the service would run."""
    if not isinstance(params, dict):
        return CODE_BAD_PARAMS, "no params"
    by_name = {f.identifier: f for f in inputs}
    for name, value in params.items():
        field = by_name.get(name)
        if field is None:
            return CODE_BAD_PARAMS, "unknown parameter"
        if not value_ok(field.data_type, value):
            return CODE_BAD_PARAMS, f"bad value: {name}"
    for field in inputs:
        if field.identifier not in params:
            return CODE_BAD_PARAMS, f"missing: {field.identifier}"
    return None

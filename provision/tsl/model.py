"""Validation of a TSL file into a typed model.

TSL facts (Aliyun IoT Platform, "TSL parameters", help.aliyun.com/en/iot/user-guide/tsl-parameters):
`properties` (identifier, name, accessMode r/rw, dataType), `events` (identifier, name, type
info/alert/error, outputData, method thing.event.{id}.post), `services` (identifier, name, callType
async/sync, inputData, outputData, method thing.service.{id}). dataType.type is int, float, double,
text, date (UTC ms as a string), bool (0/1), enum, struct (specs: a list of members of the seven
simple types) or array (specs: size <= 512 and item of int/float/double/text/struct); specs carry
min/max/step/unit (numbers, often written as strings), length <= 10240 (text), "0"/"1" names (bool).
The console's export also lists the built-in property event `post` (thing.event.property.post) and
the services `set`/`get` (thing.service.property.set/get): those are the platform's, not the
product's, and are skipped.

Stricter than the platform where the C rendering needs it (each rule is one problem line):
identifiers are 1..50 of [A-Za-z0-9_], start with a letter, hold no "__", and are no C keyword or
reserved TSL word; at most 64 properties (a changed mask bit each); int ranges inside int32.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provision.errors import InputError

__all__ = ["DataType", "Event", "Field", "Service", "ThingModel", "load_tsl", "parse_tsl"]

IDENTIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,49}")
SIMPLE_TYPES: Final = ("int", "float", "double", "bool", "enum", "text", "date")
ARRAY_ITEM_TYPES: Final = ("int", "float", "double", "text", "struct")
ALL_TYPES: Final = (*SIMPLE_TYPES, "struct", "array")
NUMERIC_TYPES: Final = ("int", "float", "double")
TEXT_LENGTH_MAX: Final = 10240
ARRAY_SIZE_MAX: Final = 512
PROPERTIES_MAX: Final = 64
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
BUILTIN_METHODS: Final = ("thing.event.property.post", "thing.service.property.set", "thing.service.property.get")
# TSL's system parameter names (Aliyun "Add a TSL feature": identifiers may not be these), then C's keywords
# and the names the rendering itself uses.
RESERVED: Final = frozenset(
    {"set", "get", "post", "property", "event", "time", "value"}
    | {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
        "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short",
        "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile",
        "while", "bool", "true", "false", "count", "items",
    }
)  # fmt: skip


@dataclass(frozen=True)
class DataType:
    """One TSL dataType, checked: numbers as floats, lengths and sizes as ints."""

    type: str
    min: float = 0.0
    max: float = 0.0
    step: float = 0.0
    unit: str = ""
    length: int = 0
    enum_values: tuple[tuple[int, str], ...] = ()
    members: tuple[Field, ...] = ()
    item: DataType | None = None
    size: int = 0


@dataclass(frozen=True)
class Field:
    """A property, a struct member or an event/service parameter."""

    identifier: str
    name: str
    data_type: DataType
    writable: bool = False


@dataclass(frozen=True)
class Event:
    identifier: str
    name: str
    kind: str
    outputs: tuple[Field, ...]


@dataclass(frozen=True)
class Service:
    identifier: str
    name: str
    sync: bool
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]


@dataclass(frozen=True)
class ThingModel:
    properties: tuple[Field, ...]
    events: tuple[Event, ...]
    services: tuple[Service, ...]


class _Problems:
    """Collects one line per problem, each starting with the file and the JSON path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, path: str, what: str) -> None:
        self.lines.append(f"{self.source}: {path}: {what}")


def load_tsl(path: Path) -> ThingModel:
    """Read and validate a TSL file.

    Raises:
        InputError: one line per problem (file, JSON path, what is wrong); nothing is returned.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; export the TSL again from the console") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno} column {exc.colno}: not JSON ({exc.msg})") from None
    return parse_tsl(document, str(path))


def parse_tsl(document: object, source: str = "<tsl>") -> ThingModel:
    """Validate a decoded TSL document; see the module docstring for the rules.

    Raises:
        InputError: one line per problem.
    """
    problems = _Problems(source)
    if not isinstance(document, dict):
        raise InputError(f"{source}: $: not a JSON object; export the TSL from the console's thing model page")
    seen: dict[str, str] = {}
    properties = tuple(p for p in _list(document, "properties", "$", problems, _parse_property) if p is not None)
    events = tuple(e for e in _list(document, "events", "$", problems, _parse_event) if e is not None)
    services = tuple(s for s in _list(document, "services", "$", problems, _parse_service) if s is not None)
    for kind, items in (("properties", properties), ("events", events), ("services", services)):
        for index, item in enumerate(items):
            if item.identifier in seen:
                problems.add(f"$.{kind}[{index}].identifier", f"duplicate of {seen[item.identifier]}")
            else:
                seen[item.identifier] = f"$.{kind}[{index}]"
    if len(properties) > PROPERTIES_MAX:
        problems.add("$.properties", f"more than {PROPERTIES_MAX} properties")
    if problems.lines:
        raise InputError(*problems.lines)
    return ThingModel(properties, events, services)


def _list(document: dict[str, object], key: str, path: str, problems: _Problems, parse):  # type: ignore[no-untyped-def]
    value = document.get(key, [])
    if not isinstance(value, list):
        problems.add(f"{path}.{key}", "not a list")
        return []
    return [parse(item, f"{path}.{key}[{i}]", problems) for i, item in enumerate(value)]


def _builtin(item: dict[str, object]) -> bool:
    return item.get("method") in BUILTIN_METHODS


def _identifier(item: dict[str, object], path: str, problems: _Problems) -> str | None:
    value = item.get("identifier")
    if not isinstance(value, str) or IDENTIFIER.fullmatch(value) is None or "__" in value:
        problems.add(
            f"{path}.identifier",
            "not an identifier (1..50 letters, digits, underscores; a letter first; no '__')",
        )
        return None
    if value in RESERVED:
        problems.add(f"{path}.identifier", "a reserved name (TSL system parameter or C keyword); rename it")
        return None
    return value


def _name(item: dict[str, object]) -> str:
    value = item.get("name", "")
    return value if isinstance(value, str) else ""


def _parse_property(item: object, path: str, problems: _Problems) -> Field | None:
    if not isinstance(item, dict):
        problems.add(path, "not an object")
        return None
    identifier = _identifier(item, path, problems)
    access = item.get("accessMode")
    if access not in ("r", "rw"):
        problems.add(f"{path}.accessMode", "must be r or rw")
    data_type = _parse_data_type(item.get("dataType"), f"{path}.dataType", problems, ALL_TYPES)
    if identifier is None or data_type is None or access not in ("r", "rw"):
        return None
    return Field(identifier, _name(item), data_type, writable=access == "rw")


def _parse_params(value: object, path: str, problems: _Problems) -> tuple[Field, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add(path, "not a list")
        return None
    fields: list[Field] = []
    ok = True
    seen: set[str] = set()
    for index, member in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(member, dict):
            problems.add(where, "not an object")
            ok = False
            continue
        identifier = _identifier(member, where, problems)
        data_type = _parse_data_type(member.get("dataType"), f"{where}.dataType", problems, ALL_TYPES)
        if identifier is not None and identifier in seen:
            problems.add(f"{where}.identifier", "duplicate within its list")
            ok = False
        elif identifier is None or data_type is None:
            ok = False
        else:
            seen.add(identifier)
            fields.append(Field(identifier, _name(member), data_type))
    return tuple(fields) if ok else None


def _parse_event(item: object, path: str, problems: _Problems) -> Event | None:
    if not isinstance(item, dict):
        problems.add(path, "not an object")
        return None
    if _builtin(item):
        return None
    identifier = _identifier(item, path, problems)
    kind = item.get("type")
    if kind not in ("info", "alert", "error"):
        problems.add(f"{path}.type", "must be info, alert or error")
    outputs = _parse_params(item.get("outputData"), f"{path}.outputData", problems)
    method = f"thing.event.{identifier}.post"
    if identifier is not None and item.get("method", method) != method:
        problems.add(f"{path}.method", "must be thing.event.<identifier>.post")
        return None
    if identifier is None or outputs is None or kind not in ("info", "alert", "error"):
        return None
    return Event(identifier, _name(item), str(kind), outputs)


def _parse_service(item: object, path: str, problems: _Problems) -> Service | None:
    if not isinstance(item, dict):
        problems.add(path, "not an object")
        return None
    if _builtin(item):
        return None
    identifier = _identifier(item, path, problems)
    call_type = item.get("callType")
    if call_type not in ("async", "sync"):
        problems.add(f"{path}.callType", "must be async or sync")
    inputs = _parse_params(item.get("inputData"), f"{path}.inputData", problems)
    outputs = _parse_params(item.get("outputData"), f"{path}.outputData", problems)
    if identifier is not None and item.get("method", f"thing.service.{identifier}") != f"thing.service.{identifier}":
        problems.add(f"{path}.method", "must be thing.service.<identifier>")
        return None
    if inputs is not None and len(inputs) > 64:
        problems.add(f"{path}.inputData", "more than 64 inputs")
        return None
    if identifier is None or inputs is None or outputs is None or call_type not in ("async", "sync"):
        return None
    return Service(identifier, _name(item), call_type == "sync", inputs, outputs)


def _number(specs: dict[str, object], key: str, path: str, problems: _Problems) -> float | None:
    value = specs.get(key)
    if isinstance(value, bool):
        value = None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        problems.add(f"{path}.specs.{key}", "not a finite number")
        return None
    return float(value)


def _count(specs: dict[str, object], key: str, path: str, problems: _Problems, largest: int) -> int | None:
    value = specs.get(key)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= largest:
        problems.add(f"{path}.specs.{key}", f"must be an integer 1..{largest}")
        return None
    return value


def _parse_data_type(value: object, path: str, problems: _Problems, allowed: tuple[str, ...]) -> DataType | None:
    if not isinstance(value, dict):
        problems.add(path, "not an object with type and specs")
        return None
    kind = value.get("type")
    if kind not in allowed:
        problems.add(f"{path}.type", f"must be one of {', '.join(allowed)}")
        return None
    specs = value.get("specs", {})
    if kind == "struct":
        members = _parse_params(specs, f"{path}.specs", problems) if isinstance(specs, list) else None
        if not isinstance(specs, list):
            problems.add(f"{path}.specs", "a struct's specs must be a list of members")
        if members is None:
            return None
        if not members:
            problems.add(f"{path}.specs", "a struct needs at least one member")
            return None
        for index, member in enumerate(members):
            if member.data_type.type not in SIMPLE_TYPES:
                problems.add(f"{path}.specs[{index}].dataType.type", "struct members must be simple types")
                return None
        return DataType("struct", members=members)
    if not isinstance(specs, dict):
        problems.add(f"{path}.specs", "not an object")
        return None
    if kind in NUMERIC_TYPES:
        low = _number(specs, "min", path, problems)
        high = _number(specs, "max", path, problems)
        step = _number(specs, "step", path, problems) if "step" in specs else 0.0
        unit = specs.get("unit", "")
        if low is None or high is None or step is None:
            return None
        if low > high:
            problems.add(f"{path}.specs", "min is above max")
            return None
        if step < 0:
            problems.add(f"{path}.specs.step", "negative")
            return None
        if kind == "int":
            if not (low.is_integer() and high.is_integer() and step.is_integer()):
                problems.add(f"{path}.specs", "an int's min, max and step must be integers")
                return None
            if low < INT32_MIN or high > INT32_MAX:
                problems.add(f"{path}.specs", "an int's range must fit 32 bits")
                return None
        if kind == "float" and (abs(low) > 3.4e38 or abs(high) > 3.4e38):
            problems.add(f"{path}.specs", "a float's range must fit 32 bits")
            return None
        return DataType(str(kind), min=low, max=high, step=step, unit=unit if isinstance(unit, str) else "")
    if kind in ("bool", "enum"):
        values: list[tuple[int, str]] = []
        for key, label in specs.items():
            if not re.fullmatch(r"-?[0-9]{1,10}", str(key)) or not INT32_MIN <= int(key) <= INT32_MAX:
                problems.add(f"{path}.specs", "enum keys must be 32-bit integers")
                return None
            values.append((int(key), label if isinstance(label, str) else ""))
        if kind == "bool" and sorted(v for v, _ in values) not in ([0, 1], []):
            problems.add(f"{path}.specs", "a bool's specs name the values 0 and 1")
            return None
        if kind == "enum" and not values:
            problems.add(f"{path}.specs", "an enum needs at least one value")
            return None
        return DataType(str(kind), enum_values=tuple(sorted(values)))
    if kind == "text":
        length = _count(specs, "length", path, problems, TEXT_LENGTH_MAX)
        return None if length is None else DataType("text", length=length)
    if kind == "date":
        return DataType("date")
    size = _count(specs, "size", path, problems, ARRAY_SIZE_MAX)
    item = _parse_data_type(specs.get("item"), f"{path}.specs.item", problems, ARRAY_ITEM_TYPES)
    if size is None or item is None:
        return None
    return DataType("array", size=size, item=item)

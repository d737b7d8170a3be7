"""`provision tsl render`: validation (one line per problem with its JSON path, nothing written),
the committed example component is what the example TSL renders (`--check`), escaping of console text."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from provision.cli import main
from provision.errors import InputError
from provision.tsl import parse_tsl, render_component
from provision.tsl.render import c_comment, c_string

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXAMPLE_TSL = ROOT / "firmware" / "main" / "thing_model.json"
EXAMPLE_COMPONENT = ROOT / "firmware" / "components" / "thing_model"


def _base() -> dict[str, object]:
    return json.loads((HERE / "every_type.json").read_text(encoding="utf-8"))


def test_committed_example_component_is_up_to_date() -> None:
    assert main(["tsl", "render", "--tsl", str(EXAMPLE_TSL), "--out", str(EXAMPLE_COMPONENT), "--check"]) == 0


def test_check_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tsl", "render", "--tsl", str(EXAMPLE_TSL), "--out", str(tmp_path)]) == 0
    (tmp_path / "thing_model.c").write_text("/* edited */\n", encoding="ascii")
    assert main(["tsl", "render", "--tsl", str(EXAMPLE_TSL), "--out", str(tmp_path), "--check"]) == 1
    assert "thing_model.c: out of date" in capsys.readouterr().err


def test_builtin_post_set_get_are_skipped() -> None:
    model = parse_tsl(json.loads(EXAMPLE_TSL.read_text(encoding="utf-8")))
    assert [e.identifier for e in model.events] == ["TemperatureAlarm"]
    assert [s.identifier for s in model.services] == ["Blink"]
    assert [p.identifier for p in model.properties] == ["LightSwitch", "CurrentTemperature", "CurrentHumidity",
                                                        "Brightness"]  # fmt: skip


def _break(path: list[object], value: object) -> dict[str, object]:
    document = copy.deepcopy(_base())
    node: object = document
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    return document


ONE_INT_ARRAY = {"type": "array", "specs": {"size": 1, "item": {"type": "int", "specs": {"min": 0, "max": 1}}}}
BAD_CASES = [
    (["properties", 0, "identifier"], "9Level", "$.properties[0].identifier: not an identifier"),
    (["properties", 0, "identifier"], "Le vel", "$.properties[0].identifier: not an identifier"),
    (["properties", 0, "identifier"], "a__b", "$.properties[0].identifier: not an identifier"),
    (["properties", 0, "identifier"], "x" * 51, "$.properties[0].identifier: not an identifier"),
    (["properties", 0, "identifier"], "time", "$.properties[0].identifier: a reserved name"),
    (["properties", 0, "identifier"], "struct", "$.properties[0].identifier: a reserved name"),
    (["properties", 1, "identifier"], "Level", "$.properties[1].identifier: duplicate of $.properties[0]"),
    (["events", 1, "identifier"], "Level", "$.events[1].identifier: duplicate of $.properties[0]"),
    (["properties", 0, "accessMode"], "w", "$.properties[0].accessMode: must be r or rw"),
    (["properties", 0, "dataType", "type"], "long", "$.properties[0].dataType.type: must be one of"),
    (["properties", 0, "dataType", "specs", "min"], "20", "$.properties[0].dataType.specs: min is above max"),
    (["properties", 0, "dataType", "specs", "max"], "ten", "$.properties[0].dataType.specs.max: not a finite number"),
    (["properties", 0, "dataType", "specs", "max"], "1e10", "$.properties[0].dataType.specs: an int's range must fit"),
    (["properties", 0, "dataType", "specs", "step"], "0.5", "$.properties[0].dataType.specs: an int's min, max"),
    (["properties", 1, "dataType", "specs", "step"], "-1", "$.properties[1].dataType.specs.step: negative"),
    (["properties", 3, "dataType", "specs"], {"0": "no", "2": "x"}, "$.properties[3].dataType.specs: a bool's"),
    (["properties", 4, "dataType", "specs"], {}, "$.properties[4].dataType.specs: an enum needs"),
    (["properties", 4, "dataType", "specs"], {"x": "a"}, "$.properties[4].dataType.specs: enum keys"),
    (["properties", 5, "dataType", "specs", "length"], "10241", "$.properties[5].dataType.specs.length: must be"),
    (["properties", 8, "dataType", "specs", "size"], 513, "$.properties[8].dataType.specs.size: must be"),
    (["properties", 8, "dataType", "specs", "item", "type"], "date", "$.properties[8].dataType.specs.item.type"),
    (["properties", 7, "dataType", "specs", 1, "identifier"], "Lat",
     "$.properties[7].dataType.specs[1].identifier: duplicate within its list"),
    (["properties", 7, "dataType", "specs", 0, "dataType"], ONE_INT_ARRAY,
     "$.properties[7].dataType.specs[0].dataType.type: struct members must be simple types"),
    (["events", 0, "type"], "warning", "$.events[0].type: must be info, alert or error"),
    (["events", 0, "method"], "thing.event.Other.post", "$.events[0].method: must be"),
    (["services", 0, "callType"], "later", "$.services[0].callType: must be async or sync"),
    (["services", 1, "inputData", 0, "identifier"], "", "$.services[1].inputData[0].identifier: not an identifier"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value", "expected"), BAD_CASES)
def test_each_bad_case_is_one_line_with_its_path(path: list[object], value: object, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_tsl(_break(path, value), "t.json")
    assert len(caught.value.lines) == 1, caught.value.lines
    assert caught.value.lines[0].startswith(f"t.json: {expected}"), caught.value.lines


def test_every_problem_is_reported_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = _break(["properties", 0, "identifier"], "1bad")
    document["properties"][2]["accessMode"] = "x"  # type: ignore[index]
    tsl = tmp_path / "bad.json"
    tsl.write_text(json.dumps(document), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["tsl", "render", "--tsl", str(tsl), "--out", str(out)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "$.properties[0].identifier" in err[0] and "$.properties[2].accessMode" in err[1]
    assert not out.exists()


def test_not_json_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tsl = tmp_path / "bad.json"
    tsl.write_text('{"properties": [', encoding="utf-8")
    assert main(["tsl", "render", "--tsl", str(tsl), "--out", str(tmp_path / "o")]) == 3
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_console_text_is_escaped() -> None:
    assert c_comment("a */ b /* c\nd\\") == "a * / b / * c?d/"
    assert c_string('q"\\?\n°') == '"q\\"\\\\\\?\\012\\302\\260"'
    document = _base()
    document["properties"][0]["name"] = "evil */ int x; /*"  # type: ignore[index]
    files = render_component(parse_tsl(document), "e*/vil.json")
    assert "*/ int x;" not in files["thing_model.h"]
    assert "e* /vil.json" in files["thing_model.c"]

"""Rendering a validated thing model into a C99 component (thing_model.h/.c + CMakeLists.txt) from
jinja2 templates, and `--check` of a rendered directory.

Everything copied from the TSL is escaped for where it lands: identifiers are validated to C names
(provision.tsl.model) and still pass through `c_string` when they become strings; names and units,
free text from the console, only ever land in comments, through `c_comment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final

import jinja2

from provision.atomic import write_private_file
from provision.errors import ProvisionError
from provision.tsl.model import DataType, Field, ThingModel

__all__ = ["ComponentOutOfDate", "check_component", "render_component", "write_component"]

TEMPLATES: Final = ("thing_model.h", "thing_model.c", "CMakeLists.txt")
C_TYPES: Final = {
    "int": "int32_t",
    "enum": "int32_t",
    "float": "float",
    "double": "double",
    "bool": "bool",
    "date": "uint64_t",
}
ENGINE_TYPES: Final = {
    "int": "ALINK_THING_INT",
    "float": "ALINK_THING_FLOAT",
    "double": "ALINK_THING_DOUBLE",
    "bool": "ALINK_THING_BOOL",
    "enum": "ALINK_THING_ENUM",
    "text": "ALINK_THING_TEXT",
    "date": "ALINK_THING_DATE",
    "struct": "ALINK_THING_STRUCT",
    "array": "ALINK_THING_ARRAY",
}


class ComponentOutOfDate(ProvisionError):
    """`tsl render --check` found a file that differs from what would be rendered (exit 1)."""


@dataclass
class _CStruct:
    name: str
    members: list[str]
    comment: str = ""


@dataclass
class _Table:
    name: str
    entries: list[dict[str, str]]


@dataclass
class _Layout:
    structs: list[_CStruct] = field(default_factory=list)
    enums: list[tuple[str, list[int]]] = field(default_factory=list)
    tables: list[_Table] = field(default_factory=list)


def c_string(text: str) -> str:
    """A C string literal holding `text` (UTF-8), every byte outside printable ASCII as an octal escape."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\?':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """Text safe inside a /* */ comment on one line: no comment end, no line break, printable ASCII only."""
    printable = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)
    return printable.replace("*/", "* /").replace("/*", "/ *").replace("\\", "/").strip()


def _c_number(value: float) -> str:
    return repr(float(value))


def _member_type(layout: _Layout, data_type: DataType, type_name: str, comment: str) -> str:
    """The C type of a value; struct types are added to the layout (members first)."""
    if data_type.type == "struct":
        _add_struct(layout, type_name, data_type.members, comment)
        return type_name
    if data_type.type == "text":
        return "char"
    return C_TYPES[data_type.type]


def _declaration(layout: _Layout, f: Field, type_prefix: str) -> str:
    dt = f.data_type
    note = c_comment(" ".join(part for part in (f.name, dt.unit) if part))
    suffix = f" /* {note} */" if note else ""
    if dt.type == "text":
        return f"char {f.identifier}[{dt.length + 1}];{suffix}"
    if dt.type == "array":
        assert dt.item is not None
        item_type = _member_type(layout, dt.item, f"{type_prefix}_{f.identifier}_item_t", f.name)
        item_dims = f"[{dt.item.length + 1}]" if dt.item.type == "text" else ""
        return f"struct {{ uint32_t count; {item_type} items[{dt.size}]{item_dims}; }} {f.identifier};{suffix}"
    ctype = _member_type(layout, dt, f"{type_prefix}_{f.identifier}_t", f.name)
    return f"{ctype} {f.identifier};{suffix}"


def _add_struct(layout: _Layout, name: str, fields: tuple[Field, ...], comment: str) -> None:
    prefix = name[: -len("_t")]
    members = [_declaration(layout, f, prefix) for f in fields] or ["uint8_t _none; /* C has no empty struct */"]
    layout.structs.append(_CStruct(name, members, c_comment(comment)))


def _entry(layout: _Layout, f: Field, parent: str, table_prefix: str, access: bool) -> dict[str, str]:
    """One descriptor initializer for field `f` of C type `parent`; nested tables are added first."""
    dt = f.data_type
    entry = {
        "identifier": c_string(f.identifier),
        "type": ENGINE_TYPES[dt.type],
        "access": "ALINK_THING_RW" if access and f.writable else "ALINK_THING_R",
        "offset": f"offsetof({parent}, {f.identifier})",
        "size": f"sizeof(((const {parent} *)0)->{f.identifier})",
    }
    type_name = f"{parent.removesuffix('_t')}_{f.identifier}_t"
    _describe(layout, dt, f"{table_prefix}_{f.identifier}", type_name, entry, parent, f.identifier)
    return entry


def _describe(
    layout: _Layout, dt: DataType, table: str, type_name: str, entry: dict[str, str], parent: str, member: str
) -> None:
    if dt.type in ("int", "float", "double"):
        entry.update(min=_c_number(dt.min), max=_c_number(dt.max), step=_c_number(dt.step))
    elif dt.type == "enum":
        layout.enums.append((f"{table}_values", [v for v, _ in dt.enum_values]))
        entry.update(enum_values=f"{table}_values", enum_count=str(len(dt.enum_values)))
    elif dt.type == "text":
        entry.update(length=str(dt.length))
    elif dt.type == "struct":
        entries = [_entry(layout, m, type_name, table, access=False) for m in dt.members]
        layout.tables.append(_Table(f"{table}_members", entries))
        entry.update(members=f"{table}_members", member_count=str(len(entries)))
    elif dt.type == "array":
        assert dt.item is not None
        item = {
            "identifier": '""',
            "type": ENGINE_TYPES[dt.item.type],
            "access": "ALINK_THING_R",
            "offset": "0",
            "size": f"sizeof(((const {parent} *)0)->{member}.items[0])",
        }
        _describe(layout, dt.item, f"{table}_item", f"{type_name.removesuffix('_t')}_item_t", item, parent, member)
        layout.tables.append(_Table(f"{table}_item", [item]))
        entry.update(
            members=f"{table}_item",
            member_count="1",
            array_size=str(dt.size),
            offset=f"offsetof({parent}, {member}.count)",
            size=f"sizeof(((const {parent} *)0)->{member})",
            items_offset=f"offsetof({parent}, {member}.items)",
            item_stride=f"sizeof(((const {parent} *)0)->{member}.items[0])",
        )


def _layout(model: ThingModel) -> tuple[_Layout, dict[str, object]]:
    layout = _Layout()
    _add_struct(layout, "thing_properties_t", model.properties, "every property of the product")
    for event in model.events:
        _add_struct(layout, f"thing_event_{event.identifier}_t", event.outputs, event.name)
    for service in model.services:
        _add_struct(layout, f"thing_service_{service.identifier}_input_t", service.inputs, service.name)
        _add_struct(layout, f"thing_service_{service.identifier}_output_t", service.outputs, service.name)
    # Nested struct types are named <parent without _t>_<member>_t on both sides (declaration, descriptor).
    tables: dict[str, object] = {}
    tables["properties"] = _fields_table(layout, model.properties, "thing_properties_t", "thing_property", True)
    tables["events"] = [
        (e, _fields_table(layout, e.outputs, f"thing_event_{e.identifier}_t", f"thing_event_{e.identifier}", False))
        for e in model.events
    ]
    tables["services"] = [
        (
            s,
            _fields_table(layout, s.inputs, f"thing_service_{s.identifier}_input_t", f"thing_in_{s.identifier}", False),
            _fields_table(
                layout, s.outputs, f"thing_service_{s.identifier}_output_t", f"thing_out_{s.identifier}", False
            ),
        )
        for s in model.services
    ]
    return layout, tables


def _fields_table(layout: _Layout, fields: tuple[Field, ...], parent: str, prefix: str, access: bool) -> str | None:
    if not fields:
        return None
    entries = [_entry(layout, f, parent, prefix, access) for f in fields]
    layout.tables.append(_Table(f"{prefix}_fields", entries))
    return f"{prefix}_fields"


def render_component(model: ThingModel, source_name: str) -> dict[str, str]:
    """The component's files, name -> text. `source_name` (the TSL's file name) lands in a comment."""
    environment = jinja2.Environment(
        autoescape=False,  # noqa: S701 - renders C source, not HTML; values are escaped by c_string/c_comment
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["c_comment"] = c_comment
    environment.filters["c_string"] = c_string
    layout, tables = _layout(model)
    templates = resources.files("provision").joinpath("templates", "tsl")
    context = {"model": model, "layout": layout, "tables": tables, "source": c_comment(source_name)}
    return {
        name: environment.from_string(templates.joinpath(f"{name}.j2").read_text(encoding="utf-8")).render(context)
        for name in TEMPLATES
    }


def write_component(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file atomically (public files: 0644)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        write_private_file(out_dir / name, text.encode("ascii"), mode=0o644)


def check_component(out_dir: Path, files: dict[str, str], tsl_path: Path) -> None:
    """Raise ComponentOutOfDate unless every file in `out_dir` is exactly what would be rendered."""
    stale = []
    for name, text in files.items():
        try:
            current = (out_dir / name).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != text:
            stale.append(f"{out_dir / name}: {'missing' if current is None else 'out of date'}")
    if stale:
        raise ComponentOutOfDate(*stale, f"regenerate with `provision tsl render --tsl {tsl_path} --out {out_dir}`")

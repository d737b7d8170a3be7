"""The product's thing model: a TSL file (Alibaba console export) validated and rendered into C."""

from provision.tsl.model import DataType, Event, Field, Service, ThingModel, load_tsl, parse_tsl
from provision.tsl.render import check_component, render_component, write_component

__all__ = [
    "DataType",
    "Event",
    "Field",
    "Service",
    "ThingModel",
    "check_component",
    "load_tsl",
    "parse_tsl",
    "render_component",
    "write_component",
]

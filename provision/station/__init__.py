"""The flashing station: build inputs, ports, one process per board, progress, report.

`run_line(LineOptions(...), slots)` is the whole line; `provision flash` is its command-line wrapper.
"""

from __future__ import annotations

from provision.station.build import FirmwareBuild, load_build, partitions_only
from provision.station.efuse import EfusePlan
from provision.station.line import LineOptions, LineSummary, prepare, run_line
from provision.station.ports import Slot, discover_slots, resolve_slot
from provision.station.report import RunReport, render_lines, render_table
from provision.station.worker import BoardResult, StationJob

__all__ = [
    "BoardResult",
    "EfusePlan",
    "FirmwareBuild",
    "LineOptions",
    "LineSummary",
    "RunReport",
    "Slot",
    "StationJob",
    "discover_slots",
    "load_build",
    "partitions_only",
    "prepare",
    "render_lines",
    "render_table",
    "resolve_slot",
    "run_line",
]

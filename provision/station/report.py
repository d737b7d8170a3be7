"""The line's report: one row per board, as CSV and JSON, and the table shown at the end. No secrets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provision.atomic import write_private_file
from provision.station.worker import BoardResult

__all__ = ["REPORT_COLUMNS", "render_table", "write_report"]

# (report column, BoardResult attribute)
REPORT_COLUMNS = (
    ("port", "port"),
    ("mac", "mac"),
    ("device_name", "device_name"),
    ("product_key", "product_key"),
    ("chip", "chip"),
    ("seconds", "seconds"),
    ("bytes_written", "bytes_written"),
    ("result", "result"),
    ("reason", "reason"),
)


def _rows(results: Sequence[BoardResult]) -> list[dict[str, Any]]:
    return [
        {column: getattr(r, attr) for column, attr in REPORT_COLUMNS} for r in sorted(results, key=lambda r: r.port)
    ]


def write_report(results: Sequence[BoardResult], prefix: Path, *, ledger: str, station: str) -> tuple[Path, Path]:
    """Write PREFIX.csv and PREFIX.json atomically; returns both paths."""
    rows = _rows(results)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[c for c, _ in REPORT_COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = prefix.with_name(prefix.name + ".csv")
    json_path = prefix.with_name(prefix.name + ".json")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(csv_path, text.getvalue().encode())
    document = {
        "station": station,
        "ledger": ledger,
        "boards": rows,
        "verified": sum(1 for r in results if r.result == "verified"),
        "failed": sum(1 for r in results if r.result != "verified"),
    }
    write_private_file(json_path, (json.dumps(document, indent=2) + "\n").encode())
    return csv_path, json_path


def render_table(results: Sequence[BoardResult]) -> Any:
    from rich.table import Table

    table = Table(title="provision flash")
    for column in ("port", "MAC", "DeviceName", "ProductKey", "chip", "s", "bytes", "result", "reason"):
        table.add_column(column, overflow="fold")
    for r in sorted(results, key=lambda r: r.port):
        style = "green" if r.result == "verified" else "red"
        table.add_row(
            r.port,
            r.mac,
            r.device_name,
            r.product_key,
            r.chip,
            f"{r.seconds:.1f}",
            str(r.bytes_written),
            f"[{style}]{r.result}[/{style}]",
            r.reason,
        )
    return table

"""The line's report: one pair of files per run, a row appended and flushed as each board finishes.

`<prefix>-<UTC start>-<station>.csv` and `.jsonl` are created exclusively (an earlier run's report is
never overwritten); each finished board adds a CSV row and a JSON line, flushed and fsynced, so Ctrl-C,
a crash or a full disk leaves every finished board on record. The JSON lines are: a `run` header, one
`board` per board, and a closing `summary`. CSV cells a spreadsheet would run as a formula (first
character `=`, `+`, `-`, `@`, tab or CR: OWASP "CSV Injection") get a leading `'`. No secrets.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from provision.errors import EnvironmentProblem
from provision.station.worker import BoardResult

__all__ = ["REPORT_COLUMNS", "RunReport", "render_lines", "render_table", "spreadsheet_safe"]

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
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _row(result: BoardResult) -> dict[str, Any]:
    return {column: getattr(result, attr) for column, attr in REPORT_COLUMNS}


def _station_tag(station: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", station)[:64] or "station"


class RunReport:
    """The report files of one run; `add` each result as it comes, `close` with the summary."""

    def __init__(self, prefix: Path, *, station: str, ledger: str, started: dt.datetime | None = None) -> None:
        started = started or dt.datetime.now(dt.timezone.utc)
        stem = f"{prefix.name}-{started.strftime('%Y%m%dT%H%M%SZ')}-{_station_tag(station)}"
        self.csv_path, self.json_path = self._create(prefix.parent, stem)
        self.verified = 0
        self.boards = 0
        self.error: EnvironmentProblem | None = None
        self._csv: IO[str] = open(self.csv_path, "a", newline="", encoding="utf-8")
        self._json: IO[str] = open(self.json_path, "a", encoding="utf-8")
        self._writer = csv.DictWriter(self._csv, fieldnames=[c for c, _ in REPORT_COLUMNS], lineterminator="\n")
        self._writer.writeheader()
        self._line({"run": {"station": station, "ledger": ledger, "started": started.isoformat()}})

    @staticmethod
    def _create(directory: Path, stem: str) -> tuple[Path, Path]:
        # Two runs started in the same second by the same station get -2, -3 ...: never overwrite.
        for n in range(1, 1000):
            name = stem if n == 1 else f"{stem}-{n}"
            csv_path, json_path = directory / f"{name}.csv", directory / f"{name}.jsonl"
            try:
                os.close(os.open(csv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                continue
            try:
                os.close(os.open(json_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                os.unlink(csv_path)
                continue
            return csv_path, json_path
        raise FileExistsError(str(directory / f"{stem}.csv"))

    def _sync(self, handle: IO[str]) -> None:
        handle.flush()
        os.fsync(handle.fileno())

    def _line(self, document: dict[str, Any]) -> None:
        self._json.write(json.dumps(document) + "\n")
        self._sync(self._json)

    def add(self, result: BoardResult) -> None:
        """Append and sync one board; a write the OS refuses (a full disk) stops the report, not the line."""
        self.boards += 1
        self.verified += result.result == "verified"
        if self.error is not None:
            return
        row = _row(result)
        try:
            self._writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
            self._sync(self._csv)
            self._line({"board": row})
        except OSError as exc:
            self.error = self._problem(exc, on_record=self.boards - 1)

    def _problem(self, exc: OSError, *, on_record: int) -> EnvironmentProblem:
        # The boards keep going (stopping them mid-write would waste their triples) and the ledger records
        # them all; what the report lacks is said once, when the line ends.
        if exc.errno == errno.ENOSPC:
            cause = f"no space left on the file system holding {self.csv_path.parent}"
        else:
            cause = f"cannot write ({exc.strerror})"
        boards = f"{on_record} board{'' if on_record == 1 else 's'}"
        return EnvironmentProblem(
            f"report {self.csv_path}: {cause} after {boards} on record; the ledger holds every board "
            "(provision ledger export): free space there or give --report another place"
        )

    def close(self, *, seconds: float, interrupted: bool) -> None:
        """Write the summary and close; raises the report's write problem, if any, once both files are closed.

        Raises:
            EnvironmentProblem: a write failed (a full disk); the boards before it are on record.
        """
        summary = {
            "boards": self.boards,
            "verified": self.verified,
            "failed": self.boards - self.verified,
            "seconds": round(seconds, 1),
            "interrupted": interrupted,
        }
        if self.error is None:
            try:
                self._line({"summary": summary})
            except OSError as exc:
                self.error = self._problem(exc, on_record=self.boards)
        for handle in (self._csv, self._json):
            with contextlib.suppress(OSError):  # what a full disk refused is already said in self.error
                handle.close()
        if self.error is not None:
            raise self.error


def render_lines(results: Sequence[BoardResult]) -> str:
    """One line per board, for a stdout that is not a terminal (logs, pipes, CI)."""
    out = io.StringIO()
    for r in sorted(results, key=lambda r: r.port):
        reason = f" {r.reason}" if r.reason else ""
        out.write(f"{r.port} {r.mac or '-'} {r.device_name or '-'} {r.seconds:.1f}s {r.result}{reason}\n")
    return out.getvalue()


def render_table(results: Sequence[BoardResult]) -> Any:
    """The table for a terminal: five columns, so it fits 80 columns (the reason folds under its board)."""
    from rich.table import Table

    table = Table(title="provision flash")
    table.add_column("port", overflow="fold", max_width=10)
    table.add_column("MAC", no_wrap=True)
    table.add_column("DeviceName", overflow="fold", max_width=16)
    table.add_column("s", justify="right", no_wrap=True)
    table.add_column("result", overflow="fold", max_width=14)
    for r in sorted(results, key=lambda r: r.port):
        style = "green" if r.result == "verified" else "red"
        text = r.result if not r.reason else f"{r.result}: {r.reason}"
        table.add_row(r.port, r.mac, r.device_name, f"{r.seconds:.1f}", f"[{style}]{text}[/{style}]")
    return table

"""Click wrappers for `provision flash` and `provision ledger ...`, registered on the CLI group in cli.py.

Kept out of cli.py because of their many options; each stays a thin wrapper over provision.station and
provision.ledger.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from provision.errors import EnvironmentProblem, InputError, ProvisionError

__all__ = ["erase_command", "flash_command", "ledger_group"]


class BoardsFailed(ProvisionError):
    """The line ran and some boards failed (exit 1)."""


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number (0x... for hex)") from None


def _require_esptool() -> None:
    """The board processes drive esptool: its absence is the machine's, said once before any board."""
    try:
        import esptool  # noqa: F401
    except ImportError:
        raise EnvironmentProblem(
            "esptool is not installed in this Python: run scripts/setup (or pip install esptool)"
        ) from None


class Interrupted(ProvisionError):
    """Ctrl-C: exit 130, as a shell reports SIGINT."""

    exit_code = 130


def _interrupt_before_any_board(command: Callable[..., None]) -> Callable[..., None]:
    """Ctrl-C before the line started a board (the line itself reports what finished) is one line, exit 130."""

    @functools.wraps(command)
    def guarded(**options: Any) -> None:
        try:
            command(**options)
        except KeyboardInterrupt:
            raise Interrupted("interrupted before any board started; nothing was written") from None

    return guarded


@click.command("flash")
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Device file.")
@click.option(
    "--build-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="ESP-IDF build directory (flasher_args.json). Without it only the per-device partitions are written.",
)
@click.option(
    "--port", "ports", multiple=True, help="Device path, socket://, rfc2217://, usb-serial=SN, usb-location=L."
)
@click.option("--ports-watch", is_flag=True, help="Keep flashing each newly plugged board until Ctrl-C.")
@click.option("--emulate", type=click.IntRange(1, 64), help="Run against N emulated boards (no hardware needed).")
@click.option("--emulate-chip", default="esp32", show_default=True, help="Chip of the emulated boards.")
@click.option(
    "--emulate-link",
    default="socket",
    show_default=True,
    type=click.Choice(["socket", "rfc2217"]),
    help="rfc2217 carries DTR/RTS: real reset sequences, and --boot-check works.",
)
@click.option("--ledger", "ledger_url", help="postgresql://... or a SQLite path (default: <csv stem>.ledger.sqlite).")
@click.option(
    "--baud", default=460800, show_default=True, type=click.IntRange(min=1), help="Baud rate after the stub is running."
)
@click.option("--layout", default="aliyun", show_default=True, type=click.Choice(["aliyun", "esp-aliyun"]))
@click.option("--nvs-encryption", default="none", show_default=True, type=click.Choice(["none", "xts", "hmac"]))
@click.option("--nvs-partition", help="Label of the data/nvs partition for the credentials (default: fctry, else nvs).")
@click.option(
    "--partition-table",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Without --build-dir: the partition CSV placing the credentials (default: firmware/partitions.csv).",
)
@click.option("--new-ledger", is_flag=True, help="Create the ledger (it must not exist yet).")
@click.option("--adopt", is_flag=True, help="A board holding a free triple of this ledger keeps it; record that.")
@click.option("--reprovision", is_flag=True, help="Overwrite what a board holds (retires it); re-flash a verified one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (boards, summary) instead of the table.")
@click.option(
    "--report", "report_prefix", type=click.Path(path_type=Path), help="Report prefix: PREFIX-UTC-STATION.csv/.jsonl."
)
@click.option("--station", help="Name of this station in the ledger (default: host:pid).")
@click.option("--boot-check", "boot_check_s", type=float, help="Reset and wait this many seconds for the DeviceName.")
@click.option("--burn-hmac-key", is_flag=True, help="Burn the NVS HMAC key into eFuse (permanent).")
@click.option("--enable-flash-encryption", is_flag=True, help="Burn a flash-encryption key into eFuse (permanent).")
@click.option("--confirm-efuse-burn", is_flag=True, help="Confirm the permanent eFuse steps asked for.")
@click.option("--no-progress", is_flag=True, help="No progress bars (the table and report still come).")
@_interrupt_before_any_board
def flash_command(
    csv_path: Path,
    build_dir: Path | None,
    ports: tuple[str, ...],
    ports_watch: bool,
    emulate: int | None,
    emulate_chip: str,
    emulate_link: str,
    ledger_url: str | None,
    baud: int,
    layout: str,
    nvs_encryption: str,
    nvs_partition: str | None,
    partition_table: Path | None,
    new_ledger: bool,
    adopt: bool,
    reprovision: bool,
    as_json: bool,
    report_prefix: Path | None,
    station: str | None,
    boot_check_s: float | None,
    burn_hmac_key: bool,
    enable_flash_encryption: bool,
    confirm_efuse_burn: bool,
    no_progress: bool,
) -> None:
    """Provision every board on the line: claim a triple per MAC, write, verify, report."""
    _require_esptool()  # before the imports below: the emulator is built on esptool too
    import json
    import os

    from rich.console import Console

    from provision.credentials import load_devices
    from provision.emulator import EmulatedRack, demo_specs
    from provision.ledger import redact_url
    from provision.station import (
        EfusePlan,
        LineOptions,
        discover_slots,
        load_build,
        partitions_only,
        render_lines,
        render_table,
        resolve_slot,
        run_line,
    )
    from provision.station.ports import watch_new_slots

    if emulate and (ports or ports_watch):
        raise InputError("--emulate: runs its own boards; leave out --port and --ports-watch")
    if adopt and reprovision:
        raise click.UsageError("--adopt and --reprovision exclude each other: pick what happens to a held triple")
    for port in ports:
        if "://" not in port and "=" not in port and not os.path.exists(port):
            raise EnvironmentProblem(f"--port {port}: no such device: is the board plugged in? (ls /dev/tty*)")
    load_devices(csv_path)  # a bad file stops here, before any board (emulated ones included) exists
    build = (
        load_build(build_dir, nvs_label=nvs_partition)
        if build_dir
        else partitions_only(partition_table, nvs_label=nvs_partition)
        if partition_table
        else partitions_only(nvs_label=nvs_partition)
    )
    options = LineOptions(
        csv_path=csv_path,
        build=build,
        ledger_url=ledger_url,
        report_prefix=report_prefix,
        layout=layout,
        encryption=nvs_encryption,
        baud=baud,
        efuse=EfusePlan(burn_hmac_key, enable_flash_encryption, confirm_efuse_burn),
        boot_check_s=boot_check_s,
        show_progress=not no_progress and not as_json,
        new_ledger=new_ledger,
        create_missing_ledger=bool(emulate),
        adopt=adopt,
        reprovision=reprovision,
        **({"station": station} if station else {}),
    )
    console = Console(stderr=as_json)
    if emulate:
        rack_dir = csv_path.resolve().with_name(csv_path.stem + ".emulated-boards")
        console.print(f"emulated boards: {emulate} x {emulate_chip}, flash files in {rack_dir}")
        with EmulatedRack(demo_specs(emulate, rack_dir, chip=emulate_chip, transport=emulate_link)) as rack:
            from provision.station import Slot

            summary = run_line(
                options, [Slot(f"emulated-{i + 1}", url) for i, url in enumerate(rack.urls)], console=console
            )
    else:
        slots = [resolve_slot(p) for p in ports] if ports else ([] if ports_watch else discover_slots())
        if not slots and not ports_watch:
            raise EnvironmentProblem("no board found on any USB serial port: plug one in or give --port")
        summary = run_line(options, slots, watch=watch_new_slots() if ports_watch else None, console=console)
    if as_json:
        document = {
            "boards": [r.as_dict() for r in summary.results],
            "verified": summary.verified,
            "failed": summary.failed,
            "seconds": round(summary.seconds, 1),
            "interrupted": summary.interrupted,
            "ledger": redact_url(summary.ledger),
            "report": [str(summary.report_csv), str(summary.report_json)],
        }
        click.echo(json.dumps(document))
    else:
        if sys.stdout.isatty():
            console.print(render_table(summary.results))
        else:
            click.echo(render_lines(summary.results), nl=False)
        click.echo(f"ledger: {redact_url(summary.ledger)} (+{summary.imported} new triples)")
        click.echo(f"report: {summary.report_csv} and {summary.report_json}")
        click.echo(summary.line)
    if summary.interrupted:
        raise Interrupted(f"interrupted: {summary.line}; finished boards are in {summary.report_csv}")
    if summary.failed:
        raise BoardsFailed(f"{summary.failed} of {len(summary.results)} boards failed: see the table and the report")


@click.group("ledger")
def ledger_group() -> None:
    """Inspect and manage the ledger of which triple went to which board."""


def _open(csv_path: Path | None, ledger_url: str | None):  # type: ignore[no-untyped-def]
    from provision.ledger import open_ledger

    if not csv_path and not ledger_url:
        raise InputError("give --ledger URL or --csv FILE (whose ledger is <csv stem>.ledger.sqlite)")
    return open_ledger(ledger_url, csv_path)


_csv_option = click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Device file.")
_ledger_option = click.option("--ledger", "ledger_url", help="postgresql://... or a SQLite path.")


@ledger_group.command("init")
@_csv_option
@_ledger_option
def ledger_init(csv_path: Path | None, ledger_url: str | None) -> None:
    """Create a new, empty ledger (refused when it exists); `provision flash` then imports the CSV into it."""
    from provision.ledger import ledger_exists, open_ledger, redact_url

    if not csv_path and not ledger_url:
        raise InputError("give --ledger URL or --csv FILE (whose ledger is <csv stem>.ledger.sqlite)")
    if ledger_exists(ledger_url, csv_path):
        raise InputError(f"{redact_url(ledger_url or str(csv_path))}: a ledger exists already; nothing changed")
    ledger = open_ledger(ledger_url, csv_path, create=True)
    click.echo(f"created {ledger.description}")
    ledger.close()


@ledger_group.command("status")
@_csv_option
@_ledger_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document: counts per state and failed boards.")
def ledger_status(csv_path: Path | None, ledger_url: str | None, as_json: bool) -> None:
    """Count triples per state (retired included) and list failed boards."""
    import json

    ledger = _open(csv_path, ledger_url)
    try:
        counts = ledger.counts()
        failed = [r for r in ledger.rows() if r.state == "failed"]
        if as_json:
            boards = [
                {"product_key": r.product_key, "device_name": r.device_name, "mac": r.mac, "reason": r.reason}
                for r in failed
            ]
            click.echo(json.dumps({"ledger": ledger.description, "counts": counts, "failed": boards}))
            return
        click.echo(f"{ledger.description}: " + ", ".join(f"{state} {n}" for state, n in counts.items()))
        for row in failed:
            click.echo(f"failed: {row.product_key}/{row.device_name} on {row.mac}: {row.reason}")
    finally:
        ledger.close()


# The export's CSV header, in LedgerRow's field order (JSON lines use the field names themselves).
EXPORT_HEADER = (
    "ProductKey",
    "DeviceName",
    "MAC",
    "state",
    "reason",
    "chip",
    "station",
    "port",
    "attempts",
    "claimed_at",
    "updated_at",
    "verified_at",
)


@ledger_group.command("export")
@_csv_option
@_ledger_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one object per triple, instead of CSV.")
def ledger_export(csv_path: Path | None, ledger_url: str | None, out: Path | None, as_json: bool) -> None:
    """Every triple with its MAC and state, as CSV or JSON lines (no secrets: the ledger holds none)."""
    import dataclasses
    import json

    from provision.atomic import write_private_file

    ledger = _open(csv_path, ledger_url)
    try:
        rows = ledger.rows()
    finally:
        ledger.close()
    with tempfile.SpooledTemporaryFile(mode="w+", newline="") as text:
        if as_json:
            for r in rows:
                text.write(json.dumps(dataclasses.asdict(r)) + "\n")
        else:
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(EXPORT_HEADER)
            for r in rows:
                writer.writerow(["" if value is None else value for value in dataclasses.astuple(r)])
        text.seek(0)
        data = text.read()
    if out:
        try:
            write_private_file(out, data.encode())
        except OSError as exc:  # the OS names the temp file beside OUT: name OUT instead
            raise EnvironmentProblem(
                f"--out {out}: cannot write it ({exc.strerror}): check that {out.parent} exists and is writable"
            ) from None
    else:
        click.echo(data, nl=False)


@ledger_group.command("release")
@_csv_option
@_ledger_option
@click.argument("device")
@click.option("--product-key", help="When DEVICE exists in several products.")
@click.option("--yes", is_flag=True, help="Confirm without asking.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: the triple, its board and new state.")
def ledger_release(
    csv_path: Path | None, ledger_url: str | None, device: str, product_key: str | None, yes: bool, as_json: bool
) -> None:
    """Unbind DEVICE from its board so another board may take it (only if never verified)."""
    import json

    ledger = _open(csv_path, ledger_url)
    try:
        name = f"{product_key}/{device}" if product_key else device
        if not yes and not click.confirm(f"release {name} from its board? (only a never-verified triple can be)"):
            raise click.exceptions.Abort()
        released = ledger.release(device, product_key)
    finally:
        ledger.close()
    if as_json:
        fields = ("product_key", "device_name", "mac", "state", "reason")
        click.echo(json.dumps({field: getattr(released, field) for field in fields}))
        return
    outcome = "released (free again)" if released.state == "free" else "retired (never handed out again)"
    click.echo(f"{released.product_key}/{released.device_name} on {released.mac}: {outcome}")


@click.command("erase")
@click.option("--port", "port", required=True, help="The board's device path or pyserial URL.")
@_csv_option
@_ledger_option
@click.option("--partition-table", type=click.Path(dir_okay=False, path_type=Path), help="Default: the firmware's.")
@click.option("--station", default="erase", show_default=True, help="Name recorded in the ledger history.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: MAC, erased partitions, triple held.")
def erase_command(
    port: str, csv_path: Path | None, ledger_url: str | None, partition_table: Path | None, station: str, as_json: bool
) -> None:
    """Erase a board's credential partitions, read them back blank, and record it in the ledger."""
    from provision.station.build import partitions_only
    from provision.station.erase import erase_board

    _require_esptool()
    build = partitions_only(partition_table) if partition_table else partitions_only()
    ledger = _open(csv_path, ledger_url) if (csv_path or ledger_url) else None
    try:
        # esptool talks on stdout; stdout is this command's result (one line, or the JSON document)
        with contextlib.redirect_stdout(sys.stderr):
            result = erase_board(port, build, ledger, station=station)
    finally:
        if ledger is not None:
            ledger.close()
    if as_json:
        import json

        click.echo(json.dumps({"mac": result.mac, "erased": list(result.regions), "triple": result.device_name}))
        return
    held = f"; the ledger's {result.device_name} may now be released as free" if result.device_name else ""
    click.echo(f"{result.mac}: erased {', '.join(result.regions)} and read back blank{held}")

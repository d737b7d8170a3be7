"""Issue 9, messages an operator can act on: the final table, exit codes, --json of the ledger, passwords."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import psycopg
from flash_testlib import REPO, read_secrets, run_cli, write_devices
from rich.cells import cell_len

from provision.errors import EXIT_ENVIRONMENT, EXIT_USAGE


def _alone(tmp_path: Path) -> Path:
    """A device file alone in its directory, to see that a refused command left nothing beside it."""
    (tmp_path / "alone").mkdir()
    return write_devices(tmp_path / "alone" / "devices.csv", 1)


MAC = r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _on_terminal(args: list[str], cwd: Path, columns: int = 80, code: int = 1) -> str:
    """`provision ARGS` with stdout and stderr on a pseudo-terminal COLUMNS wide; what it drew, escapes removed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "provision.cli", *args], cwd=cwd, stdout=terminal, stderr=terminal, env=env
        )
        os.close(terminal)
        terminal = -1
        seen = b""
        with contextlib.suppress(OSError):  # EIO once the last writer has closed the terminal
            while chunk := os.read(controller, 65536):
                seen += chunk
        assert process.wait(timeout=120) == code, seen.decode(errors="replace")
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    return ANSI.sub("", seen.decode()).replace("\r\n", "\n")


def test_the_final_table_fits_80_columns_on_a_terminal(tmp_path: Path) -> None:
    # Names of the longest kind the CSV allows (32 characters) and a board that fails with a long reason.
    csv_path = write_devices(tmp_path / "devices.csv", 1, prefix="a-device-name-of-the-longes")
    assert len(next(iter(csv.DictReader(csv_path.open())))["DeviceName"]) == 32
    drawn = _on_terminal(["flash", "--csv", str(csv_path), "--emulate", "2", "--no-progress"], tmp_path)
    lines = drawn.splitlines()
    top = next(i for i, line in enumerate(lines) if line.strip() == "provision flash")
    end = next(i for i, line in enumerate(lines) if line.startswith("ledger: "))
    table = lines[top:end]
    # Readable, not only narrow: each board's port, whole MAC and result start on one line (a table of every
    # report column squeezed into 80 folds them all into slivers).
    for port in ("emulated-1", "emulated-2"):
        assert any(re.search(rf"{port} .*{MAC} .*(verified|failed)", line) for line in table), drawn
    widest = max(cell_len(line) for line in table)
    assert widest <= 80, "\n".join(table)
    assert lines[end + 2].startswith("1 of 2 verified in "), drawn


def test_the_overall_progress_bar_counts_boards(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    drawn = _on_terminal(["flash", "--csv", str(csv_path), "--emulate", "2"], tmp_path, code=0)
    assert "boards 2/2" in drawn and "emulated-1" in drawn and "emulated-2" in drawn, drawn
    assert not re.search(r"boards \d+/(?!2\b)", drawn), "the total is the number of boards, not bytes"


def test_one_line_per_board_when_stdout_is_not_a_terminal(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 1)
    run = run_cli("flash", "--csv", str(csv_path), "--emulate", "2", "--no-progress")
    assert run.code == 1, run.out + run.err
    boards = [line for line in run.out.splitlines() if line.startswith("emulated-")]
    assert len(boards) == 2, run.out
    assert any(re.fullmatch(rf"emulated-\d {MAC} board-0000 \d+\.\d+s verified", line) for line in boards), boards
    assert any(re.fullmatch(rf"emulated-\d {MAC} - \d+\.\d+s failed no free triple .*", line) for line in boards)
    assert "┃" not in run.out and "│" not in run.out, "no table drawing in a log"


def test_a_port_that_does_not_exist_is_exit_4_before_anything(tmp_path: Path) -> None:
    csv_path = _alone(tmp_path)
    run = run_cli("flash", "--csv", str(csv_path), "--new-ledger", "--port", "/dev/ttyNOPE")
    assert run.code == EXIT_ENVIRONMENT
    assert run.err.splitlines() == ["--port /dev/ttyNOPE: no such device: is the board plugged in? (ls /dev/tty*)"]
    assert [p.name for p in csv_path.parent.iterdir()] == ["devices.csv"], "no ledger, no report"


def test_a_missing_esptool_is_exit_4_before_anything(tmp_path: Path) -> None:
    csv_path = _alone(tmp_path)
    without_esptool = (
        "import sys; sys.modules['esptool'] = None; from provision.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    for args in (["flash", "--csv", str(csv_path), "--new-ledger", "--emulate", "1"], ["erase", "--port", "x"]):
        done = subprocess.run(
            [sys.executable, "-c", without_esptool, *args], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == EXIT_ENVIRONMENT, done.stderr
        assert done.stderr.splitlines() == [
            "esptool is not installed in this Python: run scripts/setup (or pip install esptool)"
        ]
    assert [p.name for p in csv_path.parent.iterdir()] == ["devices.csv"]


def test_flags_that_exclude_each_other_are_usage_errors(tmp_path: Path) -> None:
    csv_path = _alone(tmp_path)
    run = run_cli("flash", "--csv", str(csv_path), "--emulate", "1", "--adopt", "--reprovision")
    assert run.code == EXIT_USAGE
    assert "--adopt and --reprovision exclude each other" in run.err and "Traceback" not in run.err
    for flags in (["--encrypt", "--encrypt-hmac"], ["--size", "0x1001"], ["--size", "huge"]):
        refused = run_cli("gen-nvs", "--csv", str(csv_path), "--out", str(csv_path.parent / "o"), *flags)
        assert refused.code == EXIT_USAGE and len(refused.err.splitlines()) == 1, refused.err
    assert [p.name for p in csv_path.parent.iterdir()] == ["devices.csv"]


def test_flash_status_and_export_json(tmp_path: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    run = run_cli("flash", "--csv", str(csv_path), "--emulate", "2", "--json")
    assert run.code == 0, run.err
    document = json.loads(run.out)  # the whole of stdout: progress and notes went to stderr
    assert sorted(document) == ["boards", "failed", "interrupted", "ledger", "report", "seconds", "verified"]
    assert (document["verified"], document["failed"], document["interrupted"]) == (2, 0, False)
    assert set(document["boards"][0]) >= {
        "port", "mac", "device_name", "product_key", "chip", "seconds", "bytes_written", "result", "reason"
    }  # fmt: skip
    assert all(Path(p).is_file() for p in document["report"])
    status = run_cli("ledger", "status", "--csv", str(csv_path), "--json")
    counts = json.loads(status.out)["counts"]
    assert counts == {"free": 1, "claimed": 0, "flashing": 0, "flashed": 0, "verified": 2, "failed": 0, "retired": 0}
    # export: JSON lines carry what the CSV does
    as_csv = run_cli("ledger", "export", "--csv", str(csv_path))
    as_json = run_cli("ledger", "export", "--csv", str(csv_path), "--json")
    assert as_csv.code == 0 and as_json.code == 0, as_json.err
    documents = [json.loads(line) for line in as_json.out.splitlines()]
    rows = list(csv.reader(io.StringIO(as_csv.out)))
    assert len(documents) == 3 == len(rows) - 1
    assert [d["state"] for d in documents].count("verified") == 2
    assert list(documents[0]) == [
        "product_key", "device_name", "mac", "state", "reason", "chip", "station", "port", "attempts",
        "claimed_at", "updated_at", "verified_at",
    ]  # fmt: skip
    for document, row in zip(documents, rows[1:], strict=True):
        assert ["" if v is None else str(v) for v in document.values()] == row
    written = tmp_path / "export.jsonl"
    assert run_cli("ledger", "export", "--csv", str(csv_path), "--json", "--out", str(written)).code == 0
    assert written.read_text() == as_json.out and written.stat().st_mode & 0o777 == 0o600
    for secret in read_secrets(csv_path):
        assert secret not in as_json.out
    nowhere = run_cli("ledger", "export", "--csv", str(csv_path), "--out", str(tmp_path / "no" / "x.csv"))
    assert nowhere.code == EXIT_ENVIRONMENT
    assert nowhere.err.splitlines() == [
        f"--out {tmp_path / 'no' / 'x.csv'}: cannot write it (No such file or directory): "
        f"check that {tmp_path / 'no'} exists and is writable"
    ]


def test_a_postgresql_password_in_the_url_is_never_shown(tmp_path: Path, fresh_pg_db: str) -> None:
    password = "Pw-" + os.urandom(8).hex()
    with_password = fresh_pg_db.replace("postgresql://provision@", f"postgresql://provision:{password}@")
    in_query = f"{fresh_pg_db}?password={password}"
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    shown: list[str] = []
    init = run_cli("ledger", "init", "--ledger", with_password)
    again = run_cli("ledger", "init", "--ledger", in_query)
    assert init.code == 0 and again.code == 3 and "exists already" in again.err, again.err
    flashed = run_cli("flash", "--csv", str(csv_path), "--ledger", with_password, "--emulate", "1", "--no-progress")
    assert flashed.code == 0, flashed.out + flashed.err
    assert "ledger: postgresql:" in flashed.out
    as_json = run_cli("flash", "--csv", str(csv_path), "--ledger", in_query, "--emulate", "1", "--json")
    assert as_json.code == 0 and json.loads(as_json.out)["ledger"].startswith("postgresql:")
    new_again = run_cli("flash", "--csv", str(csv_path), "--ledger", with_password, "--emulate", "1", "--new-ledger")
    assert new_again.code == 3 and "provision:***@" in new_again.err, new_again.err
    status = run_cli("ledger", "status", "--ledger", with_password, "--json")
    assert json.loads(status.out)["counts"]["verified"] == 1
    unreachable = run_cli("ledger", "status", "--ledger", re.sub(r":\d+/", ":1/", with_password))
    assert unreachable.code == EXIT_ENVIRONMENT and "cannot reach the PostgreSQL ledger" in unreachable.err
    malformed = run_cli("ledger", "status", "--ledger", f"postgresql://provision:{password}@[::1/db")
    assert malformed.code == 3 and malformed.err.count("\n") == 1 and "Traceback" not in malformed.err
    for run in (init, again, flashed, as_json, new_again, status, unreachable, malformed):
        shown += [run.out, run.err]
    shown += [p.read_text() for p in tmp_path.glob("devices-flash-report-*")]
    assert len(shown) == 16 + 4  # two runs, a .csv and a .jsonl each
    assert not [text for text in shown if password in text]
    with psycopg.connect(fresh_pg_db) as db:  # and nothing of it went into the ledger
        dumped = " ".join(str(row) for row in db.execute("SELECT * FROM events").fetchall())
    assert password not in dumped

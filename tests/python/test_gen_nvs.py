"""`provision gen-nvs` and provision.gen_nvs: layouts, schemes, key material, files, manifest, refusals."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pty
import random
import secrets
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from esp_idf_nvs_partition_gen import nvs_partition_gen as package
from provision_testlib import GOOD_ROWS, HEADER, RunCli, tree, write_csv

from provision import gen_nvs, gen_nvs_output, nvs_format
from provision.credentials import Device
from provision.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_USAGE, EnvironmentProblem, InputError
from provision.inspect import read_nvs

DEVICE = Device("a1TestPK001", "dev-0001", "Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDAx", "UHJvZHVjdFNlY3JldDAwMDAwMDAx", None, 2)


def entries_of(parts: gen_nvs.PartitionSet) -> list[tuple[str, str, str, object]]:
    found = read_nvs(parts.nvs, nvs_keys=parts.nvs_keys, hmac_key=parts.hmac_key)
    return [(e.namespace, e.key, e.type, e.value) for e in found]


def test_default_layout() -> None:
    device = Device("a1TestPK001", "dev-0001", DEVICE.device_secret, None, "cn-shanghai", 2)
    parts = gen_nvs.build_partition(device)
    assert (parts.nvs_keys, parts.hmac_key) == (None, None)
    assert len(parts.nvs) == 0x6000
    assert entries_of(parts) == [
        ("aliyun", "product_key", "string", "a1TestPK001"),
        ("aliyun", "device_name", "string", "dev-0001"),
        ("aliyun", "device_secret", "string", DEVICE.device_secret),
        ("aliyun", "region", "string", "cn-shanghai"),
    ]


def test_region_left_out_when_unknown() -> None:
    keys = [e[1] for e in entries_of(gen_nvs.build_partition(DEVICE))]
    assert keys == ["product_key", "device_name", "device_secret"]


def test_esp_aliyun_layout() -> None:
    assert entries_of(gen_nvs.build_partition(DEVICE, layout="esp-aliyun")) == [
        ("aliyun-key", "ProductKey", "string", "a1TestPK001"),
        ("aliyun-key", "DeviceName", "string", "dev-0001"),
        ("aliyun-key", "DeviceSecret", "string", DEVICE.device_secret),
        ("aliyun-key", "ProductSecret", "string", DEVICE.product_secret),
    ]


@pytest.mark.parametrize("encryption", ["xts", "hmac"])
def test_encrypted_image_round_trips_and_hides_the_secret(encryption: str) -> None:
    parts = gen_nvs.build_partition(DEVICE, encryption=encryption, size=0x8000)
    assert len(parts.nvs) == 0x8000
    assert DEVICE.device_secret.encode() not in parts.nvs
    assert DEVICE.product_key.encode() not in parts.nvs
    assert [e[3] for e in entries_of(parts)] == ["a1TestPK001", "dev-0001", DEVICE.device_secret]


def test_nvs_keys_partition_layout() -> None:
    keys = gen_nvs.build_partition(DEVICE, encryption="xts").nvs_keys
    assert keys is not None and len(keys) == 4096
    assert struct.unpack_from("<I", keys, 64)[0] == zlib.crc32(keys[:64], 0xFFFFFFFF)
    assert keys[68:] == b"\xff" * (4096 - 68)


def test_keys_are_fresh_per_device_and_never_from_random(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("random is not a CSPRNG")

    for name in ("choice", "random", "randint", "getrandbits", "randbytes"):
        monkeypatch.setattr(random, name, forbidden)
    first = gen_nvs.build_partition(DEVICE, encryption="xts")
    second = gen_nvs.build_partition(DEVICE, encryption="xts")
    assert first.nvs_keys != second.nvs_keys
    assert first.nvs != second.nvs
    hmac_a = gen_nvs.build_partition(DEVICE, encryption="hmac").hmac_key
    hmac_b = gen_nvs.build_partition(DEVICE, encryption="hmac").hmac_key
    assert hmac_a is not None and len(hmac_a) == 32 and hmac_a != hmac_b


def test_hmac_derivation_matches_the_espressif_tool(tmp_path: Path) -> None:
    """esp-idf-nvs-partition-gen derives the same XTS keys from an HMAC key file (its generate_key)."""
    hmac_key = bytes(range(32))
    (tmp_path / "hmac.bin").write_bytes(hmac_key)
    package.generate_key(
        SimpleNamespace(
            keyfile="derived.bin",
            key_protect_hmac=True,
            kp_hmac_keygen=False,
            kp_hmac_keyfile=None,
            kp_hmac_inputkey=str(tmp_path / "hmac.bin"),
            outdir=str(tmp_path),
        )
    )
    theirs = (tmp_path / "keys" / "derived.bin").read_bytes()
    assert theirs == nvs_format.nvs_keys_partition(nvs_format.hmac_xts_key(hmac_key))


def test_reader_agrees_with_the_espressif_decryptor(tmp_path: Path) -> None:
    """Decrypt our XTS image with the package's own `decrypt`, then read the plain result without keys."""
    parts = gen_nvs.build_partition(DEVICE, encryption="xts")
    assert parts.nvs_keys is not None
    (tmp_path / "enc.bin").write_bytes(parts.nvs)
    (tmp_path / "keys.bin").write_bytes(parts.nvs_keys)
    package.decrypt(
        SimpleNamespace(
            input=str(tmp_path / "enc.bin"), key=str(tmp_path / "keys.bin"), output="dec.bin", outdir=str(tmp_path)
        )
    )
    plain = (tmp_path / "dec.bin").read_bytes()
    assert [(e.key, e.value) for e in read_nvs(plain)] == [(e[1], e[3]) for e in entries_of(parts)]


@pytest.mark.parametrize(
    ("size", "line"),
    [
        (0x6001, "--size: 0x6001 is not a multiple of 4096"),
        (0x2000, "--size: 0x2000 is below the read/write NVS minimum of 0x3000 (3 pages)"),
    ],
    ids=["not-multiple", "too-small"],
)
def test_bad_size(size: int, line: str) -> None:
    with pytest.raises(InputError) as caught:
        gen_nvs.build_partition(DEVICE, size=size)
    assert caught.value.lines == (line,)


def test_minimum_size_holds_a_device() -> None:
    assert len(gen_nvs.build_partition(DEVICE, size=0x3000).nvs) == 0x3000


# --- the command and its output directory ------------------------------------------------------------------


@pytest.fixture
def csv_file(in_tmp: Path) -> Path:
    return write_csv(in_tmp, [HEADER, *GOOD_ROWS])


def manifest_of(out: Path) -> dict[str, object]:
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize(
    ("flags", "scheme", "key_file"),
    [([], "none", None), (["--encrypt"], "xts", "nvs_keys.bin"), (["--encrypt-hmac"], "hmac", "hmac_key.bin")],
    ids=["plain", "xts", "hmac"],
)
def test_gen_nvs_writes_every_device(
    csv_file: Path, run_cli: RunCli, flags: list[str], scheme: str, key_file: str | None
) -> None:
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "out/nvs", *flags)
    assert result.code == 0, result.err
    assert result.out == f"out/nvs: 3 devices written (layout aliyun, encryption {scheme}, manifest.json)\n"
    out = csv_file.parent / "out" / "nvs"
    expected_files = sorted(["nvs.bin", key_file] if key_file else ["nvs.bin"])
    manifest = manifest_of(out)
    assert manifest["encryption"] == scheme and manifest["size"] == 0x6000 and manifest["layout"] == "aliyun"
    devices = manifest["devices"]
    assert isinstance(devices, list) and [d["device_name"] for d in devices] == ["dev-0001", "dev-0002", "dev-0003"]
    for record in devices:
        device_dir = out / record["device_name"]
        assert sorted(p.name for p in device_dir.iterdir()) == expected_files
        for entry in record["files"]:
            data = (out / entry["name"]).read_bytes()
            assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
            assert stat.S_IMODE((out / entry["name"]).stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "manifest.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert [p.name for p in out.parent.iterdir()] == ["nvs"], "no staging directory left behind"


def test_gen_nvs_esp_aliyun_layout_and_size(csv_file: Path, run_cli: RunCli) -> None:
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o", "--layout", "esp-aliyun", "--size", "0x4000")
    assert result.code == 0, result.err
    image = (csv_file.parent / "o" / "dev-0002" / "nvs.bin").read_bytes()
    assert len(image) == 0x4000
    assert {e.namespace for e in read_nvs(image)} == {"aliyun-key"}


def test_existing_output_is_refused_without_force(csv_file: Path, run_cli: RunCli) -> None:
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o").code == 0
    first = (csv_file.parent / "o" / "manifest.json").read_bytes()
    before = tree(csv_file.parent)
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o", "--encrypt")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == ["o: already exists; pass --force to replace it"]
    assert tree(csv_file.parent) == before and (csv_file.parent / "o" / "manifest.json").read_bytes() == first


def test_force_replaces_a_previous_output(csv_file: Path, run_cli: RunCli) -> None:
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o").code == 0
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o", "--encrypt", "--force").code == 0
    assert manifest_of(csv_file.parent / "o")["encryption"] == "xts"
    assert sorted(p.name for p in csv_file.parent.iterdir()) == ["devices.csv", "o"]


def test_force_does_not_replace_a_foreign_directory(csv_file: Path, run_cli: RunCli) -> None:
    (csv_file.parent / "o").mkdir()
    (csv_file.parent / "o" / "thesis.tex").write_text("precious")
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o", "--force")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == [
        "o: not empty and holds no manifest.json: not replacing what gen-nvs did not write"
    ]
    assert (csv_file.parent / "o" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--size", "0x6001"], "--size: 0x6001 is not a multiple of 4096"),
        (["--size", "0x2000"], "--size: 0x2000 is below the read/write NVS minimum of 0x3000 (3 pages)"),
        (["--size", "big"], "--size: 'big' is not a number of bytes (e.g. 0x6000)"),
        (["--encrypt", "--encrypt-hmac"], "--encrypt and --encrypt-hmac: choose one scheme"),
    ],
    ids=["size-not-multiple", "size-too-small", "size-not-number", "two-schemes"],
)
def test_bad_flags_write_nothing(csv_file: Path, run_cli: RunCli, flags: list[str], line: str) -> None:
    before = tree(csv_file.parent)
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o", *flags)
    assert result.code == EXIT_USAGE
    assert result.err.splitlines() == [line]
    assert tree(csv_file.parent) == before


def test_same_device_name_under_two_product_keys_writes_nothing(in_tmp: Path, run_cli: RunCli) -> None:
    write_csv(in_tmp, [HEADER, GOOD_ROWS[0], "a1TestPK002,dev-0001,Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDA5,"])
    before = tree(in_tmp)
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == [
        "devices.csv:3: DeviceName: the same DeviceName is already used under another ProductKey; gen-nvs names "
        "directories by DeviceName, split the CSV per ProductKey"
    ]
    assert tree(in_tmp) == before


def test_interrupted_run_leaves_nothing_behind(csv_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = gen_nvs.create_private_file
    calls = []

    def write_then_interrupt(path: str, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 5:  # the third device's image: two devices and their keys are on disk already
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(gen_nvs, "create_private_file", write_then_interrupt)
    before = tree(csv_file.parent)
    with pytest.raises(KeyboardInterrupt):
        gen_nvs.write_partitions("devices.csv", "o", encryption="xts")
    assert len(calls) == 5
    assert tree(csv_file.parent) == before
    monkeypatch.setattr(gen_nvs, "create_private_file", real)
    assert gen_nvs.write_partitions("devices.csv", "o", encryption="xts").devices == 3


def test_manifest_holds_no_secret(csv_file: Path) -> None:
    gen_nvs.write_partitions("devices.csv", "o", encryption="hmac")
    text = (csv_file.parent / "o" / "manifest.json").read_text()
    for row in GOOD_ROWS:
        assert row.split(",")[2] not in text


def test_csv_changed_during_generation_writes_nothing(csv_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = gen_nvs.create_private_file

    def write_and_edit(path: str, data: bytes) -> None:
        if path.endswith("dev-0001/nvs.bin"):
            text = csv_file.read_text().replace("MDAwMDAwMDAz", "MDAwMDAwMDA5")
            csv_file.write_text(text)
        real(path, data)

    monkeypatch.setattr(gen_nvs, "create_private_file", write_and_edit)
    with pytest.raises(InputError) as caught:
        gen_nvs.write_partitions("devices.csv", "o", encryption="xts")
    assert caught.value.lines == ("devices.csv: changed while it was being read; nothing was written, run again",)
    assert tree(csv_file.parent) == ["devices.csv"]


def test_a_killed_run_leaves_keys_that_the_next_run_removes(in_tmp: Path) -> None:
    """SIGKILL gives no chance to clean up: the staging directory (with keys) stays until the next run."""
    rows = [f"a1TestPK001,kill-{n:05d},{secrets.token_hex(16)},cn-shanghai" for n in range(3000)]
    write_csv(in_tmp, [HEADER, *rows])
    child = subprocess.Popen(
        [sys.executable, "-m", "provision.cli", "gen-nvs", "--csv", "devices.csv", "--out", "o", "--encrypt"],
        cwd=in_tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(in_tmp.glob(".o.partial-*/kill-0000*/nvs_keys.bin")):
            assert child.poll() is None, "gen-nvs finished before it could be killed: make the CSV larger"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert list(in_tmp.glob(".o.partial-*")), "the killed run left no staging directory"
    assert not (in_tmp / "o").exists()

    assert gen_nvs.write_partitions("devices.csv", "o", encryption="xts").devices == 3000
    assert sorted(p.name for p in in_tmp.iterdir()) == ["devices.csv", "o"]


def test_leftovers_of_a_swap_cut_short_are_removed(csv_file: Path) -> None:
    """Killed between its two renames, a run leaves both the old output and the new staging beside OUT."""
    for leftover in (".o.partial-0badc0de", ".o.old-0badc0de"):
        (csv_file.parent / leftover / "dev-0001").mkdir(parents=True)
        (csv_file.parent / leftover / "dev-0001" / "nvs_keys.bin").write_bytes(b"\x00" * 4096)
    (csv_file.parent / ".other.partial-0badc0de").mkdir()
    gen_nvs.write_partitions("devices.csv", "o", encryption="xts")
    assert sorted(p.name for p in csv_file.parent.iterdir()) == [".other.partial-0badc0de", "devices.csv", "o"]


def test_a_second_run_on_the_same_out_is_refused_and_harms_nothing(csv_file: Path, run_cli: RunCli) -> None:
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o").code == 0
    first = {path: path.read_bytes() for path in (csv_file.parent / "o").rglob("*") if path.is_file()}
    # A run in progress: the staging directory it writes and the lock it holds.
    staging = csv_file.parent / ".o.partial-0000beef"
    staging.mkdir()
    with gen_nvs_output.output_lock(csv_file.parent / "o"):
        result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o", "--force")
    assert result.code == EXIT_FAILED
    assert result.err.splitlines() == [
        f"o: another gen-nvs (pid {os.getpid()}) is writing this output; nothing was changed: wait for it to "
        "finish, or choose another --out"
    ]
    assert staging.is_dir(), "the loser removed the running run's staging directory"
    assert {path: path.read_bytes() for path in (csv_file.parent / "o").rglob("*") if path.is_file()} == first


def test_two_concurrent_runs_one_wins_one_is_told(in_tmp: Path) -> None:
    rows = [f"a1TestPK001,dev-{i:05d},{secrets.token_hex(16)},cn-shanghai" for i in range(400)]
    write_csv(in_tmp, [HEADER, *rows])
    command = [sys.executable, "-m", "provision.cli", "gen-nvs", "--csv", "devices.csv", "--out", "o", "--force"]
    runs = [
        subprocess.Popen(command, cwd=in_tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = sorted((run.wait(timeout=120), run.stderr.read()) for run in runs)  # type: ignore[union-attr]
    assert outcomes[0][0] == 0
    # The second either waited its turn (the first had finished) or was told; both never fail.
    assert outcomes[1][0] == 0 or "another gen-nvs" in outcomes[1][1], outcomes
    assert len(json.loads((in_tmp / "o" / "manifest.json").read_text())["devices"]) == 400
    assert not list(in_tmp.glob(".o.partial-*"))


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            errno.ENOSPC,
            "o: no space left on the file system holding .; nothing was written: free space there or "
            "choose another --out",
        ),
        (errno.EIO, "o: cannot write (Input/output error); nothing was written: check the path"),
    ],
    ids=["enospc", "eio"],
)
def test_os_error_names_the_users_path(
    csv_file: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, error: int, line: str
) -> None:
    def full_disk(path: str, data: bytes) -> None:
        raise OSError(error, os.strerror(error), path)  # the OS names the staging file

    monkeypatch.setattr(gen_nvs, "create_private_file", full_disk)
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o", "--encrypt")
    assert result.code == EXIT_ENVIRONMENT
    assert result.err.splitlines() == [line]
    assert not list(csv_file.parent.glob(".o.partial-*")) and not (csv_file.parent / "o").exists()


def test_the_tree_is_flushed_on_its_own_file_system_only(csv_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """syncfs(2) on the output's file system, never sync(2) of every disk (a station's USB stick too); a
    write-back error there is a failed run that leaves nothing."""
    import ctypes

    def no_global_sync() -> None:
        raise AssertionError("os.sync() flushes every file system")

    monkeypatch.setattr(os, "sync", no_global_sync)
    assert gen_nvs.write_partitions("devices.csv", "o", encryption="xts").devices == 3

    class WriteBackFails:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def syncfs(self, fd: int) -> int:
            assert os.path.samefile(f"/proc/self/fd/{fd}", next(csv_file.parent.glob(".p.partial-*")))
            ctypes.set_errno(errno.EIO)
            return -1

    monkeypatch.setattr(ctypes, "CDLL", WriteBackFails)
    with pytest.raises(EnvironmentProblem) as caught:
        gen_nvs.write_partitions("devices.csv", "p", encryption="xts")
    assert caught.value.lines == ("p: cannot write (Input/output error); nothing was written: check the path",)
    assert not (csv_file.parent / "p").exists() and not list(csv_file.parent.glob(".p.*"))


def test_gen_nvs_and_check_json(csv_file: Path, run_cli: RunCli) -> None:
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o", "--encrypt", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "out": "o",
        "devices": 3,
        "layout": "aliyun",
        "encryption": "xts",
        "manifest": "o/manifest.json",
    }
    checked = run_cli("check", "--csv", "devices.csv", "--json")
    assert json.loads(checked.out) == {"path": "devices.csv", "devices": 3, "product_keys": ["a1TestPK001"], "ok": True}


def _gen_nvs_stderr(cwd: Path, on_terminal: bool) -> bytes:
    command = [sys.executable, "-m", "provision.cli", "gen-nvs", "--csv", "devices.csv", "--out", "o", "--force"]
    if not on_terminal:
        return subprocess.run(command, cwd=cwd, capture_output=True, check=True).stderr
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=terminal, check=True, timeout=120)
        assert done.stdout.startswith(b"o: 3 devices written")
        os.close(terminal)
        terminal = -1
        seen = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(controller, 4096):
                seen += chunk
        return seen
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)


def test_progress_on_a_terminal_only(csv_file: Path) -> None:
    assert b"3/3 devices (100%)" in _gen_nvs_stderr(csv_file.parent, on_terminal=True)
    assert _gen_nvs_stderr(csv_file.parent, on_terminal=False) == b""

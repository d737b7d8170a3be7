"""`gen-nvs --archive`: one tar, fixed offsets, the manifest inside; images byte-identical to the package's
(also through the directory tree), and the same refusals as the tree."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import stat
import tarfile
from pathlib import Path

import pytest
from provision_testlib import GOOD_ROWS, HEADER, RunCli, tree, write_csv
from test_credentials import BAD_INPUTS  # the cases `check` and the tree output are held to
from test_nvs_writer import package_image, random_device

from provision import gen_nvs, nvs_format
from provision.credentials import load_devices
from provision.errors import EXIT_BAD_INPUT, EXIT_USAGE

KEY_FILES = {"xts": "nvs_keys.bin", "hmac": "hmac_key.bin", "none": None}


def random_csv(directory: Path, rng: random.Random, count: int) -> Path:
    """Random devices (secrets of any printable character, so quoted where the CSV needs it)."""
    path = directory / "devices.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["ProductKey", "DeviceName", "DeviceSecret", "ProductSecret", "Region"])
        for index in range(count):
            device = random_device(rng)
            name = f"{device.device_name[:26]}-{index:05d}"  # unique, still 4-32 characters of the DeviceName set
            writer.writerow(
                [device.product_key, name, device.device_secret, device.product_secret or "", device.region or ""]
            )
    return path


def package_files(layout: str, size: int, encryption: str, csv_path: Path, files: dict[str, bytes]) -> None:
    """Each device's nvs.bin, remade by the package with the key gen-nvs wrote for it, equals gen-nvs's."""
    for device in load_devices(csv_path):
        namespace, pairs = gen_nvs.layout_entries(device, layout)
        key_file = KEY_FILES[encryption]
        key = None
        if encryption == "xts":
            key = nvs_format.parse_nvs_keys_partition(files[f"{device.device_name}/{key_file}"])
            assert key is not None
        elif encryption == "hmac":
            key = nvs_format.hmac_xts_key(files[f"{device.device_name}/{key_file}"])
        assert files[f"{device.device_name}/nvs.bin"] == package_image(namespace, pairs, size, key), device.row


@pytest.mark.parametrize("output", ["tree", "archive"])
@pytest.mark.parametrize("encryption", ["xts", "hmac", "none"])
def test_written_images_are_the_packages_bytes(in_tmp: Path, output: str, encryption: str) -> None:
    rng = random.Random(f"gen-nvs-{output}-{encryption}")
    csv_path = random_csv(in_tmp, rng, 40)
    layout = rng.choice(gen_nvs.LAYOUTS)
    size = rng.choice([0x3000, 0x6000])
    if output == "tree":
        gen_nvs.write_partitions(csv_path, "out", layout=layout, size=size, encryption=encryption)
        files = {str(p.relative_to(in_tmp / "out")): p.read_bytes() for p in (in_tmp / "out").rglob("*.bin")}
    else:
        gen_nvs.write_archive(csv_path, "out.tar", layout=layout, size=size, encryption=encryption)
        with tarfile.open(in_tmp / "out.tar") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".bin")}  # type: ignore[union-attr]
    assert len(files) == 40 * (1 if encryption == "none" else 2)
    package_files(layout, size, encryption, csv_path, files)


def test_archive_layout_fixed_offsets_and_manifest(in_tmp: Path) -> None:
    csv_path = write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    report = gen_nvs.write_archive(csv_path, "out.tar", encryption="xts")
    assert report.line() == "out.tar: 3 devices written (layout aliyun, encryption xts, manifest.json inside)"
    data = (in_tmp / "out.tar").read_bytes()
    assert stat.S_IMODE((in_tmp / "out.tar").stat().st_mode) == 0o600
    with tarfile.open(in_tmp / "out.tar") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert names == [f"dev-000{i}/{f}" for i in (1, 2, 3) for f in ("nvs.bin", "nvs_keys.bin")] + ["manifest.json"]
    assert all(m.mode == 0o600 and m.isfile() for m in members)
    stride = 512 + 0x6000 + 512 + 4096
    assert manifest["stride"] == stride and manifest["encryption"] == "xts" and manifest["size"] == 0x6000
    for index, record in enumerate(manifest["devices"]):
        nvs, keys = record["files"]
        assert nvs["offset"] == index * stride + 512 and keys["offset"] == index * stride + 512 + 0x6000 + 512
        for entry in record["files"]:
            content = data[entry["offset"] : entry["offset"] + entry["bytes"]]
            assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    assert data.endswith(b"\0" * 1024) and len(data) % 512 == 0
    assert sorted(p.name for p in in_tmp.iterdir()) == ["devices.csv", "out.tar"], "no staging file left behind"


def test_hmac_key_members_are_padded_to_blocks(in_tmp: Path) -> None:
    csv_path = write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    gen_nvs.write_archive(csv_path, "out.tar", encryption="hmac", size=0x3000)
    with tarfile.open(in_tmp / "out.tar") as tar:
        sizes = [(m.name, m.size, m.offset_data) for m in tar.getmembers()]
    stride = 512 + 0x3000 + 512 + 512
    assert sizes[:2] == [("dev-0001/nvs.bin", 0x3000, 512), ("dev-0001/hmac_key.bin", 32, 512 + 0x3000 + 512)]
    assert sizes[2][2] == stride + 512


def test_inspect_reads_an_image_out_of_the_archive(in_tmp: Path, run_cli: RunCli) -> None:
    write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--archive", "out.tar", "--encrypt").code == 0
    result = run_cli("inspect", "out.tar::dev-0002/nvs.bin", "--keys", "out.tar::dev-0002/nvs_keys.bin")
    assert result.code == 0, result.err
    summary = "out.tar::dev-0002/nvs.bin: 6 pages, 4 entries, all CRCs OK (flash-encryption keys)"
    assert result.out.splitlines()[0] == summary
    assert "dev-0002" in result.out
    missing = run_cli("inspect", "out.tar::dev-0009/nvs.bin")
    assert missing.code == EXIT_BAD_INPUT
    assert missing.err.splitlines() == [
        "out.tar::dev-0009/nvs.bin: no such file in the archive: list it with `tar -tf`"
    ]


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_archive_writes_nothing(in_tmp: Path, run_cli: RunCli, case: str) -> None:
    lines, expected = BAD_INPUTS[case]
    write_csv(in_tmp, lines) if lines else (in_tmp / "devices.csv").write_bytes(b"")
    before = tree(in_tmp)
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--archive", "out/nvs.tar", "--encrypt")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == expected
    assert tree(in_tmp) == before


def test_same_device_name_under_two_product_keys_writes_no_archive(in_tmp: Path, run_cli: RunCli) -> None:
    write_csv(in_tmp, [HEADER, GOOD_ROWS[0], GOOD_ROWS[1], "a1TestPK002,dev-0001,Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDA5,"])
    before = tree(in_tmp)
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--archive", "out.tar")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == [
        "devices.csv:4: DeviceName: the same DeviceName is already used under another ProductKey; gen-nvs names "
        "directories by DeviceName, split the CSV per ProductKey"
    ]
    assert tree(in_tmp) == before


def test_existing_archive_needs_force_and_must_be_one_gen_nvs_wrote(in_tmp: Path, run_cli: RunCli) -> None:
    write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--archive", "out.tar").code == 0
    first = (in_tmp / "out.tar").read_bytes()
    refused = run_cli("gen-nvs", "--csv", "devices.csv", "--archive", "out.tar", "--encrypt")
    assert refused.code == EXIT_BAD_INPUT
    assert refused.err.splitlines() == ["out.tar: already exists; pass --force to replace it"]
    assert (in_tmp / "out.tar").read_bytes() == first
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--archive", "out.tar", "--encrypt", "--force").code == 0
    with tarfile.open(in_tmp / "out.tar") as tar:
        assert "dev-0001/nvs_keys.bin" in tar.getnames()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as foreign:
        info = tarfile.TarInfo("thesis.tex")
        info.size = 8
        foreign.addfile(info, io.BytesIO(b"precious"))
    (in_tmp / "other.tar").write_bytes(buf.getvalue())
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--archive", "other.tar", "--force")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == ["other.tar: exists and is not an archive gen-nvs wrote: not replacing it"]
    assert (in_tmp / "other.tar").read_bytes() == buf.getvalue()


def test_csv_problems_come_before_an_existing_output(in_tmp: Path, run_cli: RunCli) -> None:
    """As when the whole CSV was checked before anything else: a bad file is reported, not the existing OUT."""
    write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--archive", "out.tar").code == 0
    assert run_cli("gen-nvs", "--csv", "devices.csv", "--out", "o").code == 0
    write_csv(in_tmp, [HEADER, "a1TestPK001,dev-0001,,"])
    for flag, target in (("--archive", "out.tar"), ("--out", "o")):
        result = run_cli("gen-nvs", "--csv", "devices.csv", flag, target)
        assert result.code == EXIT_BAD_INPUT
        assert result.err.splitlines() == ["devices.csv:2: DeviceSecret: empty"]


def test_a_killed_runs_partial_archive_is_removed_by_the_next_run(in_tmp: Path) -> None:
    write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    (in_tmp / ".out.tar.partial-0badc0de").write_bytes(b"\0" * 4096)
    gen_nvs.write_archive("devices.csv", "out.tar", encryption="xts")
    assert sorted(p.name for p in in_tmp.iterdir()) == ["devices.csv", "out.tar"]


@pytest.mark.parametrize("flags", [[], ["--out", "o", "--archive", "o.tar"]], ids=["neither", "both"])
def test_out_or_archive_exactly_one(in_tmp: Path, run_cli: RunCli, flags: list[str]) -> None:
    write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    result = run_cli("gen-nvs", "--csv", "devices.csv", *flags)
    assert result.code == EXIT_USAGE
    assert result.err.splitlines() == ["gen-nvs: give --out DIR or --archive FILE.tar (one of them)"]
    assert sorted(os.listdir(in_tmp)) == ["devices.csv"]


def test_manifest_lines_are_what_json_dumps_writes(in_tmp: Path) -> None:
    """The manifest is formatted by hand for speed; its text stays json.dumps' (stations may diff it)."""
    write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    gen_nvs.write_partitions("devices.csv", "o", encryption="xts")
    lines = (in_tmp / "o" / "manifest.json").read_text().splitlines()
    assert lines[0] == '{"format": 1, "layout": "aliyun", "encryption": "xts", "size": 24576, "devices": ['
    assert lines[-1] == "]}" and len(lines) == 5
    for line in lines[1:-1]:
        assert line[0] in " ,"
        assert json.dumps(json.loads(line[1:])) == line[1:]

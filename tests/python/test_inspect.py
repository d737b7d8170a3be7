"""`provision inspect` and provision.inspect.read_nvs: round trips, every value type, and corruption."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from esp_idf_nvs_partition_gen import nvs_partition_gen as package
from provision_testlib import GOOD_ROWS, HEADER, RunCli, write_csv

from provision import gen_nvs, nvs_format
from provision.credentials import Device
from provision.errors import EXIT_BAD_INPUT, InputError
from provision.inspect import CorruptImage, NvsEntry, read_nvs

SECRET = "Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDAx"
DEVICE = Device("a1TestPK001", "dev-0001", SECRET, None, "cn-shanghai", 2)
ENTRY_1 = 64 + 32  # page 0: entry 0 is the namespace, entry 1 the product_key header, entry 2 its text


@pytest.fixture
def generated(in_tmp: Path, run_cli: RunCli) -> Path:
    write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    for flag, out in (("", "plain"), ("--encrypt", "xts"), ("--encrypt-hmac", "hmac")):
        args = ["gen-nvs", "--csv", "devices.csv", "--out", out] + ([flag] if flag else [])
        assert run_cli(*args).code == 0
    return in_tmp


MASKED = [
    "aliyun          product_key     string a1TestPK001",
    "aliyun          device_name     string dev-0001",
    "aliyun          device_secret   string ******** (32 characters, --show-secrets to reveal)",
    "aliyun          region          string cn-shanghai",
]


@pytest.mark.parametrize(
    ("out", "key_args", "scheme"),
    [
        ("plain", [], "no keys"),
        ("xts", ["--keys", "xts/dev-0001/nvs_keys.bin"], "flash-encryption keys"),
        ("hmac", ["--hmac-key", "hmac/dev-0001/hmac_key.bin"], "HMAC key"),
    ],
    ids=["plain", "xts", "hmac"],
)
def test_round_trip_through_inspect(
    generated: Path, run_cli: RunCli, out: str, key_args: list[str], scheme: str
) -> None:
    result = run_cli("inspect", f"{out}/dev-0001/nvs.bin", *key_args)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [f"{out}/dev-0001/nvs.bin: 6 pages, 4 entries, all CRCs OK ({scheme})", *MASKED]
    assert SECRET not in result.out + result.err


def test_show_secrets_reveals(generated: Path, run_cli: RunCli) -> None:
    result = run_cli("inspect", "xts/dev-0001/nvs.bin", "--keys", "xts/dev-0001/nvs_keys.bin", "--show-secrets")
    assert f"aliyun          device_secret   string {SECRET}" in result.out.splitlines()


def image_with_flipped_byte(offset: int) -> bytes:
    image = bytearray(gen_nvs.build_partition(DEVICE).nvs)
    image[offset] ^= 0x01
    return bytes(image)


CORRUPTIONS = {
    "entry-header": (
        lambda: image_with_flipped_byte(ENTRY_1 + 10),
        "image: page 0 entry 1: entry CRC mismatch (an encrypted image? pass its keys)",
    ),
    "string-data": (
        lambda: image_with_flipped_byte(ENTRY_1 + 32 + 3),
        "image: page 0 entry 1 (product_key): data CRC mismatch",
    ),
    "page-header": (lambda: image_with_flipped_byte(5), "image: page 0: page header CRC mismatch"),
    "page-state": (
        lambda: image_with_flipped_byte(1),
        "image: page 0: page state 0xFFFFFEFE is not active, full or freeing",
    ),
    "data-in-blank-page": (
        lambda: image_with_flipped_byte(5 * 4096 + 100),
        "image: page 5: page marked uninitialised holds data",
    ),
    "data-in-empty-entry": (
        lambda: image_with_flipped_byte(64 + 32 * 100),
        "image: page 0 entry 100: entry marked empty holds data",
    ),
    "truncated": (
        lambda: gen_nvs.build_partition(DEVICE).nvs[:5000],
        "image: 5000 bytes is not a whole number of 4096-byte pages",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corruption_is_refused(case: str) -> None:
    make, line = CORRUPTIONS[case]
    with pytest.raises(CorruptImage) as caught:
        read_nvs(make())
    assert caught.value.lines == (line,)


def test_corrupt_image_through_the_command(in_tmp: Path, run_cli: RunCli) -> None:
    (in_tmp / "bad.bin").write_bytes(image_with_flipped_byte(ENTRY_1 + 10))
    result = run_cli("inspect", "bad.bin")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == [
        "bad.bin: page 0 entry 1: entry CRC mismatch (an encrypted image? pass its keys)"
    ]


def test_encrypted_image_without_keys_says_so(generated: Path, run_cli: RunCli) -> None:
    result = run_cli("inspect", "xts/dev-0001/nvs.bin")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == [
        "xts/dev-0001/nvs.bin: page 0 entry 0: entry CRC mismatch (an encrypted image? pass its keys)"
    ]


def test_wrong_keys_are_detected(generated: Path, run_cli: RunCli) -> None:
    result = run_cli("inspect", "xts/dev-0001/nvs.bin", "--keys", "xts/dev-0002/nvs_keys.bin")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == ["xts/dev-0001/nvs.bin: page 0 entry 0: entry CRC mismatch (wrong keys?)"]
    result = run_cli("inspect", "hmac/dev-0001/nvs.bin", "--hmac-key", "hmac/dev-0002/hmac_key.bin")
    assert result.err.splitlines() == ["hmac/dev-0001/nvs.bin: page 0 entry 0: entry CRC mismatch (wrong keys?)"]


def test_malformed_key_files(generated: Path, run_cli: RunCli) -> None:
    keys = bytearray((generated / "xts/dev-0001/nvs_keys.bin").read_bytes())
    keys[3] ^= 0xFF
    (generated / "bad_keys.bin").write_bytes(keys)
    result = run_cli("inspect", "xts/dev-0001/nvs.bin", "--keys", "bad_keys.bin")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == [
        "xts/dev-0001/nvs.bin: keys: not an nvs_keys partition (4096 bytes, CRC32 after the 64-byte key)"
    ]
    (generated / "short.bin").write_bytes(b"\x01" * 16)
    result = run_cli("inspect", "hmac/dev-0001/nvs.bin", "--hmac-key", "short.bin")
    assert result.err.splitlines() == ["hmac/dev-0001/nvs.bin: HMAC key: 16 bytes, expected 32"]
    result = run_cli("inspect", "hmac/dev-0001/nvs.bin", "--hmac-key", "short.bin", "--keys", "bad_keys.bin")
    assert result.err.splitlines() == ["hmac/dev-0001/nvs.bin: give the nvs_keys partition or the HMAC key, not both"]


def test_missing_image(in_tmp: Path, run_cli: RunCli) -> None:
    result = run_cli("inspect", "none.bin")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == ["none.bin: cannot read the image: No such file or directory"]


PRIMITIVES = [
    ("u8", "255"),
    ("i8", "-128"),
    ("u16", "65535"),
    ("i16", "-32768"),
    ("u32", "4294967295"),
    ("i32", "-2147483648"),
    ("u64", "18446744073709551615"),
    ("i64", "-9223372036854775808"),
]


def _package_image(xts_key: bytes | None = None) -> bytes:
    """An image with every value type, a blob spread over pages and two namespaces, by Espressif's writer."""
    out = io.BytesIO()
    nvs = package.nvs_open(out, 0x5000, package.Page.VERSION2, is_encrypt=xts_key is not None, key=xts_key)
    package.write_entry(nvs, "first", "namespace", "", "")
    for encoding, value in PRIMITIVES:
        package.write_entry(nvs, encoding, "data", encoding, value)
    package.write_entry(nvs, "second", "namespace", "", "")
    package.write_entry(nvs, "text", "data", "string", "héllo")
    package.write_entry(nvs, "blob", "data", "hex2bin", bytes(range(256)).hex() * 24)
    package.nvs_close(nvs)
    return out.getvalue()


EXPECTED_ALL_TYPES = [
    NvsEntry("first", "u8", "u8", 255),
    NvsEntry("first", "i8", "i8", -128),
    NvsEntry("first", "u16", "u16", 65535),
    NvsEntry("first", "i16", "i16", -32768),
    NvsEntry("first", "u32", "u32", 4294967295),
    NvsEntry("first", "i32", "i32", -2147483648),
    NvsEntry("first", "u64", "u64", 18446744073709551615),
    NvsEntry("first", "i64", "i64", -9223372036854775808),
    NvsEntry("second", "text", "string", "héllo"),
    NvsEntry("second", "blob", "blob", bytes(range(256)) * 24),
]


def test_every_type_and_a_multi_page_blob() -> None:
    entries = read_nvs(_package_image())
    assert entries == EXPECTED_ALL_TYPES
    assert [e.value for e in entries] == [e.value for e in EXPECTED_ALL_TYPES]


def test_every_type_encrypted() -> None:
    xts_key = bytes(range(64))
    image = _package_image(xts_key)
    assert read_nvs(image, nvs_keys=nvs_format.nvs_keys_partition(xts_key)) == EXPECTED_ALL_TYPES


def test_erased_entries_are_skipped() -> None:
    image = bytearray(gen_nvs.build_partition(DEVICE).nvs)
    bitmap_byte = 32  # entries 0..3; entry 1 (product_key header) uses bits 2..3, entry 2 bits 4..5
    image[bitmap_byte] &= ~0b00111100 & 0xFF
    assert [e.key for e in read_nvs(bytes(image))] == ["device_name", "device_secret", "region"]


def test_entry_in_an_undefined_namespace() -> None:
    image = bytearray(gen_nvs.build_partition(DEVICE).nvs)
    entry = bytearray(image[ENTRY_1 : ENTRY_1 + 32])
    entry[0] = 7
    struct.pack_into("<I", entry, 4, nvs_format.entry_crc(bytes(entry)))
    image[ENTRY_1 : ENTRY_1 + 32] = entry
    with pytest.raises(CorruptImage) as caught:
        read_nvs(bytes(image))
    assert caught.value.lines == ("image: page 0 entry 1 (product_key): namespace index 7 is not defined",)


def test_corrupt_image_is_an_input_error() -> None:
    assert issubclass(CorruptImage, InputError)


def _hostile_image(path: Path) -> Path:
    """A secret-named key of a number type, and a key and a string holding terminal control sequences."""
    out = io.BytesIO()
    nvs = package.nvs_open(out, 0x2000, package.Page.VERSION2, is_encrypt=False, key=None)
    package.write_entry(nvs, "aliyun", "namespace", "", "")
    package.write_entry(nvs, "device_secret", "data", "u32", "1234")
    package.write_entry(nvs, "k\x1b[2J", "data", "string", "red\x1b[31m\rbell\x07\u202e")
    package.nvs_close(nvs)
    path.write_bytes(out.getvalue())
    return path


def test_number_secret_and_control_characters(in_tmp: Path, run_cli: RunCli) -> None:
    _hostile_image(in_tmp / "hostile.bin")
    result = run_cli("inspect", "hostile.bin")
    assert result.code == 0, result.err
    assert result.out.splitlines()[1:] == [
        "aliyun          device_secret   u32    ******** (u32, --show-secrets to reveal)",
        "aliyun          k\\x1b[2J        string red\\x1b[31m\\x0dbell\\x07\\u202e",
    ]
    assert "\x1b" not in result.out and "1234" not in result.out
    shown = run_cli("inspect", "hostile.bin", "--show-secrets")
    assert "aliyun          device_secret   u32    1234" in shown.out.splitlines()


def test_inspect_json(generated: Path, run_cli: RunCli) -> None:
    result = run_cli("inspect", "xts/dev-0001/nvs.bin", "--keys", "xts/dev-0001/nvs_keys.bin", "--json")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["pages"] == 6 and document["scheme"] == "flash-encryption keys" and document["crc"] == "ok"
    assert document["entries"][2] == {
        "namespace": "aliyun",
        "key": "device_secret",
        "type": "string",
        "value": None,
        "masked": True,
    }
    assert document["entries"][0]["value"] == "a1TestPK001"
    assert SECRET not in result.out
    shown = json.loads(
        run_cli(
            "inspect", "xts/dev-0001/nvs.bin", "--keys", "xts/dev-0001/nvs_keys.bin", "--json", "--show-secrets"
        ).out
    )
    assert shown["entries"][2]["value"] == SECRET

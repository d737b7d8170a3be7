"""The device CSV: accepted shapes, and every bad-input case as one exact `file:row: column:` line,
reported by `check` and by `gen-nvs` (which then writes nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from provision_testlib import GOOD_ROWS, HEADER, RunCli, tree, write_csv

from provision.credentials import Device, check_devices, iter_devices, load_devices
from provision.errors import EXIT_BAD_INPUT, InputError

SECRET_A = "Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDAx"
SECRET_B = "Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDAy"


def test_sample_csv_is_valid(in_tmp: Path, run_cli: RunCli) -> None:
    path = write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    result = run_cli("check", "--csv", "devices.csv")
    assert result.code == 0
    assert result.out == "devices.csv: 3 devices OK (ProductKey a1TestPK001)\n"
    devices = load_devices(path)
    assert devices[0] == Device("a1TestPK001", "dev-0001", SECRET_A, None, "cn-shanghai", 2)
    assert SECRET_A not in repr(devices[0])


@pytest.mark.parametrize(
    "header",
    [
        "ProductKey,DeviceName,DeviceSecret",
        "product_key,device_name,device_secret",
        "Product Key, device name ,DEVICE-SECRET",
    ],
    ids=["camel", "snake", "spaced"],
)
def test_header_names_match_loosely(in_tmp: Path, header: str) -> None:
    path = write_csv(in_tmp, [header, "a1TestPK001,dev-0001," + SECRET_A])
    assert [d.device_name for d in load_devices(path)] == ["dev-0001"]


def test_esp_aliyun_mass_manufacturing_header(in_tmp: Path) -> None:
    path = write_csv(
        in_tmp,
        ["id,DeviceName,DeviceSecret,ProductKey,ProductSecret", f"1,dev-0001,{SECRET_A},a1TestPK001,{SECRET_B}"],
    )
    (device,) = load_devices(path)
    assert (device.product_key, device.device_name, device.device_secret) == ("a1TestPK001", "dev-0001", SECRET_A)
    assert device.product_secret == SECRET_B
    assert device.extra == (("id", "1"),)


def test_bom_crlf_quotes_and_trailing_blank_lines(in_tmp: Path) -> None:
    path = in_tmp / "devices.csv"
    path.write_bytes(
        b"\xef\xbb\xbfProductKey,DeviceName,DeviceSecret,Note\r\n"
        b'"a1TestPK001","dev-0001","' + SECRET_A.encode() + b'","line, with comma"\r\n'
        b"a1TestPK001,dev-0002," + SECRET_B.encode() + b",\r\n\r\n\r\n"
    )
    devices = load_devices(path)
    assert [(d.device_name, d.row) for d in devices] == [("dev-0001", 2), ("dev-0002", 3)]
    assert devices[0].extra == (("Note", "line, with comma"),)


def test_same_device_name_under_two_product_keys_is_allowed(in_tmp: Path) -> None:
    path = write_csv(in_tmp, [HEADER, f"a1TestPK001,dev-0001,{SECRET_A},", f"a1TestPK002,dev-0001,{SECRET_B},"])
    assert check_devices(path).product_keys == ("a1TestPK001", "a1TestPK002")


def test_iter_devices_streams_in_file_order(in_tmp: Path) -> None:
    path = write_csv(in_tmp, [HEADER, *GOOD_ROWS])
    assert [d.row for d in iter_devices(path)] == [2, 3, 4]


ROW = f"a1TestPK001,dev-0001,{SECRET_A},cn-shanghai"
# name -> (file lines, the exact lines expected on stderr)
BAD_INPUTS: dict[str, tuple[list[str], list[str]]] = {
    "device-name-too-short": (
        [HEADER, f"a1TestPK001,abc,{SECRET_A},"],
        ["devices.csv:2: DeviceName: 3 characters: must be 4-32 characters of A-Z a-z 0-9 - _ @ . :"],
    ),
    "device-name-too-long": (
        [HEADER, f"a1TestPK001,{'d' * 33},{SECRET_A},"],
        ["devices.csv:2: DeviceName: 33 characters: must be 4-32 characters of A-Z a-z 0-9 - _ @ . :"],
    ),
    "device-name-bad-character": (
        [HEADER, f"a1TestPK001,dev/0001,{SECRET_A},"],
        ["devices.csv:2: DeviceName: character 4 is not allowed: must be 4-32 characters of A-Z a-z 0-9 - _ @ . :"],
    ),
    "device-name-empty": (
        [HEADER, f"a1TestPK001,,{SECRET_A},"],
        ["devices.csv:2: DeviceName: empty"],
    ),
    "product-key-empty": (
        [HEADER, f",dev-0001,{SECRET_A},"],
        ["devices.csv:2: ProductKey: empty"],
    ),
    "product-key-space": (
        [HEADER, f"a1Test PK01,dev-0001,{SECRET_A},"],
        ["devices.csv:2: ProductKey: character 7 is not allowed: a ProductKey is letters and digits only"],
    ),
    "product-key-not-ascii": (
        [HEADER, f"a1TestPK00é,dev-0001,{SECRET_A},"],
        ["devices.csv:2: ProductKey: character 11 is not allowed: a ProductKey is letters and digits only"],
    ),
    "product-key-implausible-length": (
        [HEADER, f"a1T,dev-0001,{SECRET_A},"],
        ["devices.csv:2: ProductKey: 3 characters, expected 6-32"],
    ),
    "device-secret-empty": (
        [HEADER, "a1TestPK001,dev-0001,,"],
        ["devices.csv:2: DeviceSecret: empty"],
    ),
    "device-secret-space": (
        [HEADER, f"a1TestPK001,dev-0001,{SECRET_A[:10]} {SECRET_A[11:]},"],
        ["devices.csv:2: DeviceSecret: contains a space at character 11"],
    ),
    "device-secret-control-character": (
        [HEADER, f"a1TestPK001,dev-0001,{SECRET_A[:5]}\t{SECRET_A[6:]},"],
        ["devices.csv:2: DeviceSecret: character 6 is not printable ASCII"],
    ),
    "device-secret-implausible-length": (
        [HEADER, "a1TestPK001,dev-0001,short,"],
        ["devices.csv:2: DeviceSecret: 5 characters, expected 16-64"],
    ),
    "product-secret-bad": (
        ["ProductKey,DeviceName,DeviceSecret,ProductSecret", f"a1TestPK001,dev-0001,{SECRET_A},tiny"],
        ["devices.csv:2: ProductSecret: 4 characters, expected 16-64"],
    ),
    "region-bad": (
        [HEADER, f"a1TestPK001,dev-0001,{SECRET_A},Shanghai"],
        ["devices.csv:2: Region: not a region id such as cn-shanghai (lower-case letters, digits and -)"],
    ),
    # A secret shifted into the Region column must not be printed back.
    "region-holding-a-secret": (
        [HEADER, f"a1TestPK001,dev-0001,{SECRET_A},{SECRET_B}"],
        ["devices.csv:2: Region: not a region id such as cn-shanghai (lower-case letters, digits and -)"],
    ),
    # Topic and username delimiters: `a1ProbePK01/dev-bbbb` would reach another device's topics.
    **{
        f"product-key-{name}": (
            [HEADER, f"a1ProbePK01{char}dev-bbbb,dev-0001,{SECRET_A},"],
            ["devices.csv:2: ProductKey: character 12 is not allowed: a ProductKey is letters and digits only"],
        )
        for name, char in (("slash", "/"), ("plus", "+"), ("hash", "#"), ("ampersand", "&"), ("dot", "."))
    },
    "semicolon-separated": (
        ["ProductKey;DeviceName;DeviceSecret", f"a1TestPK001;dev-0001;{SECRET_A}"],
        [
            "devices.csv:1: (header): the columns are separated by semicolons, not commas (Excel saves CSV so in "
            'many locales): export as "CSV UTF-8 (Comma delimited)" or replace the separator with commas'
        ],
    ),
    "tab-separated": (
        ["ProductKey\tDeviceName\tDeviceSecret", f"a1TestPK001\tdev-0001\t{SECRET_A}"],
        [
            "devices.csv:1: (header): the columns are separated by tabs, not commas (Excel saves CSV so in "
            'many locales): export as "CSV UTF-8 (Comma delimited)" or replace the separator with commas'
        ],
    ),
    "device-name-twice-in-product": (
        [HEADER, ROW, f"a1TestPK001,dev-0001,{SECRET_B},"],
        ["devices.csv:3: DeviceName: same ProductKey and DeviceName as row 2"],
    ),
    "device-secret-twice": (
        [HEADER, ROW, f"a1TestPK001,dev-0002,{SECRET_A},"],
        ["devices.csv:3: DeviceSecret: same secret as row 2"],
    ),
    "column-missing": (
        ["ProductKey,DeviceName", "a1TestPK001,dev-0001"],
        ["devices.csv:1: DeviceSecret: column missing from the header"],
    ),
    "column-twice": (
        ["ProductKey,DeviceName,DeviceSecret,device_name", f"a1TestPK001,dev-0001,{SECRET_A},dev-0001"],
        ["devices.csv:1: DeviceName: column appears twice in the header ('device_name')"],
    ),
    "ragged-row": (
        [HEADER, ROW, "a1TestPK001,dev-0002"],
        ["devices.csv:3: (row): 2 fields, the header has 4"],
    ),
    "empty-file": (
        [],
        ["devices.csv:1: (header): no header row: the file is empty"],
    ),
    "header-only": (
        [HEADER],
        ["devices.csv:2: (row): no devices after the header"],
    ),
    "every-problem-at-once": (
        [HEADER, f"a1TestPK001,abc,{SECRET_A},", ROW, "a1TestPK001,dev-0001,,", f"a1TestPK001,dev-0004,{SECRET_A},"],
        [
            "devices.csv:2: DeviceName: 3 characters: must be 4-32 characters of A-Z a-z 0-9 - _ @ . :",
            "devices.csv:4: DeviceSecret: empty",
            "devices.csv:5: DeviceSecret: same secret as row 3",
        ],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_check(in_tmp: Path, run_cli: RunCli, case: str) -> None:
    lines, expected = BAD_INPUTS[case]
    write_csv(in_tmp, lines) if lines else (in_tmp / "devices.csv").write_bytes(b"")
    before = tree(in_tmp)
    result = run_cli("check", "--csv", "devices.csv")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == expected
    assert result.out == ""
    assert tree(in_tmp) == before
    with pytest.raises(InputError) as caught:
        load_devices("devices.csv")
    assert list(caught.value.lines) == expected


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gen_nvs_writes_nothing(in_tmp: Path, run_cli: RunCli, case: str) -> None:
    lines, expected = BAD_INPUTS[case]
    write_csv(in_tmp, lines) if lines else (in_tmp / "devices.csv").write_bytes(b"")
    before = tree(in_tmp)
    result = run_cli("gen-nvs", "--csv", "devices.csv", "--out", "out/nvs", "--encrypt")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == expected
    assert tree(in_tmp) == before


def test_not_utf8(in_tmp: Path, run_cli: RunCli) -> None:
    row = b"a1TestPK001,dev-\xff001," + SECRET_A.encode() + b",\n"
    (in_tmp / "devices.csv").write_bytes(HEADER.encode() + b"\n" + row)
    result = run_cli("check", "--csv", "devices.csv")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == ["devices.csv:2: (file): not UTF-8 text"]


def test_missing_file(in_tmp: Path, run_cli: RunCli) -> None:
    result = run_cli("check", "--csv", "nope.csv")
    assert result.code == EXIT_BAD_INPUT
    assert result.err.splitlines() == ["nope.csv: cannot read: No such file or directory"]


def test_row_numbers_are_lines_with_blank_lines_between(in_tmp: Path) -> None:
    write_csv(in_tmp, [HEADER, ROW, "", f"a1TestPK001,x,{SECRET_B},"])
    with pytest.raises(InputError) as caught:
        load_devices("devices.csv")
    assert caught.value.lines[0].startswith("devices.csv:4: DeviceName:")


def test_file_name_is_reported_as_given(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [HEADER, "a1TestPK001,dev-0001,,"], name="batch-7.csv")
    with pytest.raises(InputError) as caught:
        load_devices(str(path))
    assert caught.value.lines == (f"{path}:2: DeviceSecret: empty",)


def test_a_secret_pasted_into_the_device_name_column_is_not_echoed(in_tmp: Path) -> None:
    secret = "Zm9vYmFy/c2VjcmV0+MDAwMDAwMDAx"
    write_csv(in_tmp, [HEADER, f"a1TestPK001,{secret},{secret[::-1]},cn-shanghai"])
    with pytest.raises(InputError) as caught:
        load_devices("devices.csv")
    assert caught.value.lines == (
        "devices.csv:2: DeviceName: character 9 is not allowed: must be 4-32 characters of A-Z a-z 0-9 - _ @ . :",
    )

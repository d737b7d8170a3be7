"""gen-nvs validates while it writes (one pass over the CSV): the problems are still every one `check` finds,
in row order, across the duplicate index's batches, and nothing is written."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from provision_testlib import HEADER, RunCli, tree, write_csv

from provision.credentials import CheckedDevices, check_devices
from provision.errors import EXIT_BAD_INPUT, InputError


def rows(count: int) -> list[str]:
    return [f"a1TestPK001,dev-{n:05d},{secrets.token_hex(16)},cn-shanghai" for n in range(count)]


def test_problems_across_batches_are_every_one_in_row_order(in_tmp: Path, run_cli: RunCli) -> None:
    body = rows(3000)  # the duplicate index takes 256 rows a batch
    body[1999] = body[1999].replace("cn-shanghai", "Shanghai")  # line 2001: a field problem
    body[2500] = f"a1TestPK001,dev-92501,{body[9].split(',')[2]},cn-shanghai"  # line 2502: row 11's secret
    body[2700] = f"a1TestPK001,dev-00005,{secrets.token_hex(16)},"  # line 2702: row 7's name
    body[100] = f"a1TestPK001,dev-90101,{body[2999].split(',')[2]},"  # line 102: first use of a later secret
    write_csv(in_tmp, [HEADER, *body])
    expected = [
        "devices.csv:2001: Region: not a region id such as cn-shanghai (lower-case letters, digits and -)",
        "devices.csv:2502: DeviceSecret: same secret as row 11",
        "devices.csv:2702: DeviceName: same ProductKey and DeviceName as row 7",
        "devices.csv:3001: DeviceSecret: same secret as row 102",
    ]
    with pytest.raises(InputError) as caught:
        check_devices("devices.csv")
    assert list(caught.value.lines) == expected
    before = tree(in_tmp)
    for flag, target in (("--out", "o"), ("--archive", "o.tar")):
        result = run_cli("gen-nvs", "--csv", "devices.csv", flag, target, "--encrypt")
        assert result.code == EXIT_BAD_INPUT
        assert result.err.splitlines() == expected
        assert tree(in_tmp) == before


def test_a_row_can_repeat_both_name_and_secret(in_tmp: Path) -> None:
    body = rows(2)
    body.append(body[0].replace("cn-shanghai", ""))
    write_csv(in_tmp, [HEADER, *body])
    with pytest.raises(InputError) as caught:
        check_devices("devices.csv")
    assert caught.value.lines == (
        "devices.csv:4: DeviceName: same ProductKey and DeviceName as row 2",
        "devices.csv:4: DeviceSecret: same secret as row 2",
    )


def test_checked_devices_streams_and_summarises(in_tmp: Path) -> None:
    write_csv(in_tmp, [HEADER, *rows(5)])
    checked = CheckedDevices("devices.csv")
    with pytest.raises(RuntimeError):
        checked.summary()
    assert [d.row for d in checked] == [2, 3, 4, 5, 6]
    assert checked.summary() == check_devices("devices.csv")


def test_checked_devices_stops_yielding_at_the_first_problem(in_tmp: Path) -> None:
    body = rows(5)
    body[2] = "a1TestPK001,x,y,"
    write_csv(in_tmp, [HEADER, *body])
    seen = []
    with pytest.raises(InputError) as caught:
        for device in CheckedDevices("devices.csv"):
            seen.append(device.row)
    assert seen == [2, 3]
    assert caught.value.lines[0].startswith("devices.csv:4: DeviceName:")


def test_reused_device_names_are_found_only_when_asked(in_tmp: Path) -> None:
    body = rows(3)
    body.append(f"a1TestPK002,dev-00001,{secrets.token_hex(16)},")
    write_csv(in_tmp, [HEADER, *body])
    plain = CheckedDevices("devices.csv")
    assert len(list(plain)) == 4 and plain.first_reused_device_name_row is None
    asked = CheckedDevices("devices.csv", find_reused_device_names=True)
    assert len(list(asked)) == 4 and asked.first_reused_device_name_row == 5

"""`aliyun_sign` (C, firmware/host) against `provision sign` (Python) on 1,000 seeded random inputs.

Valid inputs must give byte-identical output (plain and --json); inputs in the refusal classes both
implementations share (empty field, DeviceName length, client id length, `|` or a control character in
it, bad timestamp, method or secure mode, a space in a secret) must be refused by both, with nothing on stdout.
"""

from __future__ import annotations

import random
import string
import subprocess
from pathlib import Path

import pytest

from provision.cli import main as provision_main

SEED = 20261121
CASES = 1000
NAME_CHARS = string.ascii_letters + string.digits + "-_@.:"
PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
# ProductKeys are letters and digits in both signers' shared contract (issue 9: `/ + # &` break topics).
PRODUCT_KEY_CHARS = string.ascii_letters + string.digits
REGIONS = ["cn-shanghai", "cn-beijing", "ap-southeast-1", "us-west-1", "eu-central-1", "cn-hangzhou-fin"]


def _text(rng: random.Random, alphabet: str, low: int, high: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def _valid_args(rng: random.Random) -> dict[str, str | None]:
    label = rng.choice(string.ascii_lowercase) + _text(rng, string.ascii_lowercase + string.digits + "-", 0, 12)
    label += rng.choice(string.digits)
    timestamp = rng.choice(
        ["none", str(rng.randint(0, 2**41)), "0" + str(rng.randint(0, 999)), " 2524608000000 ", "NONE", "2524608000000"]
    )
    product_key = _text(rng, PRODUCT_KEY_CHARS, 1, 20)
    device_name = _text(rng, NAME_CHARS, 4, 32)
    return {
        "--product-key": product_key,
        "--device-name": device_name,
        "--device-secret": _text(rng, PRINTABLE, 1, 100),
        # What the platform and Alibaba's SDKs put in a client id (`pk.dn`, `pk&dn`, `, =`): both signers accept it.
        "--client-id": rng.choice(
            [None, _text(rng, NAME_CHARS + "&,= ", 1, 64), "A4:CF:12:34:56:78",
             f"{product_key}.{device_name}"[:64], f"{product_key}&{device_name}"[:64]]
        ),
        "--timestamp": timestamp,
        "--sign-method": rng.choice(["hmacmd5", "hmacsha1", "hmacsha256"]),
        "--secure-mode": rng.choice(["2", "3"]),
        "--region": rng.choice(REGIONS),
        "--endpoint": rng.choice([None, None, f"{label}.mqtt.iothub.aliyuncs.com"]),
    }


def _refused_args(rng: random.Random) -> dict[str, str | None]:
    args = _valid_args(rng)
    flag, value = rng.choice(
        [
            ("--product-key", ""),
            ("--device-name", ""),
            ("--device-name", _text(rng, NAME_CHARS, 1, 3)),
            ("--device-name", _text(rng, NAME_CHARS, 33, 40)),
            ("--device-secret", "sec ret"),
            ("--client-id", _text(rng, NAME_CHARS, 65, 80)),
            ("--client-id", "abc|securemode=3"),
            ("--client-id", "a\tb"),
            ("--client-id", "a\x01b"),
            ("--timestamp", "12a"),
            ("--timestamp", "-5"),
            ("--sign-method", "hmacsha512"),
            ("--secure-mode", "1"),
        ]
    )
    args[flag] = value
    return args


def _argv(args: dict[str, str | None], as_json: bool) -> list[str]:
    argv = [f"{flag}={value}" for flag, value in args.items() if value is not None]
    return [*argv, "--json"] if as_json else argv


def _python(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = provision_main(["sign", *argv])
    return code, capsys.readouterr().out


def _c(binary: Path, argv: list[str]) -> tuple[int, str]:
    done = subprocess.run([str(binary), *argv], capture_output=True, text=True, check=False, env={})
    return done.returncode, done.stdout


def test_c_and_python_agree_on_random_inputs(aliyun_sign: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(SEED)
    compared = refused = 0
    for case in range(CASES):
        refuse = rng.random() < 0.15
        args = _refused_args(rng) if refuse else _valid_args(rng)
        argv = _argv(args, as_json=rng.random() < 0.7)
        py_code, py_out = _python(argv, capsys)
        c_code, c_out = _c(aliyun_sign, argv)
        where = f"case {case}: {[a for a in argv if not a.startswith('--device-secret')]}"
        if refuse:
            assert py_code != 0, where
            assert c_code != 0, where
            assert py_out == c_out == "", where
            refused += 1
        else:
            assert (py_code, c_code) == (0, 0), where
            assert c_out == py_out, where
            secret = str(args["--device-secret"])
            assert len(secret) < 8 or secret not in c_out.replace(str(args["--product-key"]), ""), where
            compared += 1
    assert compared > 800 and refused > 100


def test_published_vector(aliyun_sign: Path) -> None:
    code, out = _c(
        aliyun_sign,
        ["--product-key", "pk", "--device-name", "device", "--device-secret", "secret", "--client-id", "12345",
         "--timestamp", "789", "--json"],
    )
    assert code == 0
    assert '"password": "FAFD82A3D602B37FB0FA8B7892F24A477F851A14"' in out


def test_secret_from_environment(aliyun_sign: Path) -> None:
    done = subprocess.run(
        [str(aliyun_sign), "--product-key", "pk", "--device-name", "device", "--client-id", "12345",
         "--timestamp", "789"],
        capture_output=True, text=True, check=False, env={"PROVISION_DEVICE_SECRET": "secret"},
    )
    assert done.returncode == 0
    assert "password: FAFD82A3D602B37FB0FA8B7892F24A477F851A14\n" in done.stdout

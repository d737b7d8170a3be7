"""provision.nvs_writer against esp-idf-nvs-partition-gen: byte-identical images on random devices, plain,
flash-encryption (XTS) and HMAC schemes, with the same keys."""

from __future__ import annotations

import io
import random
import string

import pytest
from esp_idf_nvs_partition_gen import nvs_partition_gen as package

from provision import gen_nvs, nvs_format
from provision.credentials import Device
from provision.nvs_writer import encode_strings

NAME_CHARS = string.ascii_letters + string.digits + "-_@.:"
SECRET_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))
CASES = 60


def package_image(namespace: str, pairs: list[tuple[str, str]], size: int, xts_key: bytes | None) -> bytes:
    out = io.BytesIO()
    nvs = package.nvs_open(
        out, size - nvs_format.PAGE_SIZE, package.Page.VERSION2, is_encrypt=xts_key is not None, key=xts_key
    )
    package.write_entry(nvs, namespace, "namespace", "", "")
    for key, value in pairs:
        package.write_entry(nvs, key, "data", "string", value)
    package.nvs_close(nvs)
    return out.getvalue()


def random_device(rng: random.Random) -> Device:
    def text(alphabet: str, low: int, high: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    return Device(
        product_key=text(string.ascii_letters + string.digits, 6, 32),
        device_name=text(NAME_CHARS, 4, 32),
        device_secret=text(SECRET_CHARS, 16, 64),
        product_secret=rng.choice([None, text(SECRET_CHARS, 16, 64)]),
        region=rng.choice([None, "cn-shanghai", "ap-southeast-1", "cn-hangzhou-fin"]),
        row=2,
    )


@pytest.mark.parametrize("scheme", ["plain", "xts", "hmac"])
def test_images_are_the_packages_bytes(scheme: str) -> None:
    rng = random.Random(f"nvs-writer-{scheme}")
    for _ in range(CASES):
        device = random_device(rng)
        layout = rng.choice(gen_nvs.LAYOUTS)
        size = rng.choice([0x3000, 0x6000, 0x10000])
        namespace, pairs = gen_nvs.layout_entries(device, layout)
        key = None
        if scheme == "xts":
            key = rng.randbytes(nvs_format.XTS_KEY_SIZE)
        elif scheme == "hmac":
            key = nvs_format.hmac_xts_key(rng.randbytes(nvs_format.HMAC_KEY_SIZE))
        assert encode_strings(namespace, pairs, size, key) == package_image(namespace, pairs, size, key)


def test_gf_doubling_carry_is_exercised() -> None:
    """Half of all first tweaks have the top bit set; make sure a run of entries includes such a one."""
    rng = random.Random(7)
    pairs = [(f"k{i}", "v" * rng.randint(0, 90)) for i in range(12)]
    for _ in range(8):
        key = rng.randbytes(nvs_format.XTS_KEY_SIZE)
        assert encode_strings("ns", pairs, 0x3000, key) == package_image("ns", pairs, 0x3000, key)


def test_what_does_not_fit_one_page_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit on one page"):
        encode_strings("ns", [(f"k{i}", "v" * 100) for i in range(40)], 0x6000, None)

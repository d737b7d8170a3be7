"""Opt-in, one-way eFuse steps: burn the NVS HMAC key, burn a flash-encryption key.

Both are permanent, so each runs only when asked for by its own flag *and* confirmed, and each refuses
a chip whose eFuses show the step was already done (a second key would waste a block, and a chip
with flash encryption on needs a different flow). The burning itself is espefuse's (`burn_key`), run
in-process over the station's connection.

Facts: key purposes HMAC_UP = 8 and XTS_AES_128_KEY = 4 (espefuse efuse/esp32c3/fields.py, ESP32-C3 TRM
"eFuse Controller"); flash encryption is on when FLASH_CRYPT_CNT / SPI_BOOT_CRYPT_CNT has an odd number
of bits set (esptool get_flash_encryption_enabled). ESP32 (classic) has no HMAC peripheral and no key
purposes: the NVS there uses the flash-encryption scheme (nvs_keys partition) instead.
With a host-burned XTS key, ESP-IDF's bootloader (built with CONFIG_SECURE_FLASH_ENC_ENABLED) encrypts
the flash on first boot (ESP-IDF "Flash Encryption", "Using Host Generated Key"); this tool does not keep
the key.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from typing import Any

from provision.errors import ProvisionError

__all__ = ["HMAC_UP", "XTS_AES_128_KEY", "EfusePlan", "EfuseRefused", "apply_efuse_plan", "check_efuse_plan"]

HMAC_UP = 8
XTS_AES_128_KEY = 4
KEY_BLOCKS = 6


class EfuseRefused(ProvisionError):
    """An eFuse step was asked for but must not run on this board."""


@dataclass(frozen=True)
class EfusePlan:
    burn_hmac_key: bool = False
    enable_flash_encryption: bool = False
    confirmed: bool = False

    @property
    def wanted(self) -> bool:
        return self.burn_hmac_key or self.enable_flash_encryption


def _key_purposes(esp: Any) -> list[int] | None:
    if not hasattr(esp, "get_key_block_purpose") or esp.CHIP_NAME in ("ESP32", "ESP8266"):
        return None
    return [esp.get_key_block_purpose(block) for block in range(KEY_BLOCKS)]


def check_efuse_plan(esp: Any, plan: EfusePlan) -> None:
    """Refuse before anything is written when a requested step is unconfirmed, impossible or done.

    Raises:
        EfuseRefused: with the reason, naming what to do instead.
    """
    if not plan.wanted:
        return
    if not plan.confirmed:
        raise EfuseRefused("eFuse burning is permanent: add --confirm-efuse-burn to allow it")
    purposes = _key_purposes(esp)
    if plan.burn_hmac_key:
        if purposes is None:
            raise EfuseRefused(
                f"{esp.CHIP_NAME} has no HMAC key purpose: use --nvs-encryption xts (nvs_keys partition)"
            )
        if HMAC_UP in purposes:
            raise EfuseRefused(
                f"eFuse key block {purposes.index(HMAC_UP)} already holds an HMAC_UP key: not burning another"
            )
        if 0 not in purposes:
            raise EfuseRefused("no free eFuse key block left for the HMAC key")
    if plan.enable_flash_encryption:
        if esp.get_flash_encryption_enabled():
            raise EfuseRefused("flash encryption is already enabled on this chip (odd CRYPT_CNT): refusing to redo it")
        if purposes is not None and XTS_AES_128_KEY in purposes:
            raise EfuseRefused("an XTS-AES flash-encryption key is already burned: refusing to burn another")
        if purposes is None:
            raise EfuseRefused(
                f"{esp.CHIP_NAME}: let the ESP-IDF bootloader enable flash encryption on first boot; "
                "host-side key burning is supported on chips with eFuse key purposes (S2/S3/C3/C6/H2)"
            )


def _free_key_block(commands: Any) -> int:
    for block in range(KEY_BLOCKS):
        unused = commands.efuses[f"KEY_PURPOSE_{block}"].get() == "USER"
        if unused and commands.efuses[f"BLOCK_KEY{block}"].get_bitstring().uint == 0:
            return block
    raise EfuseRefused("no free eFuse key block left")


def _burn(commands: Any, purpose_name: str, key: bytes) -> int:
    block = _free_key_block(commands)
    commands.burn_key([f"BLOCK_KEY{block}"], [io.BytesIO(key)], [purpose_name])
    return block


def apply_efuse_plan(esp: Any, plan: EfusePlan, hmac_key: bytes | None, *, commands: Any = None) -> list[int]:
    """Burn what `plan` asks for (after check_efuse_plan accepted it). Keys never leave this call.

    Args:
        commands: espefuse's command object for the chip (default: opened over `esp`'s connection).

    Returns:
        the key blocks burned.
    """
    if not plan.wanted:
        return []
    if plan.burn_hmac_key and hmac_key is None:
        raise EfuseRefused("--burn-hmac-key needs --nvs-encryption hmac (the key the NVS is encrypted with)")
    if commands is None:
        from espefuse.efuse_interface import init_commands

        commands = init_commands(esp=esp, do_not_confirm=True)
    burned = []
    if plan.burn_hmac_key and hmac_key is not None:
        burned.append(_burn(commands, "HMAC_UP", hmac_key))
    if plan.enable_flash_encryption:
        burned.append(_burn(commands, "XTS_AES_128_KEY", secrets.token_bytes(32)))
    return burned

"""OTA end to end on the host device through the local platform (issue 12's cases). Log lines are the
core's (components/aliyun_link/include/alink_ota.h and aliyun_link.h) and the host shell's (host_ota.h)."""

from __future__ import annotations

import hashlib
import itertools
import os

from ota_rig import OtaRig, upgrade_message, with_version

ONLINE_S = 15


def _first_boot(rig: OtaRig, *extra: str):
    console = rig.console()
    device = rig.start_device(*extra)
    device.expect(r"host: firmware version 1\.0\.0")
    device.expect(r"aliyun: online", ONLINE_S)
    assert console.wait("inform", lambda p: p["version"] == "1.0.0")["module"] == "default"
    return console, device


def _steps(console, until: str, timeout_s: float = 30.0) -> list[str]:
    steps: list[str] = []
    console.wait("progress", lambda p: steps.append(p["step"]) or p["step"] == until, timeout_s)
    return steps


def test_update_reports_progress_restarts_and_informs_the_new_version(rig: OtaRig):
    console, device = _first_boot(rig)
    new = with_version(rig.image, "2.0.0")
    rig.server.hooks.bytes_per_s = 400_000  # ~2 s: progress posts are at most one a second
    console.push(upgrade_message(new, rig.serve("/fw-2.0.0.bin", new), "2.0.0"))
    device.expect(r"aliyun: ota begin version=2\.0\.0 size=\d+")
    steps = _steps(console, "100")
    middle = [int(s) for s in steps[:-1]]
    assert middle and all(1 <= s < 100 for s in middle) and middle == sorted(middle), steps
    assert all(b - a >= 5 for a, b in itertools.pairwise(middle)), steps
    device.expect(r"host: ota: restarting into slot1")
    device.expect(r"host: ota: running slot1 \(trying\)")
    device.expect(r"host: firmware version 2\.0\.0")
    device.expect(r"aliyun: online", ONLINE_S)
    device.expect(r"host: ota: slot1 confirmed")
    assert console.wait("inform", lambda p: p["version"] == "2.0.0")
    assert (rig.ota_dir / "slot1").read_bytes() == new
    assert (rig.ota_dir / "boot").read_text() == "slot=1 state=valid\n"

    # the confirmed image stays: a reset boots it again
    device.stop()
    again = rig.start_device()
    again.expect(r"host: firmware version 2\.0\.0")
    again.expect(r"aliyun: online", ONLINE_S)


def test_a_wrong_sign_is_step_minus_3_and_the_old_version_stays(rig: OtaRig):
    console, device = _first_boot(rig)
    new = with_version(rig.image, "2.0.0")
    wrong = hashlib.sha256(b"another image").hexdigest()
    console.push(upgrade_message(new, rig.serve("/fw.bin", new), "2.0.0", sign=wrong))
    step = console.wait("progress", lambda p: p["step"].startswith("-"), 30)
    assert step["step"] == "-3"
    device.expect(r"aliyun: ota failed: step -3: sign mismatch", 30)
    assert (rig.ota_dir / "boot").read_text() == "slot=0 state=valid\n"
    device.stop()
    again = rig.start_device()
    again.expect(r"host: firmware version 1\.0\.0")


def test_an_md5_signed_image_updates_too(rig: OtaRig):
    console, device = _first_boot(rig)
    new = with_version(rig.image, "2.1.0")
    console.push(upgrade_message(new, rig.serve("/fw.bin", new), "2.1.0", sign_method="Md5"))
    device.expect(r"host: firmware version 2\.1\.0", 30)
    assert console.wait("inform", lambda p: p["version"] == "2.1.0", 30)


def test_a_connection_dropped_mid_download_is_resumed_with_a_range(rig: OtaRig):
    console, device = _first_boot(rig)
    new = with_version(rig.image, "2.0.0")
    rig.server.hooks.drop_after_bytes = len(new) // 3
    console.push(upgrade_message(new, rig.serve("/fw.bin", new), "2.0.0"))
    resumed_at = int(device.expect(r"host: ota: connection lost at (\d+) bytes: resuming \(attempt 2 of 5\)", 30)[1])
    assert 0 < resumed_at <= len(new) // 3
    device.expect(r"host: firmware version 2\.0\.0", 30)
    assert console.wait("inform", lambda p: p["version"] == "2.0.0", 30)
    assert any(r.endswith(f"bytes={resumed_at}-") for r in rig.server.hooks.requests), rig.server.hooks.requests


def test_a_download_that_keeps_failing_is_minus_2_and_a_later_push_works(rig: OtaRig):
    console, device = _first_boot(rig)
    new = with_version(rig.image, "2.0.0")
    console.push(upgrade_message(new, rig.server.url("/missing.bin"), "2.0.0"))  # 404 on every attempt
    assert console.wait("progress", lambda p: p["step"].startswith("-"), 30)["step"] == "-2"
    device.expect(r"aliyun: ota failed: step -2: download failed")
    assert len(rig.server.hooks.requests) == 5  # bounded: HOST_OTA_FETCH_ATTEMPTS
    console.push(upgrade_message(new, rig.serve("/fw.bin", new), "2.0.0"))
    device.expect(r"host: firmware version 2\.0\.0", 30)


def test_an_image_larger_than_the_slot_is_refused_before_download(rig: OtaRig):
    console, device = _first_boot(rig, "--ota-slot-bytes", str(len(rig.image) + 100))
    big = with_version(rig.image, "2.0.0") + b"\0" * 101
    console.push(upgrade_message(big, rig.serve("/big.bin", big), "2.0.0"))
    refused = console.wait("progress", lambda p: True)
    assert refused == {"step": "-1", "desc": "image larger than the slot", "module": "default"}
    device.expect(r"aliyun: ota refused: image larger than the slot")
    assert rig.server.hooks.requests == []


def test_an_http_url_is_refused(rig: OtaRig):
    console, device = _first_boot(rig)
    new = with_version(rig.image, "2.0.0")
    console.push(upgrade_message(new, f"http://127.0.0.1:{rig.server.port}/fw.bin", "2.0.0"))
    assert console.wait("progress", lambda p: True)["desc"] == "url is not https"
    device.expect(r"aliyun: ota refused: url is not https")
    assert rig.server.hooks.requests == []


def test_a_push_while_one_runs_is_refused(rig: OtaRig):
    console, device = _first_boot(rig)
    new = with_version(rig.image, "2.0.0")
    rig.server.hooks.bytes_per_s = 300_000
    console.push(upgrade_message(new, rig.serve("/fw.bin", new), "2.0.0"))
    device.expect(r"aliyun: ota begin version=2\.0\.0")
    other = with_version(rig.image, "3.0.0")
    console.push(upgrade_message(other, rig.serve("/fw3.bin", other), "3.0.0"))
    device.expect(r"aliyun: ota refused: an update is running")
    device.expect(r"host: firmware version 2\.0\.0", 30)  # the first one goes on
    assert not any("/fw3.bin" in r for r in rig.server.hooks.requests)


def test_a_device_killed_mid_download_boots_the_old_version(rig: OtaRig):
    console, device = _first_boot(rig)
    new = with_version(rig.image, "2.0.0")
    rig.server.hooks.bytes_per_s = 200_000
    console.push(upgrade_message(new, rig.serve("/fw.bin", new), "2.0.0"))
    device.expect(r"aliyun: ota progress \d+%", 30)
    device.stop(kill=True)
    assert 0 < (rig.ota_dir / "slot1").stat().st_size < len(new)
    again = rig.start_device()
    again.expect(r"host: ota: running slot0 \(valid\)")
    again.expect(r"host: firmware version 1\.0\.0")
    again.expect(r"aliyun: online", ONLINE_S)
    assert console.wait("inform", lambda p: p["version"] == "1.0.0")


def test_an_image_that_never_comes_online_is_rolled_back(rig: OtaRig):
    console, device = _first_boot(rig, "--ota-confirm-s", "3")
    new = with_version(rig.image, "2.0.0")
    console.push(upgrade_message(new, rig.serve("/fw.bin", new), "2.0.0"))
    device.expect(r"aliyun: ota begin version=2\.0\.0", 30)
    # The new image must not reach the platform. Stopped once the download has begun (it comes from the file
    # server, not the broker, and goes on offline), not after the restart: the new image can be online first.
    rig.broker.stop()
    device.expect(r"host: ota: restarting into slot1", 30)
    device.expect(r"host: firmware version 2\.0\.0")
    device.expect(r"host: ota: not online within 3 s: restarting", 15)
    device.expect(r"host: ota: slot1 never came online: rolling back to slot0")
    device.expect(r"host: firmware version 1\.0\.0")
    assert (rig.ota_dir / "boot").read_text() == "slot=0 state=valid\n"
    rig.broker.start()
    console = rig.console()
    device.expect(r"aliyun: online", ONLINE_S)
    assert console.wait("inform", lambda p: p["version"] == "1.0.0")


def test_an_image_that_cannot_even_start_is_rolled_back_at_the_next_start(rig: OtaRig):
    console, device = _first_boot(rig)
    broken = b"#!/bin/sh\necho 'broken image: never online'\nexit 1\n"
    console.push(upgrade_message(broken, rig.serve("/broken.bin", broken), "9.9.9"))
    device.expect(r"broken image: never online", 30)
    device.process.wait(timeout=10)  # it ended, as a board would reset on a crash or by its watchdog
    assert (rig.ota_dir / "boot").read_text() == "slot=1 state=trying\n"
    again = rig.start_device()
    again.expect(r"host: ota: slot1 never came online: rolling back to slot0")
    again.expect(r"host: firmware version 1\.0\.0")
    again.expect(r"aliyun: online", ONLINE_S)
    assert console.wait("inform", lambda p: p["version"] == "1.0.0")
    assert os.access(rig.ota_dir / "slot0", os.X_OK)

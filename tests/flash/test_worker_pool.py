"""Issue 13: board processes forked from one preloaded server, and what the speed-ups must not change."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
import socket
import zlib
from pathlib import Path

from esptool.loader import ESPLoader
from flash_testlib import board_specs, write_devices

from provision.emulator import EmulatedRack
from provision.ledger import open_ledger
from provision.rom_serial import SlipDecoder, slip_encode, xor_checksum
from provision.station import LineOptions, Slot, run_line
from provision.station.board_link import DeflatedImages, ImageDeflater, _PrecompressedZlib, close_port
from provision.station.build import load_build
from provision.station.worker import Region, _regions_to_verify


def _options(tmp_path: Path, build_dir: Path, csv_path: Path, name: str) -> LineOptions:
    return LineOptions(
        csv_path=csv_path,
        build=load_build(build_dir),
        ledger_url=str(tmp_path / "pool.ledger.sqlite"),
        create_missing_ledger=True,
        report_prefix=tmp_path / name,
        show_progress=False,
    )


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_sigkilled_board_process_fails_only_its_board_and_the_next_line_forks_from_the_same_server(
    tmp_path: Path, build_dir: Path
) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 6)
    # 115200 baud all along: the 48 KiB app takes seconds, time to find the board processes and kill one.
    specs = board_specs(tmp_path / "boards", 3, line_baud=115_200)
    parents: set[int] = set()
    killed: list[int] = []
    with EmulatedRack(specs) as rack:
        slots = [Slot(spec.name, url) for spec, url in zip(specs, rack.urls, strict=True)]
        arrivals = [slots]

        def watch(busy: set[str]) -> list[Slot]:
            if arrivals:
                return arrivals.pop(0)
            boards = {p.name: p for p in multiprocessing.active_children() if p.name.startswith("board ")}
            parents.update(_parent_of(p.pid) for p in boards.values() if p.pid is not None)
            if not killed and "board b2" in boards:
                pid = boards["board b2"].pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            if not busy:
                raise KeyboardInterrupt
            return []

        first = run_line(_options(tmp_path, build_dir, csv_path, "first"), [], watch=watch)
        second = run_line(_options(tmp_path, build_dir, csv_path, "second"), slots)

    results = {r.port: r for r in first.results}
    assert killed and results["b2"].result == "failed"
    assert results["b2"].reason == "board process died (exit -9)"
    assert results["b1"].result == results["b3"].result == "verified"
    # Forked from one server that imported esptool (its command line carries the preload list), not the station.
    assert len(parents) == 1 and os.getpid() not in parents
    server = parents.pop()
    assert "esptool.cmds" in Path(f"/proc/{server}/cmdline").read_bytes().decode()
    # The server outlived the killed board: the next line runs on it and finishes b2, one triple per MAC.
    assert [r.result for r in second.results] == ["verified"] * 3
    rows = [r for r in _ledger_rows(tmp_path) if r.mac]
    assert sorted(r.mac for r in rows) == sorted(s.mac for s in specs)
    assert {r.state for r in rows} == {"verified"}


def _ledger_rows(tmp_path: Path) -> list:  # type: ignore[type-arg]
    ledger = open_ledger(str(tmp_path / "pool.ledger.sqlite"))
    try:
        return list(ledger.rows())
    finally:
        ledger.close()


def test_link_tally_counts_every_byte_by_baud_rate(tmp_path: Path, build_dir: Path) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 2)
    log = tmp_path / "link.jsonl"
    specs = board_specs(tmp_path / "boards", 1, link_log_path=str(log))
    with EmulatedRack(specs) as rack:
        summary = run_line(_options(tmp_path, build_dir, csv_path, "tally"), [Slot("b1", rack.urls[0])])
    assert summary.results[0].result == "verified"
    tally = json.loads(log.read_text().splitlines()[0])
    sent = {int(baud): count for baud, count in tally["to_board"].items()}
    assert set(sent) == {115_200, 460_800}  # the ROM's rate, then LineOptions' default after CHANGE_BAUDRATE
    app = next(i for i in load_build(build_dir).images if i.name.endswith("synthetic-app.bin"))
    assert sent[460_800] > len(zlib.compress(app.data, 9))  # the app crossed compressed, inside SLIP frames
    counts = [(int(b), c) for d in ("to_board", "to_host") for b, c in tally[d].items()]
    assert abs(tally["wire_s"] - sum(c * 10 / b for b, c in counts)) < 1e-5


def test_a_board_holding_its_own_image_is_not_read_back_and_gets_its_triple_again(
    tmp_path: Path, build_dir: Path
) -> None:
    csv_path = write_devices(tmp_path / "devices.csv", 3)
    log = tmp_path / "link.jsonl"
    specs = board_specs(tmp_path / "boards", 1, link_log_path=str(log))
    with EmulatedRack(specs) as rack:
        first = run_line(_options(tmp_path, build_dir, csv_path, "own1"), [Slot("b1", rack.urls[0])])
        again = run_line(_options(tmp_path, build_dir, csv_path, "own2"), [Slot("b1", rack.urls[0])])
    assert [r.result for r in (*first.results, *again.results)] == ["verified", "verified"]
    assert again.results[0].device_name == first.results[0].device_name
    assert again.results[0].bytes_written == 0
    nvs_size = load_build(build_dir).nvs.size
    rerun = json.loads(log.read_text().splitlines()[1])
    assert sum(rerun["to_host"].values()) < nvs_size // 4  # MD5 answers only: the 24 KiB partition not read


def test_only_regions_not_checked_by_the_write_are_verified_again() -> None:
    boot = Region("bootloader", 0x1000, b"b" * 0x2000)
    table = Region("table", 0x8000, b"t" * 0xC00)
    nvs = Region("nvs", 0x8C00, b"n" * 0x400)  # shares the sector at 0x8000 with the table
    app = Region("app", 0x10000, b"a" * 0x3000)
    regions = [boot, table, nvs, app]
    assert _regions_to_verify(regions, [], verified_by_write=True) == []
    assert _regions_to_verify(regions, [app], verified_by_write=True) == []
    assert _regions_to_verify(regions, [table], verified_by_write=True) == [nvs]
    assert _regions_to_verify(regions, [app, boot], verified_by_write=False) == [boot, app]


def test_slip_decoder_and_checksum_match_the_byte_by_byte_definitions() -> None:
    rng = random.Random(13)
    for _ in range(200):
        packets = [bytes(rng.choice(b"\xc0\xdb\xdc\xdd\x00\x7f") for _ in range(rng.randint(1, 40))) for _ in range(4)]
        stream = b"boot noise" + b"".join(slip_encode(p) for p in packets)
        decoder, got, at = SlipDecoder(), [], 0
        while at < len(stream):
            step = rng.randint(1, 17)
            got += decoder.feed(stream[at : at + step])
            at += step
        assert got == packets
    assert SlipDecoder().feed(b"\xc0a\xdbxb\xc0") == [b"axb"]  # a stray escape keeps the byte after it
    for size in (0, 1, 2, 3, 255, 4096, 16385):
        data = rng.randbytes(size)
        assert xor_checksum(data) == ESPLoader.checksum(data)


def test_board_process_takes_the_station_compression_or_compresses_by_itself(tmp_path: Path) -> None:
    image = b"\x00\x01" * 5000
    ready = multiprocessing.get_context("spawn").Event()
    ready.set()
    shared = DeflatedImages(str(tmp_path), ready)
    digests = frozenset({hashlib.md5(image, usedforsecurity=False).hexdigest()})
    stand_in = _PrecompressedZlib(shared, digests)
    assert stand_in.compress(image, 9) == zlib.compress(image, 9)  # station's file missing: made here
    (tmp_path / f"{next(iter(digests))}.zz").write_bytes(b"station copy")
    assert stand_in.compress(image, 9) == b"station copy"
    assert stand_in.compress(b"per-board nvs", 9) == zlib.compress(b"per-board nvs", 9)
    assert stand_in.decompressobj is zlib.decompressobj


def test_station_compresses_each_image_once_as_esptool_would_and_cleans_up(build_dir: Path) -> None:
    images = load_build(build_dir).images
    deflater = ImageDeflater(images, multiprocessing.get_context("spawn"))
    shared = deflater.shared
    try:
        for image in images:
            assert shared.find(image.data) == zlib.compress(image.data, 9)
        assert shared.find(b"not an image") is None
    finally:
        deflater.close()
    assert not Path(shared.directory).exists()


def test_socket_port_closes_at_once_and_the_board_sees_it() -> None:
    import serial

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = serial.serial_for_url(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=1)
        peer, _ = server.accept()
        with peer:
            close_port(port)
            assert not port.is_open
            peer.settimeout(2)
            assert peer.recv(1) == b""  # EOF: the emulated board's session ends

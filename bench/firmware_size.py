"""Code size (.text, and .text + .rodata) of the firmware's pure C components on an ESP32-C3-class target.

Builds firmware/components/aliyun_auth and aliyun_link (the files of each component's `set(srcs ...)`)
with Debian's riscv64-unknown-elf-gcc (`-march=rv32imc -mabi=ilp32 -Os`, picolibc headers, Debian's cJSON
header), links them with a small driver and link-only stand-ins for the HMAC provider and cJSON
(bench/firmware/size_stubs.c, not counted), and reads the linker map, so calls are measured after linker
relaxation as in a firmware image. Goal (issue 13): the whole aliyun_auth component at most 1,024 bytes of
.text. Installs the toolchain with apt-get when missing (as root). Usage: python bench/firmware_size.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = REPO / "firmware" / "components"
CC = "riscv64-unknown-elf-gcc"
APT_PACKAGES = ["gcc-riscv64-unknown-elf", "picolibc-riscv64-unknown-elf"]
CFLAGS = [
    "--specs=picolibc.specs",
    "-march=rv32imc",
    "-mabi=ilp32",
    "-Os",
    "-ffunction-sections",
    "-fdata-sections",
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
]
COMPONENT_NAMES = ("aliyun_auth", "aliyun_link")


def component_sources(name: str) -> list[str]:
    """The component's own file list, `set(srcs ...)` in its CMakeLists.txt (the list both builds use)."""
    cmake = (COMPONENTS / name / "CMakeLists.txt").read_text()
    match = re.search(r"^set\(srcs ([^)]*)\)", cmake, re.MULTILINE)
    if match is None:
        sys.exit(f"firmware_size: no set(srcs ...) in {name}/CMakeLists.txt")
    return match.group(1).split()


SOURCES = {name: component_sources(name) for name in COMPONENT_NAMES}
# The provider's RFC 2104 code, which left aliyun_auth with the hash table (issue 14): shown, not in the goal.
# (Its digest files call Mbed TLS or PSA Crypto and are a shell's choice.)
PROVIDER_SOURCES = {"aliyun_hash": ["aliyun_hash_hmac.c"]}
AUTH_TEXT_GOAL_BYTES = 1024
OTA_SOURCES = ("alink_ota.c", "alink_ota_json.c")  # issue 12: the OTA protocol, checks and update driver
CODE_SECTION = re.compile(r"^ (\.(?:text|rodata|srodata)\S*)(?:\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S+))?$")
CONTINUATION = re.compile(r"^\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S+)$")


def ensure_toolchain() -> None:
    """Install the RV32 compiler and picolibc when missing (bench-only packages)."""
    missing = shutil.which(CC) is None or not Path("/usr/lib/picolibc/riscv64-unknown-elf").is_dir()
    if not missing:
        return
    if shutil.which("apt-get") is None:
        sys.exit(f"firmware_size: {CC} missing: install {' '.join(APT_PACKAGES)}")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES], check=True)


def code_bytes_by_object(map_text: str) -> dict[str, tuple[int, int]]:
    """Sum the sizes of .text and of .rodata input sections per object file, as the linker placed them:
    object -> (text, rodata)."""
    sizes: dict[str, tuple[int, int]] = {}
    pending: str | None = None

    def add(section: str, obj: str, size: int) -> None:
        text, rodata = sizes.get(obj, (0, 0))
        sizes[obj] = (text + size, rodata) if section.startswith(".text") else (text, rodata + size)

    # The map first lists the input sections --gc-sections discarded, in the same format: only what follows
    # "Linker script and memory map" was placed.
    placed = map_text.split("\nLinker script and memory map", 1)
    if len(placed) != 2:
        sys.exit("firmware_size: the linker map has no 'Linker script and memory map' part")
    for line in placed[1].splitlines():
        match = CODE_SECTION.match(line)
        if match:
            if match.group(2):
                add(match.group(1), Path(match.group(4)).name, int(match.group(3), 16))
                pending = None
            else:
                pending = match.group(1)  # a long section name: the address and size follow on the next line
            continue
        if pending:
            cont = CONTINUATION.match(line)
            if cont:
                add(pending, Path(cont.group(3)).name, int(cont.group(2), 16))
        pending = None
    return sizes


def build(workdir: Path) -> dict[str, tuple[int, int]]:
    """Compile every component source and the driver, link, and return code bytes per object."""
    include = workdir / "include"
    include.mkdir()
    # Only the library header: the host's libc headers must not shadow picolibc's.
    (include / "cJSON.h").symlink_to("/usr/include/cjson/cJSON.h")
    includes = [f"-I{include}", f"-I{COMPONENTS / 'aliyun_hash'}"]
    includes += [f"-I{COMPONENTS / name / 'include'}" for name in SOURCES]
    objects: list[Path] = []
    for name, files in {**SOURCES, **PROVIDER_SOURCES}.items():
        for source in files:
            obj = workdir / f"{Path(source).stem}.o"
            subprocess.run([CC, *CFLAGS, *includes, "-c", str(COMPONENTS / name / source), "-o", str(obj)], check=True)
            objects.append(obj)
    driver = workdir / "size_stubs.o"
    stubs = REPO / "bench" / "firmware" / "size_stubs.c"
    subprocess.run([CC, *CFLAGS, *includes, "-c", str(stubs), "-o", str(driver)], check=True)
    thing_stubs = workdir / "size_thing_stubs.o"
    thing_stubs_source = REPO / "bench" / "firmware" / "size_thing_stubs.c"
    subprocess.run([CC, *CFLAGS, *includes, "-c", str(thing_stubs_source), "-o", str(thing_stubs)], check=True)
    objects.append(thing_stubs)
    map_path = workdir / "core.map"
    subprocess.run(
        [CC, *CFLAGS, *[str(o) for o in objects], str(driver), "-Wl,--gc-sections", f"-Wl,-Map={map_path}",
         "-o", str(workdir / "core.elf")],
        check=True,
    )
    return code_bytes_by_object(map_path.read_text())


def build_thing_engine(workdir: Path, with_example_model: bool) -> dict[str, int]:
    """The thing-model engine (alink_thing.c) linked alone with its driver, over a one-property table or
    the example product's rendered model (firmware/components/thing_model); code bytes per object."""
    include = workdir / "include"
    include.mkdir()
    (include / "cJSON.h").symlink_to("/usr/include/cjson/cJSON.h")
    link = COMPONENTS / "aliyun_link"
    model = COMPONENTS / "thing_model"
    includes = [f"-I{include}", f"-I{link / 'include'}", f"-I{model}"]
    # alink_json.c for the one input-shape check every parser shares; the engine's figure is alink_thing.o alone
    sources = [link / "alink_thing.c", link / "alink_json.c", link / "alink_status.c"]
    sources.append(REPO / "bench" / "firmware" / "size_thing.c")
    defines: list[str] = []
    if with_example_model:
        sources.append(model / "thing_model.c")
        defines.append("-DWITH_EXAMPLE_MODEL")
    objects = []
    for source in sources:
        obj = workdir / f"{source.stem}.o"
        subprocess.run([CC, *CFLAGS, *defines, *includes, "-c", str(source), "-o", str(obj)], check=True)
        objects.append(str(obj))
    map_path = workdir / "thing.map"
    subprocess.run(
        [CC, *CFLAGS, *objects, "-lm", "-Wl,--gc-sections", f"-Wl,-Map={map_path}", "-o", str(workdir / "thing.elf")],
        check=True,
    )
    return code_bytes_by_object(map_path.read_text())


def print_thing_engine(core_bytes: int) -> None:
    """The engine alone and with the example model (engine + descriptor tables), and its ratio to the
    connection core (aliyun_link) measured in the same run."""
    for with_model in (False, True):
        with tempfile.TemporaryDirectory(prefix="firmware-size-thing-") as tmp:
            sizes = build_thing_engine(Path(tmp), with_model)
        engine = sum(sizes.get("alink_thing.o", (0, 0)))
        tables = sum(sizes.get("thing_model.o", (0, 0)))
        label = "with the example model" if with_model else "one-property table"
        print(
            f"thing-model engine (alink_thing.c), {label}: {engine} bytes; model tables (thing_model.c): {tables};"
            f" engine + tables / aliyun_link core: {(engine + tables) / core_bytes:.2f}"
        )


def main() -> int:
    ensure_toolchain()
    with tempfile.TemporaryDirectory(prefix="firmware-size-") as tmp:
        sizes = build(Path(tmp))
    print(f"{'component':<12} {'file':<22} {'.text':>8} {'.text+.rodata':>14}")
    totals: dict[str, tuple[int, int]] = {}
    for name, files in SOURCES.items():
        for source in files:
            text, rodata = sizes.get(f"{Path(source).stem}.o", (0, 0))
            total_text, total_rodata = totals.get(name, (0, 0))
            totals[name] = (total_text + text, total_rodata + rodata)
            print(f"{name:<12} {source:<22} {text:>8} {text + rodata:>14}")
    for name, (text, rodata) in totals.items():
        print(f"{name:<12} {'(total)':<22} {text:>8} {text + rodata:>14}")
    for name, files in PROVIDER_SOURCES.items():
        for source in files:
            text, rodata = sizes.get(f"{Path(source).stem}.o", (0, 0))
            print(f"{name:<12} {source:<22} {text:>8} {text + rodata:>14}   (HMAC provider, not aliyun_auth)")
    auth_text = totals["aliyun_auth"][0]
    verdict = "met" if auth_text <= AUTH_TEXT_GOAL_BYTES else "MISSED"
    print(f"aliyun_auth (all its files): {auth_text} bytes of .text, goal <= {AUTH_TEXT_GOAL_BYTES}: {verdict}")
    ota_text = sum(sizes.get(f"{Path(source).stem}.o", (0, 0))[0] for source in OTA_SOURCES)
    print(f"OTA in aliyun_link ({' + '.join(OTA_SOURCES)}): {ota_text} bytes of .text of {totals['aliyun_link'][0]}")
    print_thing_engine(totals["aliyun_link"][0] + totals["aliyun_link"][1])
    print("target: rv32imc ilp32 -Os, Debian riscv64-unknown-elf-gcc + picolibc, after --gc-sections and relaxation")
    return 0 if auth_text <= AUTH_TEXT_GOAL_BYTES else 1


if __name__ == "__main__":
    raise SystemExit(main())

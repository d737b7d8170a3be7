"""Fixtures of the thing-model tests: the engine harness built over the rendered test TSL."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from provision.tsl import load_tsl, render_component, write_component

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LINK = ROOT / "firmware" / "components" / "aliyun_link"
EVERY_TYPE_TSL = HERE / "every_type.json"
STRICT_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]


def _cjson_flags() -> tuple[list[str], list[str]]:
    cflags = subprocess.run(["pkg-config", "--cflags", "libcjson"], capture_output=True, text=True, check=True)
    libs = subprocess.run(["pkg-config", "--libs", "libcjson"], capture_output=True, text=True, check=True)
    return cflags.stdout.split(), libs.stdout.split()


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness binary, compiled with -Wall -Wextra -Werror (and ASan/UBSan) over the rendered model."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is missing: scripts/apt-packages.txt installs it")
    work = tmp_path_factory.mktemp("thing_harness")
    component = work / "thing_model"
    write_component(component, render_component(load_tsl(EVERY_TYPE_TSL), EVERY_TYPE_TSL.name))
    cflags, libs = _cjson_flags()
    binary = work / "thing_harness"
    command = [
        "gcc",
        *STRICT_FLAGS,
        *SANITIZERS,
        *cflags,
        f"-I{component}",
        f"-I{LINK / 'include'}",
        f"-I{ROOT / 'firmware' / 'components' / 'aliyun_auth' / 'include'}",
        str(HERE / "thing_harness.c"),
        str(component / "thing_model.c"),
        str(LINK / "alink_thing.c"),
        str(LINK / "alink_json.c"),
        str(LINK / "alink_status.c"),
        "-o",
        str(binary),
        *libs,
        "-lm",
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return binary


@pytest.fixture()
def ask(harness: Path) -> Callable[[list[str]], list[str]]:
    """Sends request lines to a fresh harness process and returns its answer lines."""

    def run(requests: list[str]) -> list[str]:
        done = subprocess.run(
            [str(harness)], input="".join(r + "\n" for r in requests), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    return run

"""Shared helpers of the provisioning-core tests (imported by name: tests/python is on sys.path)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CSV = REPO / "examples" / "devices.csv"
ALIYUN_ROOT_PEM = REPO.parent / "shared" / "aliyun_iot_root_ca.pem"

HEADER = "ProductKey,DeviceName,DeviceSecret,Region"
GOOD_ROWS = [
    "a1TestPK001,dev-0001,Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDAx,cn-shanghai",
    "a1TestPK001,dev-0002,Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDAy,cn-shanghai",
    "a1TestPK001,dev-0003,Qm9vdHN0cmFwU2VjcmV0MDAwMDAwMDAz,cn-shanghai",
]


@dataclass
class Result:
    code: int
    out: str
    err: str


RunCli = Callable[..., Result]


def write_csv(directory: Path, lines: list[str], *, name: str = "devices.csv", newline: str = "\n") -> Path:
    path = directory / name
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return path


def tree(directory: Path) -> list[str]:
    """Every path under directory, hidden ones included, for "nothing was written" checks."""
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))

"""Private files written all-or-nothing: a temp file in the same directory, mode 0600, fsync, rename.

A reader never sees a half-written file, and an interrupted write leaves no temp file behind
(except after SIGKILL or power loss, where the `.tmp-` file stays and is never mistaken for output).
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "write_private_file"]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def write_private_file(
    path: str | os.PathLike[str], data: bytes, *, durable: bool = True, mode: int = PRIVATE_FILE_MODE
) -> None:
    """Write `data` to `path` atomically with mode 0600.

    Args:
        path: destination; its directory must exist.
        data: the whole content.
        durable: fsync before the rename; a caller that syncs a whole tree once passes False.
        mode: permission bits; 0600 unless the content is public (a generated header).
    """
    # Plain strings, not Path: pathlib interns every path part it parses, which would grow with each device.
    target = os.fspath(path)
    directory, name = os.path.split(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.tmp-", dir=directory or ".")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise

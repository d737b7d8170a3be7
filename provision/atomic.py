"""Private files written all-or-nothing: a temp file in the same directory, mode 0600, fsync, rename.

A reader never sees a half-written file, and an interrupted write leaves no temp file behind
(except after SIGKILL or power loss, where the `.tmp-` file stays and is never mistaken for output).
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "create_private_file", "write_private_file"]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def write_private_file(path: str | os.PathLike[str], data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write `data` to `path` atomically with mode 0600.

    Args:
        path: destination; its directory must exist.
        data: the whole content.
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
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def create_private_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Create a new file (it must not exist) with mode 0600 from the first byte, without fsync or rename.

    Only for a private staging directory that is published as a whole by one rename after one sync: the
    directory rename is what makes the output all-or-nothing, and a temp file + rename per file would double
    the metadata work (gen-nvs writes three files per device).
    """
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        view = memoryview(data)
        while view:  # a raw fd, not a buffered file object: one write call for a whole image
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)

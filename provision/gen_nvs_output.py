"""Where gen-nvs puts its output: OUT's lock, the leftovers of a killed run, the swap of a finished staging
directory into place, and OS errors named by the path the user gave (never a staging or temp name)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from provision.errors import EnvironmentProblem, InputError, OutputBusy
from provision.nvs_archive import is_gen_nvs_archive

__all__ = [
    "MANIFEST_FILE",
    "check_out_archive",
    "check_out_dir",
    "lock_path",
    "make_parents",
    "os_problem",
    "output_lock",
    "remove_leftovers",
    "remove_made",
    "swap_in",
    "sync_file_system",
]

MANIFEST_FILE: Final = "manifest.json"  # in OUT (or inside the archive): files, sizes, SHA-256


def make_parents(directory: Path) -> list[Path]:
    """Create `directory` and its missing parents; returns those created, outermost first."""
    missing = [path for path in (directory, *directory.parents) if not path.exists()]
    created = []
    for path in reversed(missing):
        path.mkdir(mode=0o777)
        created.append(path)
    directory.mkdir(parents=True, exist_ok=True)  # the OS's own error when it exists and is not a directory
    return created


def remove_made(created: list[Path]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()


def check_out_dir(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not force:
        raise InputError(f"{out}: already exists; pass --force to replace it")
    if not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
        raise InputError(f"{out}: not empty and holds no {MANIFEST_FILE}: not replacing what gen-nvs did not write")


def check_out_archive(out: Path, force: bool) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise InputError(f"{out}: already exists; pass --force to replace it")
    if out.is_symlink() or not out.is_file() or not is_gen_nvs_archive(out):
        raise InputError(f"{out}: exists and is not an archive gen-nvs wrote: not replacing it")


def remove_leftovers(out: Path) -> list[Path]:
    """Delete staging and swapped-out directories (or archive files) that a killed run (SIGKILL, power loss)
    left beside OUT.

    They hold per-device keys, so they must not outlive the run that made them; the next run over the same
    OUT is the first moment anyone can clean them up. Returns what was removed.
    """
    removed = []
    for pattern in (f".{out.name}.partial-*", f".{out.name}.old-*"):
        for leftover in out.parent.glob(pattern):
            if leftover.is_symlink():
                continue
            if leftover.is_dir():
                shutil.rmtree(leftover)
                removed.append(leftover)
            elif leftover.is_file():
                leftover.unlink()
                removed.append(leftover)
    return removed


def lock_path(out: Path) -> Path:
    """The lock file beside OUT; it holds the holder's pid (nothing secret) and is removed by its holder."""
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold OUT's lock for the whole run, or fail at once: two runs on one OUT would each remove the other's
    staging directory (the leftover clean-up) and both fail. flock dies with its process, so a killed run
    never leaves a stale lock; the holder unlinks the file before it lets go, so a run that opened the old
    file re-checks that what it locked is still the file at that path.

    Raises:
        OutputBusy: another process holds it.
    """
    path = lock_path(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputBusy(
                f"{out}: another gen-nvs (pid {holder}) is writing this output; nothing was changed: "
                "wait for it to finish, or choose another --out"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def os_problem(out: Path, exc: OSError) -> EnvironmentProblem:
    """One line naming a path the user gave (OUT or one of its parents, never the staging or temp name the OS
    saw), the cause and what to do."""
    named = out
    if exc.filename is not None:
        seen = Path(os.fsdecode(exc.filename))
        if seen == out or seen in out.parents:
            named = seen
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return EnvironmentProblem(
            f"{out}: no space left on the file system holding {out.parent}; "
            "nothing was written: free space there or choose another --out"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EnvironmentProblem(
            f"{named}: cannot write there ({exc.strerror}); nothing was written: "
            "choose a directory you may write, or fix its permissions"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and named != out:
        return EnvironmentProblem(f"{named}: is a file, not a directory; nothing was written: choose another --out")
    return EnvironmentProblem(f"{named}: cannot write ({exc.strerror or exc}); nothing was written: check the path")


def swap_in(staging: Path, out: Path) -> None:
    old: Path | None = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
        os.rename(out, old)
    os.rename(staging, out)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def sync_file_system(directory: Path) -> None:
    """Flush what is written on the file system holding `directory` (Linux syncfs(2)), or on all of them
    (sync(2)) where there is no syncfs: a sync of every disk would also wait for a station's unrelated ones,
    a slow USB stick among them.

    Raises:
        OSError: syncfs failed (an I/O error writing the output back).
    """
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), os.fspath(directory))
    finally:
        os.close(fd)

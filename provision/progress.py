"""A one-line progress counter for long runs, drawn only on a terminal (a pipe or a log gets nothing).

It prints counts and nothing else, so no secret can reach it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TextIO

__all__ = ["terminal_progress"]

REDRAW_S = 0.1


@contextlib.contextmanager
def terminal_progress(stream: TextIO, noun: str) -> Iterator[Callable[[int, int], None] | None]:
    """A `progress(done, total)` callback that redraws `\\r  1234/10000 devices (12%)` at most every 0.1 s, or
    None when `stream` is not a terminal. The line is cleared when the block ends, however it ends."""
    if not stream.isatty():
        yield None
        return
    last = 0.0
    drawn = False

    def progress(done: int, total: int) -> None:
        nonlocal last, drawn
        now = time.monotonic()
        if done != total and now - last < REDRAW_S:
            return
        last = now
        percent = 100 * done // total if total else 100
        stream.write(f"\r  {done}/{total} {noun} ({percent}%)")
        stream.flush()
        drawn = True

    try:
        yield progress
    finally:
        if drawn:
            stream.write("\r\x1b[K")
            stream.flush()

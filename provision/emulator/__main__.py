"""`python -m provision.emulator SPECS.json`: serve the boards, print their URLs as one JSON line."""

from __future__ import annotations

import ctypes
import json
import signal
import sys
import threading
from pathlib import Path

from provision.emulator.board import EmulatedBoard
from provision.emulator.rack import load_specs

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m provision.emulator SPECS.json", file=sys.stderr)
        return 2
    # The boards go when whoever started them goes (Linux: PR_SET_PDEATHSIG), even on SIGKILL.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    boards = [EmulatedBoard(spec) for spec in load_specs(Path(argv[0]))]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for board in boards:
        board.start()
    print(json.dumps({"urls": [board.url for board in boards]}), flush=True)
    stop.wait()
    for board in boards:
        board.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

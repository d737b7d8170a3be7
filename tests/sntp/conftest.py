"""A responder per test on a kernel-chosen loopback port, stopped afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from provision.cloud.sntp import SntpResponder


@pytest.fixture
def start_responder() -> Iterator[Callable[..., SntpResponder]]:
    started: list[SntpResponder] = []

    def _start(skew_s: float = 0.0) -> SntpResponder:
        responder = SntpResponder(host="127.0.0.1", port=0, skew_s=skew_s).start()
        started.append(responder)
        return responder

    yield _start
    for responder in started:
        responder.stop()

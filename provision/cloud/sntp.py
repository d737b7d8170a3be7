"""A small SNTPv4 server that serves the host clock (plus an optional skew) to devices under test.

QEMU's user-mode network has no route to the Internet, so a device in QEMU that waits for SNTP would wait
forever; the suite starts this responder on the host, where the guest reaches it as 10.0.2.2. The skew lets
tests hand a device a wrong clock on purpose.

Packet format and field rules: RFC 4330 (SNTPv4) section 4 and 5, timestamps per RFC 5905 section 6
(seconds since 1900-01-01 in 32.32 fixed point; 2208988800 s between 1900 and the Unix epoch).
"""

from __future__ import annotations

import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import EnvironmentProblem

__all__ = [
    "NTP_PACKET_LEN",
    "NTP_UNIX_EPOCH_OFFSET_S",
    "SntpResponder",
    "build_reply",
    "from_ntp_timestamp",
    "serve_until_signalled",
    "to_ntp_timestamp",
]

NTP_PACKET_LEN = 48
NTP_UNIX_EPOCH_OFFSET_S = 2_208_988_800  # RFC 5905 section 6: 1900-01-01 to 1970-01-01
MODE_CLIENT = 3
MODE_SERVER = 4
LEAP_NO_WARNING = 0
# Stratum 1 with the ntpd-style "LOCL" identifier: we are the reference for the device, serving a local clock.
SERVER_STRATUM = 1
REFERENCE_ID = b"LOCL"
# log2 seconds; 2**-20 s is about a microsecond, what time.time() offers on Linux.
PRECISION_LOG2 = -20
# root dispersion of about 1 ms in NTP short format (16.16): the host clock is our only source.
ROOT_DISPERSION_SHORT = 1 << 6

_HEADER = struct.Struct("!BBbbII4sQQQQ")


def to_ntp_timestamp(unix_s: float) -> int:
    """Unix seconds -> 64-bit NTP timestamp (era 0 wraps into era 1 in 2036 by taking the low 32 bits)."""
    whole = int(unix_s // 1)
    frac = unix_s - whole
    seconds = (whole + NTP_UNIX_EPOCH_OFFSET_S) & 0xFFFFFFFF
    fraction = min(int(frac * (1 << 32)), 0xFFFFFFFF)
    return (seconds << 32) | fraction


def from_ntp_timestamp(ntp: int) -> float:
    """64-bit NTP timestamp (era 0) -> Unix seconds."""
    return (ntp >> 32) - NTP_UNIX_EPOCH_OFFSET_S + (ntp & 0xFFFFFFFF) / (1 << 32)


def build_reply(request: bytes, receive_unix_s: float, transmit_unix_s: float) -> bytes | None:
    """The server's answer to one datagram, or None when it must be ignored.

    Ignored: anything shorter than the 48-byte header, a mode other than client (3), a version outside 1..4.
    Extension fields and a MAC after the header are tolerated and not echoed.

    Args:
        request: the datagram as received.
        receive_unix_s: when it arrived, already skewed.
        transmit_unix_s: when the reply leaves, already skewed.
    """
    if len(request) < NTP_PACKET_LEN:
        return None
    fields = _HEADER.unpack_from(request)
    li_vn_mode, poll, client_transmit = fields[0], fields[2], fields[10]
    version = (li_vn_mode >> 3) & 0x7
    mode = li_vn_mode & 0x7
    if mode != MODE_CLIENT or not 1 <= version <= 4:
        return None
    return _HEADER.pack(
        (LEAP_NO_WARNING << 6) | (version << 3) | MODE_SERVER,  # RFC 4330 section 5: VN copied from the request
        SERVER_STRATUM,
        poll,  # copied from the request (RFC 4330 section 5)
        PRECISION_LOG2,
        0,  # root delay: we are the root
        ROOT_DISPERSION_SHORT,
        REFERENCE_ID,
        to_ntp_timestamp(receive_unix_s),  # reference: the clock we read is always "just set"
        client_transmit,  # originate = the client's transmit timestamp, which the client matches
        to_ntp_timestamp(receive_unix_s),
        to_ntp_timestamp(transmit_unix_s),
    )


@dataclass(frozen=True)
class _Bound:
    host: str
    port: int


class SntpResponder:
    """Serve SNTP on one UDP address from a background thread; a context manager.

    Args:
        host: address to bind (loopback by default; QEMU's 10.0.2.2 lands on the host's 127.0.0.1).
        port: UDP port; 0 lets the kernel pick one (see `port` after `start()`).
        skew_s: seconds added to the host clock in every answer (negative puts the device behind).
        clock: the time source, Unix seconds; `time.time` unless a test injects one.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 123,
        skew_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._skew_s = skew_s
        self._clock = clock
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._bound: _Bound | None = None
        self.answered = 0
        self.ignored = 0

    @property
    def host(self) -> str:
        return self._require_bound().host

    @property
    def port(self) -> int:
        return self._require_bound().port

    @property
    def skew_s(self) -> float:
        return self._skew_s

    @skew_s.setter
    def skew_s(self, value: float) -> None:
        """Change the skew of later answers (a test suite sets it before each device boots)."""
        self._skew_s = value

    def start(self) -> SntpResponder:
        """Bind and start answering. Raises EnvironmentProblem when the address cannot be bound."""
        if self._sock is not None:
            raise RuntimeError("SntpResponder already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self._host, self._requested_port))
        except PermissionError as exc:
            sock.close()
            raise EnvironmentProblem(
                f"sntp: cannot bind UDP {self._host}:{self._requested_port}: {exc.strerror}",
                "ports below 1024 need root (or: sysctl net.ipv4.ip_unprivileged_port_start=123)",
            ) from exc
        except OSError as exc:
            sock.close()
            raise EnvironmentProblem(
                f"sntp: cannot bind UDP {self._host}:{self._requested_port}: {exc.strerror}",
                "is another NTP server (ntpd, chronyd) listening there? stop it or choose --port",
            ) from exc
        sock.settimeout(0.2)  # how often the thread looks at the stop flag
        self._sock = sock
        bound_host, bound_port = sock.getsockname()[:2]
        self._bound = _Bound(bound_host, bound_port)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"sntp-{bound_port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the socket; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def stop_soon(self) -> None:
        """Ask the serving thread to end; usable from a signal handler (no joins, no locks)."""
        self._stop.set()

    def wait(self) -> None:
        """Block until `stop()` is called from elsewhere (a signal handler, another thread)."""
        while not self._stop.wait(timeout=0.5):
            pass

    def __enter__(self) -> SntpResponder:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _now(self) -> float:
        return self._clock() + self._skew_s

    def _require_bound(self) -> _Bound:
        if self._bound is None:
            raise RuntimeError("SntpResponder not started")
        return self._bound

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                request, peer = sock.recvfrom(1024)
            except TimeoutError:
                continue
            except OSError:
                return  # socket closed under us by stop()
            received = self._now()
            reply = build_reply(request, received, self._now())
            if reply is None:
                self.ignored += 1
                continue
            try:
                sock.sendto(reply, peer)
                self.answered += 1
            except OSError:
                self.ignored += 1


def serve_until_signalled(host: str, port: int, skew_s: float, announce: Callable[[str], None]) -> SntpResponder:
    """Serve in the foreground until SIGINT or SIGTERM, then stop cleanly; returns the stopped responder.

    Args:
        announce: receives one line once the socket is bound (the CLI prints it).
    """
    responder = SntpResponder(host=host, port=port, skew_s=skew_s).start()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _stop(_signum: int, _frame: object) -> None:
        responder.stop_soon()

    for sig in previous:
        signal.signal(sig, _stop)
    try:
        announce(f"sntp: serving the host clock {skew_s:+.3f} s on udp {responder.host}:{responder.port}")
        responder.wait()
    finally:
        responder.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    announce(f"sntp: stopped after {responder.answered} answers, {responder.ignored} ignored datagrams")
    return responder

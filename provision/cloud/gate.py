"""The connect gate: the platform's public listeners, in front of Mosquitto, for the refusals its plugin cannot make.

Mosquitto 2.0's plugin API shows a plugin the password as a C string without its length (`<hex>\\0garbage`
would pass as `<hex>`) and never shows it the will at CONNECT (2.0.11 handle_connect.c stores it before the
basic-auth event, and no event or accessor carries it). So the gate, not Mosquitto, accepts the device's TCP
connection: it terminates TLS with the broker's certificate, reads exactly one packet (a size over the limit
closes the connection as soon as the fixed header announces it, before anything is held), checks it with
provision.cloud.connect_packet, answers a refusal with its CONNACK and closes, or forwards the CONNECT and then
copies bytes both ways to Mosquitto's listener for it, a unix socket in the broker's private run directory
(0700), where the plugin (securemode 2 or 3) checks everything else.

Mosquitto then sees every client arrive from the gate: the gate records, per device, the address of its last
connection Mosquitto accepted (CONNACK 0), for the platform service's device list (PeerBook).

One asyncio loop in a thread of the process that started the broker; per connection it holds a non-blocking
ssl.SSLSocket (asyncio's own TLS transport keeps a 256 KiB read buffer per connection: Python 3.11
sslproto.SSLProtocol.max_size, which 1,000 devices would turn into 250 MiB).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provision.cloud.connect_packet import MalformedPacket, connack, inspect_connect, packet_size
from provision.cloud.splice import Splice

__all__ = ["ConnectGate", "GateBindError", "GateListener", "PeerBook", "server_tls_context"]

# The TLS 1.2 suites Mosquitto 2.0.11 accepted without `ciphers`, with the TLS_RSA_* ones Alibaba's C Link SDK's
# mbedtls needs (Python's server default drops them). Checked suite by suite against the Mosquitto listener it
# replaces, RSA and ECDSA keys: the same, except DHE-RSA-*, for which Python's ssl has no automatic DH group.
MOSQUITTO_DEFAULT_CIPHERS = "DEFAULT:!aNULL:!eNULL:!LOW:!EXPORT:!SSLv2:@STRENGTH"
# a device that opens a connection and sends no CONNECT is dropped after this
CONNECT_TIMEOUT_S = 30.0
_CHUNK_BYTES = 16 * 1024
_UPSTREAM_WAIT_S = 5.0  # for room in Mosquitto's listen backlog


def server_tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The server side of the TLS listener: what Mosquitto offered with `certfile`/`keyfile` alone."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    context.set_ciphers(MOSQUITTO_DEFAULT_CIPHERS)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_DH_USE | ssl.OP_SINGLE_ECDH_USE
    context.options |= ssl.OP_NO_RENEGOTIATION  # the gate's TLS leg relies on it (see _TlsLeg)
    return context


class GateBindError(OSError):
    """A listener's port could not be bound; `port` says which, errno and strerror why."""

    def __init__(self, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.port = port


class PeerBook:
    """The address each device's last accepted connection came from, as only the gate sees it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_username: dict[str, str] = {}

    def record(self, username: str, address: str) -> None:
        with self._lock:
            self._by_username[username] = address

    def address_of(self, product_key: str, device_name: str) -> str | None:
        with self._lock:
            return self._by_username.get(f"{device_name}&{product_key}")


@dataclass(frozen=True)
class GateListener:
    """One public listener and the Mosquitto unix socket its connections go to."""

    host: str
    port: int  # 0: the kernel picks one (bind() returns it)
    upstream: str  # the unix socket's path
    tls: ssl.SSLContext | None  # None: plain TCP (securemode 3)


class _PlainLeg:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    async def handshake(self) -> None:
        return None

    async def recv(self, size: int) -> bytes:
        return await asyncio.get_running_loop().sock_recv(self.sock, size)

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)


async def _ready(sock: socket.socket, *, writable: bool) -> None:
    """Wait until the socket is readable (or writable)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    fd = sock.fileno()
    if writable:
        loop.add_writer(fd, _resolve, done)
    else:
        loop.add_reader(fd, _resolve, done)
    try:
        await done
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


class _TlsLeg:
    """TLS on the non-blocking socket itself, as Mosquitto does: OpenSSL reads and writes the descriptor, and
    with SSL_MODE_RELEASE_BUFFERS (set by Python's ssl module) an idle connection holds no record buffers. Memory
    BIOs would keep each one's largest record (the certificate flight) for the life of the connection.

    recv runs in one task and send in another: only recv waits for readability, only send for writability
    (renegotiation, the one way a write needs a read, is off in server_tls_context).
    """

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    async def handshake(self) -> None:
        while True:
            try:
                self.sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                await _ready(self.sock, writable=False)
            except ssl.SSLWantWriteError:
                await _ready(self.sock, writable=True)

    async def recv(self, size: int) -> bytes:
        """Up to `size` bytes of application data; b"" once the peer closed."""
        while True:
            try:
                return self.sock.recv(size)
            except ssl.SSLWantReadError:
                await _ready(self.sock, writable=False)
            except ssl.SSLWantWriteError:
                await asyncio.sleep(0.001)  # a TLS 1.3 key update's answer waits for room: send's wait is taken
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except ssl.SSLWantWriteError:
                await _ready(self.sock, writable=True)  # retried with the same buffer, as OpenSSL requires
            except ssl.SSLWantReadError:
                await asyncio.sleep(0.001)


_Leg = _PlainLeg | _TlsLeg


class ConnectGate:
    """The listeners of one broker run. bind() takes the ports, serve() starts answering, stop() ends it all."""

    def __init__(
        self,
        listeners: Sequence[GateListener],
        *,
        max_packet_bytes: int,
        tcp_nodelay: bool,
        log: Callable[[str], None],
        peers: PeerBook,
    ) -> None:
        self.listeners = tuple(listeners)
        self.max_packet_bytes = max_packet_bytes
        self.tcp_nodelay = tcp_nodelay
        self.peers = peers
        self._log = log
        self._sockets: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # the loop holds its tasks weakly: these references keep them running
        self._tasks: set[asyncio.Task[None]] = set()
        self._splices: set[Splice] = set()  # connections passed on, closed with the gate

    def bind(self) -> list[int]:
        """Bind every listener's port (not yet listening: a client is refused until serve()).

        Returns:
            The bound ports, in the listeners' order.

        Raises:
            GateBindError: a port is taken (EADDRINUSE) or the address is not this host's.
        """
        for listener in self.listeners:
            family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            self._sockets.append(sock)
            try:
                # a restart takes the same port while the last run's connections sit in TIME_WAIT
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((listener.host, listener.port))
            except OSError as exc:
                self.stop()
                raise GateBindError(listener.port, exc) from None
        return [int(sock.getsockname()[1]) for sock in self._sockets]

    def serve(self) -> None:
        """Listen on the bound ports and answer connections in a thread of this process."""
        loop = asyncio.new_event_loop()
        for sock in self._sockets:
            sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
        self._loop = loop
        self._thread = threading.Thread(target=self._run, args=(loop,), name="connect-gate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listeners and every connection through the gate (as a stopping Mosquitto does)."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop = self._thread = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        for sock, listener in zip(self._sockets, self.listeners, strict=True):
            self._keep(loop.create_task(self._accept(sock, listener)))
        try:
            loop.run_forever()
        finally:
            for splice in list(self._splices):
                splice.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()
            self._tasks.clear()

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, listening: socket.socket, listener: GateListener) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, address = await loop.sock_accept(listening)
            except OSError as exc:  # out of file descriptors: Mosquitto would refuse too; try again shortly
                self._log(f"connect-gate: accept failed: {exc.strerror or exc}")
                await asyncio.sleep(0.1)
                continue
            self._keep(loop.create_task(self._connection(sock, str(address[0]), int(address[1]), listener)))

    async def _connection(self, sock: socket.socket, host: str, port: int, listener: GateListener) -> None:
        peer = f"{host}:{port}"
        upstream: socket.socket | None = None
        leg: _Leg | None = None
        handed_over = False
        try:
            if self.tcp_nodelay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            leg = _TlsLeg(sock, listener.tls) if listener.tls is not None else _PlainLeg(sock)
            try:
                first, early = await asyncio.wait_for(self._first_packet(leg), CONNECT_TIMEOUT_S)
                verdict = inspect_connect(first)
            except MalformedPacket as exc:
                self._log(f"connect-gate: closed {peer}: {exc}")
                return
            if verdict.refusal is not None:
                self._log(f"connect-gate: refused {peer}: {verdict.reason} (CONNACK {verdict.refusal})")
                await leg.send(connack(verdict.level, verdict.refusal))
                return
            loop = asyncio.get_running_loop()
            upstream = await self._connect_upstream(listener.upstream)
            await loop.sock_sendall(upstream, first + early)
            # Mosquitto logs the client id with its side of the socket: this line says where it came from
            self._log(f"connect-gate: {peer} passed on as {verdict.client_id!r}")
            username = verdict.username
            splice = Splice(
                loop,
                leg.sock,
                upstream,
                (lambda: self.peers.record(username, host)) if username is not None else (lambda: None),
                self._splices.discard,
            )
            handed_over = True  # the splice owns both sockets now
            if not splice.closed:
                self._splices.add(splice)
        except (OSError, EOFError, asyncio.TimeoutError):
            return  # the device or Mosquitto went away, or TLS failed: either side closing closes both
        finally:
            if not handed_over:
                (leg.sock if leg is not None else sock).close()  # wrap_socket moved the descriptor into leg.sock
                if upstream is not None:
                    upstream.close()

    async def _connect_upstream(self, path: str) -> socket.socket:
        """Connect to Mosquitto's unix socket, waiting while it cannot take one more.

        A unix-socket connect completes at once or fails: EAGAIN when Mosquitto's listen backlog is full (a
        burst of devices), ECONNREFUSED in the moment between its bind and listen. asyncio's sock_connect
        would take EAGAIN for "in progress" and hand back an unconnected socket, so this retries instead.
        """
        deadline = asyncio.get_running_loop().time() + _UPSTREAM_WAIT_S
        while True:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.setblocking(False)
            try:
                upstream.connect(path)
                return upstream
            except (BlockingIOError, ConnectionRefusedError):
                upstream.close()
                if asyncio.get_running_loop().time() > deadline:
                    raise
            except BaseException:
                upstream.close()
                raise
            await asyncio.sleep(0.005)

    async def _first_packet(self, leg: _Leg) -> tuple[bytes, bytes]:
        """The first packet, whole, and whatever the client sent after it in the same reads."""
        await leg.handshake()
        buffer = bytearray()
        size: int | None = None
        while size is None or len(buffer) < size:
            chunk = await leg.recv(_CHUNK_BYTES if size is None else min(_CHUNK_BYTES, size - len(buffer)))
            if not chunk:
                raise EOFError
            buffer += chunk
            if size is None:
                size = packet_size(buffer)
                if buffer[0] != 0x10:
                    raise MalformedPacket("the first packet is not a CONNECT")
                if size is not None and size > self.max_packet_bytes:
                    raise MalformedPacket(f"a CONNECT of {size} bytes, over the {self.max_packet_bytes} byte limit")
        return bytes(buffer[:size]), bytes(buffer[size:])

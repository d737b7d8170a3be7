"""`provision broker`: Mosquitto with the aliyun_broker_auth plugin, a local stand-in for Aliyun's MQTT endpoint.

Devices reach the connect gate (provision.cloud.gate), in this process, on the public TLS port (and the plain
one with --allow-tcp); it refuses what the plugin cannot see (a will, a password with a NUL byte) and hands the
rest to Mosquitto, which listens only on unix sockets in the run directory.

A run makes a private temporary directory (0700) holding the Mosquitto config, its unix sockets and the plugin's
rules file (device secrets, 0600). The rules file is deleted as soon as the listeners are up (the plugin has
read it by then), the directory when the broker stops. Certificates live in the cert dir and are
kept across runs (see provision.cloud.certs).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import getpass
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

from provision.atomic import write_private_file
from provision.cloud.certs import BrokerCertificates, ensure_certificates
from provision.cloud.endpoint import CONSOLE_FILE, CONSOLE_USERNAME, ConsoleEndpoint, new_console_password
from provision.cloud.gate import ConnectGate, GateBindError, GateListener, PeerBook, server_tls_context
from provision.cloud.platform_run import PlatformRun
from provision.credentials import Device, load_devices
from provision.errors import EnvironmentProblem, InputError

__all__ = [
    "BrokerProcess",
    "BrokerSettings",
    "Route",
    "build_plugin",
    "die_with_parent",
    "parse_route",
    "remove_leftover_run_dirs",
    "rules_text",
    "run_foreground",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = REPO_ROOT / "broker" / "plugin"
PLUGIN_BUILD = REPO_ROOT / "build" / "broker-plugin"
PLUGIN_NAME = "aliyun_broker_auth.so"
_FILTER_LEVEL = re.compile(r"[^+#]*|\+|#")
_START_TIMEOUT_S = 10.0
_RUN_DIR_PREFIX = "provision-broker-"
_TLS_SOCKET = "tls.sock"  # in the run directory: Mosquitto's listener behind the gate's TLS port (securemode 2)
_TCP_SOCKET = "tcp.sock"  # and behind its plain TCP port (securemode 3)
# Aliyun "Limits": payloads up to 256 KB. The gate closes a connection whose CONNECT announces more, and
# Mosquitto one whose later packet does, as soon as the remaining-length field is read, before the packet is
# allocated (2.0 lib/packet_mosq.c packet__read), so a huge pre-auth CONNECT is never held. 1 KiB of room is
# left for the PUBLISH header and topic, so the plugin sees a payload just over 256 KB and refuses it with a log line.
PAYLOAD_MAX_BYTES = 256 * 1024
MAX_PACKET_BYTES = PAYLOAD_MAX_BYTES + 1024


@dataclass(frozen=True)
class Route:
    """The platform's message forwarding: messages published on `from_filter` are copied to `to_topic`."""

    from_filter: str
    to_topic: str


@dataclass(frozen=True)
class BrokerSettings:
    """Everything one broker run needs."""

    devices: tuple[Device, ...]
    certs: BrokerCertificates
    host: str = "127.0.0.1"
    port: int = 8883
    tcp_port: int | None = None  # the plain listener (securemode 3), only with --allow-tcp
    max_skew_s: int = 0
    routes: tuple[Route, ...] = ()
    plugin: Path | None = None
    # Nagle's algorithm with delayed ACKs cost ~48 ms of a 69 ms connect (issue 13); off only for the bench's anchor
    tcp_nodelay: bool = True
    # console.json once Mosquitto listens; off where a platform service records it itself once it answers
    # (run_foreground: a console that finds the file must find the service ready)
    write_console_file: bool = True


def parse_route(text: str) -> Route:
    """Parse `FROM_FILTER=TO_TOPIC`.

    Raises:
        InputError: not of that shape, a bad MQTT filter, or a wildcard in the target.
    """
    from_filter, sep, to_topic = text.partition("=")
    where = f"--route {text!r}"
    if not sep or not from_filter or not to_topic:
        raise InputError(f"{where}: expected FROM_TOPIC=TO_TOPIC")
    if any(ch in text for ch in "\t\n\r\0"):
        raise InputError(f"{where}: control characters are not allowed")
    levels = from_filter.split("/")
    if not all(_FILTER_LEVEL.fullmatch(level) for level in levels) or "#" in levels[:-1]:
        raise InputError(f"{where}: FROM is not a valid MQTT topic filter ('+' a whole level, '#' last)")
    if "+" in to_topic or "#" in to_topic:
        raise InputError(f"{where}: TO must be a topic, without wildcards")
    return Route(from_filter, to_topic)


def rules_text(devices: Sequence[Device], routes: Sequence[Route], console_password: str | None = None) -> str:
    """The plugin's rules file (format in broker/plugin/src/device_rules.h). Holds secrets: write it 0600."""
    lines = ["# written by provision broker; deleted when the broker stops"]
    if console_password is not None:
        lines.append(f"console\t{console_password}")
    lines += [f"device\t{d.product_key}\t{d.device_name}\t{d.device_secret}" for d in devices]
    lines += [f"route\t{r.from_filter}\t{r.to_topic}" for r in routes]
    return "\n".join(lines) + "\n"


def build_plugin() -> Path:
    """Build the plugin from broker/plugin (incremental; serialised across processes by a lock file).

    Raises:
        EnvironmentProblem: cmake, a compiler or mosquitto-dev is missing, or the build failed.
    """
    if shutil.which("cmake") is None:
        raise EnvironmentProblem("cmake not found: run scripts/setup (installs the Debian packages)")
    if not (PLUGIN_SOURCE / "CMakeLists.txt").is_file():
        raise EnvironmentProblem(f"{PLUGIN_SOURCE}: plugin source not found; pass --plugin PATH")
    PLUGIN_BUILD.mkdir(parents=True, exist_ok=True)
    with open(PLUGIN_BUILD / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for command in (
            ["cmake", "-S", str(PLUGIN_SOURCE), "-B", str(PLUGIN_BUILD), "-DCMAKE_BUILD_TYPE=Release"],
            ["cmake", "--build", str(PLUGIN_BUILD)],
        ):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
                raise EnvironmentProblem(
                    "building the broker plugin failed (is mosquitto-dev installed? run scripts/setup):", *tail
                )
    return PLUGIN_BUILD / PLUGIN_NAME


def _listener_block(unix_socket: str, plugin: Path, rules: Path, secure_mode: int, max_skew_s: int) -> list[str]:
    return [
        f"listener 0 {unix_socket}",
        "allow_anonymous false",
        f"plugin {plugin}",
        f"plugin_opt_rules {rules}",
        f"plugin_opt_securemode {secure_mode}",
        f"plugin_opt_max_skew_s {max_skew_s}",
        # The platform has no QoS 2: a QoS 2 SUBSCRIBE is granted QoS 1 (2.0 handle_subscribe.c caps it at
        # the listener's max_qos), a QoS 2 PUBLISH or will closes the connection.
        "max_qos 1",
    ]


def mosquitto_config(
    settings: BrokerSettings, tls_socket: str, tcp_socket: str | None, plugin: Path, rules: Path, log_file: Path | None
) -> str:
    """The Mosquitto 2.0 config: one unix-socket listener per securemode behind the gate, each with its own
    plugin instance (TLS ends at the gate; TCP_NODELAY is the gate's, a unix socket has no Nagle).

    The socket names are relative to Mosquitto's working directory, the run directory: a sun_path holds only
    108 bytes, and a temporary directory's path may be longer.
    """
    lines = [
        "# written by provision broker",
        "per_listener_settings true",
        "persistence false",
        # Mosquitto drops root privileges to `mosquitto` by default; the rules file is ours and 0600.
        f"user {getpass.getuser()}",
        "connection_messages true",
        f"max_packet_size {MAX_PACKET_BYTES}",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        f"log_dest file {log_file.absolute()}" if log_file is not None else "log_dest stdout",
    ]
    lines += _listener_block(tls_socket, plugin, rules, 2, settings.max_skew_s)
    if tcp_socket is not None:
        lines += _listener_block(tcp_socket, plugin, rules, 3, settings.max_skew_s)
    return "\n".join(lines) + "\n"


def die_with_parent() -> None:
    """In the child before exec: Linux sends SIGTERM when the parent dies, so a killed run leaves no broker."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftover_run_dirs(temp_dir: Path | None = None) -> list[Path]:
    """Delete run directories (with their rules file of DeviceSecrets) of broker runs that were SIGKILLed.

    A run directory is named `provision-broker-<pid>-<random>`; it is a leftover when no process has that
    pid any more. One without a pid (named by older versions) is a leftover once a minute old: a live run
    needs its directory only until Mosquitto listens. Directories of other users are skipped.

    Returns:
        The directories removed.
    """
    base = Path(temp_dir or tempfile.gettempdir())
    removed: list[Path] = []
    for candidate in base.glob(f"{_RUN_DIR_PREFIX}*"):
        pid_text = candidate.name[len(_RUN_DIR_PREFIX) :].split("-", 1)[0]
        try:
            info = candidate.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue
        if not pid_text.isdigit() and time.time() - info.st_mtime < 60:
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


class _GateLog:
    """The gate's lines, in Mosquitto's log file (appended, as Mosquitto does) or on stdout, in its format."""

    def __init__(self, log_file: Path | None) -> None:
        self.log_file = log_file

    def __call__(self, line: str) -> None:
        text = f"{datetime.now().strftime('%Y-%m-%dT%H:%M:%S')}: {line}\n"
        if self.log_file is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        with open(self.log_file, "a") as log:
            log.write(text)


class BrokerProcess:
    """One running Mosquitto behind its connect gate. Use as a context manager, or call start() and stop().

    Port 0 in the settings means "pick a free port": parallel test runs then never collide (the gate binds
    port 0 and reads what the kernel gave). `port` / `tcp_port` hold the ports in use, and a restart (stop,
    start) keeps them and the console password, as a real endpoint does (a logged-in platform service
    reconnects on its own). `peers` is where the gate records each device's address (see PeerBook).
    """

    def __init__(self, settings: BrokerSettings, *, log_to: Path | None = None) -> None:
        """Args:
        log_to: Mosquitto's log file; None: Mosquitto logs to this process's stdout.
        """
        self.settings = settings
        self.log_file = log_to
        self.port = settings.port
        self.tcp_port = settings.tcp_port
        self._run_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._gate: ConnectGate | None = None
        self._run_dir_fd: int | None = None
        self.peers = PeerBook()
        self._console: ConsoleEndpoint | None = None
        self._console_password = new_console_password()

    @property
    def console_endpoint(self) -> ConsoleEndpoint | None:
        """The console principal's login of this run (None when stopped); also in the cert dir's console.json."""
        return self._console

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start Mosquitto and wait until its ports listen.

        Raises:
            EnvironmentProblem: mosquitto missing, a port taken, or it exited (bad config); the log tail follows.
        """
        # Debian installs it in /usr/sbin, which is not on every user's PATH.
        mosquitto = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
        if mosquitto is None:
            raise EnvironmentProblem("mosquitto not found: run scripts/setup (Debian package mosquitto)")
        plugin = self.settings.plugin or build_plugin()
        remove_leftover_run_dirs()
        self._run_dir = Path(tempfile.mkdtemp(prefix=f"{_RUN_DIR_PREFIX}{os.getpid()}-"))
        try:
            self._launch(mosquitto, plugin, self._run_dir)
        except BaseException:
            # A failed start (exec error, Ctrl-C while waiting, no listen) must not leave the secrets file:
            # a context-manager caller never reaches __exit__ when __enter__ raises.
            self.stop()
            raise

    def _bind_gate(self, run_dir: Path) -> None:
        """Bind the public ports (sets self.port / self.tcp_port) for the gate to Mosquitto's sockets in run_dir."""
        # the gate reaches the sockets through a descriptor of the run directory, whatever the length of its path
        self._run_dir_fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY)
        through = f"/proc/self/fd/{self._run_dir_fd}"
        certs = self.settings.certs
        host = self.settings.host
        tls = server_tls_context(certs.server_cert, certs.server_key)
        listeners = [GateListener(host, self.port, f"{through}/{_TLS_SOCKET}", tls)]
        if self.tcp_port is not None:
            listeners.append(GateListener(host, self.tcp_port, f"{through}/{_TCP_SOCKET}", None))
        self._gate = ConnectGate(
            listeners,
            max_packet_bytes=MAX_PACKET_BYTES,
            tcp_nodelay=self.settings.tcp_nodelay,
            log=_GateLog(self.log_file),
            peers=self.peers,
        )
        try:
            ports = self._gate.bind()
        except GateBindError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise EnvironmentProblem(
                    f"port {exc.port} is already in use: choose another with --port/--tcp-port"
                ) from None
            raise EnvironmentProblem(f"cannot listen on {host}:{exc.port}: {exc.strerror}: check --host") from None
        self.port = ports[0]
        if self.tcp_port is not None:
            self.tcp_port = ports[1]

    def _launch(self, mosquitto: str, plugin: Path, run_dir: Path) -> None:
        self._bind_gate(run_dir)
        tcp_socket = _TCP_SOCKET if self.tcp_port is not None else None
        rules = run_dir / "rules"
        write_private_file(
            rules, rules_text(self.settings.devices, self.settings.routes, self._console_password).encode()
        )
        config = run_dir / "mosquitto.conf"
        config.write_text(mosquitto_config(self.settings, _TLS_SOCKET, tcp_socket, plugin, rules, self.log_file))
        # Its own session: a terminal's Ctrl-C reaches only us, and we stop it in order (SIGTERM, wait, clean up).
        self._process = subprocess.Popen(
            [mosquitto, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
            cwd=run_dir,
        )
        sockets = [run_dir / name for name in (_TLS_SOCKET, tcp_socket) if name is not None]
        deadline = time.monotonic() + _START_TIMEOUT_S
        # Polling for the socket files instead of connecting keeps a probe out of Mosquitto's log. Mosquitto
        # listens right after it binds; a device the gate passes on in between is retried (gate.py).
        while not all(path.exists() for path in sockets):
            if self._process.poll() is not None or time.monotonic() > deadline:
                code = self._process.poll()
                raise EnvironmentProblem(
                    f"mosquitto did not start behind {self.settings.host}:{self.port} (exit status {code})",
                    *self.log_tail(),
                )
            time.sleep(0.002)
        # Mosquitto runs plugin init (which reads the rules) before it opens a listener, so once its sockets
        # exist the secrets are in its memory only: a SIGKILL from here on leaves no secret on disk.
        rules.unlink()
        assert self._gate is not None
        self._gate.serve()
        certs = self.settings.certs
        # a wildcard listen address is reached on loopback by a console on this machine
        console_host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host  # noqa: S104
        self._console = ConsoleEndpoint(
            console_host, self.port, str(certs.ca_cert), CONSOLE_USERNAME, self._console_password, self._process.pid
        )
        if self.settings.write_console_file:
            self._console.write(certs.ca_cert.parent)

    def log_tail(self, lines: int = 5) -> list[str]:
        if self.log_file is None or not self.log_file.is_file():
            return []
        return self.log_file.read_text(errors="replace").splitlines()[-lines:]

    def request_stop(self) -> None:
        """Ask Mosquitto to exit (SIGTERM) without waiting: safe inside a signal handler."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGTERM)

    def wait(self) -> int:
        """Block until Mosquitto exits; returns its exit status."""
        if self._process is None:
            return 0
        return self._process.wait()

    def stop(self) -> None:
        """Stop Mosquitto (SIGTERM, then SIGKILL after 5 s) and delete the run directory with its secrets."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._gate is not None:
            self._gate.stop()
            self._gate = None
        if self._run_dir_fd is not None:
            os.close(self._run_dir_fd)
            self._run_dir_fd = None
        if self._console is not None and self.settings.write_console_file:
            with contextlib.suppress(OSError):
                (self.settings.certs.ca_cert.parent / CONSOLE_FILE).unlink()
        self._console = None
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    def __enter__(self) -> BrokerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_foreground(
    csv_path: Path,
    cert_dir: Path,
    *,
    host: str,
    port: int,
    sans: Sequence[str],
    allow_tcp: bool,
    tcp_port: int,
    max_skew_s: int,
    routes: Sequence[str],
    plugin: Path | None,
    out: TextIO,
    key_type: str = "rsa",
) -> None:
    """`provision broker`: start Mosquitto, print where it listens, stop cleanly on Ctrl-C or SIGTERM.

    Raises:
        InputError: bad CSV, SAN or route (nothing started).
        EnvironmentProblem: Mosquitto or the plugin build is missing, failed to start or exited on its own.
    """
    parsed_routes = tuple(parse_route(route) for route in routes)
    if max_skew_s < 0:
        raise InputError(f"--max-skew {max_skew_s}: must be 0 (off) or a number of seconds")
    devices = tuple(load_devices(csv_path))
    certs = ensure_certificates(cert_dir, sans, key_type)
    # a wildcard listen address is no address to put in a download URL: the first SAN is what boards reach
    url_host = (sans[0] if sans else "127.0.0.1") if host in ("0.0.0.0", "::") else host  # noqa: S104
    platform = PlatformRun(certs, cert_dir, host, url_host)
    settings = BrokerSettings(
        devices=devices,
        certs=certs,
        host=host,
        port=port,
        tcp_port=tcp_port if allow_tcp else None,
        max_skew_s=max_skew_s,
        routes=parsed_routes,
        plugin=plugin,
        write_console_file=False,  # the platform service writes it once it answers
    )
    broker = BrokerProcess(settings)
    stopping = False

    def stop_now() -> None:
        nonlocal stopping
        stopping = True
        broker.request_stop()

    with _stop_on_signals(stop_now):
        try:
            broker.start()
            platform.started(broker.console_endpoint, broker.peers)
        except BaseException:
            platform.stop()
            broker.stop()
            raise
        print(
            f"broker: mqtts://{host}:{broker.port} for {len(devices)} devices; clients trust {certs.ca_cert}", file=out
        )
        if broker.tcp_port is not None:
            print(f"broker: mqtt://{host}:{broker.tcp_port} (securemode 3)", file=out)
        print("broker: Ctrl-C stops it", file=out, flush=True)
        status = broker.wait()
        platform.stop()
        broker.stop()
    if not stopping:
        raise EnvironmentProblem(f"mosquitto exited on its own (status {status}); its log is above")
    print("broker: stopped", file=out, flush=True)

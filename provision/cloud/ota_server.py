"""The platform's OTA file server: HTTPS with the broker's own CA and server certificate, one per broker run.

Each push registers the image under a random path token (`secrets`), valid for that push only: it is
withdrawn when the device reports the end (progress 100 or an error step) or a new push replaces it.
GET honours `Range: bytes=START-[END]` (206 + Content-Range), since devices resume an interrupted download
that way. `drop_after` is a test hook: the first GET of that push closes the connection after so many bytes.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from provision.cloud.certs import BrokerCertificates

__all__ = ["OtaFileServer", "ServedImage"]

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_CHUNK = 16 * 1024


@dataclass
class ServedImage:
    path: Path
    size: int
    drop_after: int | None = None


class OtaFileServer:
    def __init__(self, certs: BrokerCertificates, host: str, url_host: str | None = None) -> None:
        """Args:
        url_host: the address devices reach the server by (default: `host`).
        """
        self.host = host
        self.url_host = url_host or host
        self._images: dict[str, ServedImage] = {}
        self._lock = threading.Lock()
        server = ThreadingHTTPServer((host, 0), _handler_for(self))
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(certs.server_cert), str(certs.server_key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="ota-https", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def offer(self, image: ServedImage) -> str:
        """Serve `image` under a fresh token; returns the URL path."""
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._images[token] = image
        return f"/ota/{token}/{image.path.name}"

    def withdraw(self, url_path: str) -> None:
        with self._lock:
            self._images.pop(url_path.split("/")[2] if url_path.count("/") >= 3 else "", None)

    def lookup(self, url_path: str) -> ServedImage | None:
        parts = url_path.split("/")
        if len(parts) != 4 or parts[1] != "ota":
            return None
        with self._lock:
            image = self._images.get(parts[2])
            if image is None or image.path.name != parts[3]:
                return None
            drop, image.drop_after = image.drop_after, None
        return ServedImage(image.path, image.size, drop)


def _handler_for(server: OtaFileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the URL holds the push's token."""

        def do_GET(self) -> None:
            image = server.lookup(self.path)
            if image is None:
                self.send_error(404)
                return
            start, end = 0, image.size - 1
            range_header = self.headers.get("Range")
            if range_header is not None:
                match = _RANGE.fullmatch(range_header.strip())
                if match is None or int(match.group(1)) >= image.size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{image.size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = int(match.group(1))
                end = min(int(match.group(2)), image.size - 1) if match.group(2) else image.size - 1
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{image.size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            self._send_body(image, start, end - start + 1)

        def _send_body(self, image: ServedImage, start: int, length: int) -> None:
            budget = image.drop_after
            with open(image.path, "rb") as source:
                source.seek(start)
                while length > 0:
                    chunk = source.read(min(_CHUNK, length, budget if budget is not None else _CHUNK))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    length -= len(chunk)
                    if budget is not None:
                        budget -= len(chunk)
                        if budget <= 0:
                            self.wfile.flush()
                            with contextlib.suppress(OSError):
                                self.connection.shutdown(2)
                            self.close_connection = True
                            return

    return Handler

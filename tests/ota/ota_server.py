"""The smallest HTTPS file server an OTA test needs: one image per path, HTTP Range, and two test hooks
(drop the connection once after N bytes; a byte rate, so a test can act mid-download). It serves with
the broker's certificate, as the local platform's OTA host does. Only 127.0.0.1.

This stands in for `provision cloud ota push`'s server (issue 10), which was not there when these tests
were written; the upgrade message is published by tests/ota/conftest.py.
"""

from __future__ import annotations

import http.server
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 16384


@dataclass
class ServeHooks:
    drop_after_bytes: int | None = None  # once: close the connection after this many body bytes
    bytes_per_s: int | None = None
    requests: list[str] = field(default_factory=list)  # "GET /path bytes=N-" per request


class OtaFileServer:
    def __init__(self, cert: Path, key: Path) -> None:
        self.images: dict[str, bytes] = {}
        self.hooks = ServeHooks()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.serve(self)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        image = self.images.get(handler.path)
        range_header = handler.headers.get("Range", "")
        self.hooks.requests.append(f"GET {handler.path} {range_header}")
        if image is None:
            handler.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header)
        if match:
            start = int(match.group(1))
        if start >= len(image):
            handler.send_error(416)
            return
        handler.send_response(206 if match else 200)
        if match:
            handler.send_header("Content-Range", f"bytes {start}-{len(image) - 1}/{len(image)}")
        handler.send_header("Content-Length", str(len(image) - start))
        handler.send_header("Connection", "close")
        handler.end_headers()
        sent = 0
        drop = self.hooks.drop_after_bytes
        for offset in range(start, len(image), CHUNK):
            piece = image[offset : offset + CHUNK]
            if drop is not None and sent + len(piece) > drop:
                self.hooks.drop_after_bytes = None
                handler.wfile.write(piece[: drop - sent])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
            handler.wfile.write(piece)
            sent += len(piece)
            if self.hooks.bytes_per_s:
                time.sleep(len(piece) / self.hooks.bytes_per_s)

"""A real HTTP file server on 127.0.0.1 for the installer's doubles (package index, model hub).

It serves byte blobs with what download clients rely on — ``HEAD``, ``Range`` requests (206, 416),
``Content-Length`` — plus JSON routes, a request log, and faults a test arms: :meth:`FileServer.cut`
closes the connection after N body bytes (an interrupted download), :meth:`FileServer.corrupt` serves
other bytes than the ones published.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JsonRoute = Callable[["re.Match[str]", dict[str, str]], tuple[int, Any]]


@dataclass
class ServedRequest:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    bytes_sent: int = 0

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@dataclass
class _Cut:
    after_bytes: int
    times: int


@dataclass
class Blob:
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.owner.handle(self, body=True)

    def do_HEAD(self) -> None:
        self.server.owner.handle(self, body=False)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: FileServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class FileServer:
    """Serves ``blobs`` by path and JSON ``routes`` by regular expression; logs every request."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.blobs: dict[str, Blob] = {}
        self.routes: list[tuple[re.Pattern[str], JsonRoute]] = []
        self.lock = threading.Lock()
        self._log: list[ServedRequest] = []
        self._cuts: dict[str, _Cut] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> FileServer:
        if self._server is None:
            self._server = _Server((self.host, self.requested_port), self)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
            self._thread.daemon = True
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running: call start() or use it as a context manager")
        return f"http://{self.host}:{self._server.server_address[1]}"

    # -- faults and inspection -------------------------------------------------------------------
    def cut(self, path: str, after_bytes: int, *, times: int = 1) -> None:
        """Close the connection after ``after_bytes`` body bytes of the next ``times`` GETs of ``path``."""
        with self.lock:
            self._cuts[path] = _Cut(after_bytes, times)

    def corrupt(self, path: str) -> None:
        """Serve ``path`` with one byte flipped (same length): a download whose sha256 will not match."""
        blob = self.blobs[path]
        middle = len(blob.data) // 2
        blob.data = blob.data[:middle] + bytes([blob.data[middle] ^ 0xFF]) + blob.data[middle + 1 :]

    @property
    def requests(self) -> list[ServedRequest]:
        with self.lock:
            return list(self._log)

    def requests_to(self, path: str) -> list[ServedRequest]:
        return [r for r in self.requests if r.path == path]

    # -- serving -----------------------------------------------------------------------------------
    def handle(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = handler.path.split("?", 1)[0]
        record = ServedRequest(handler.command, path, {k.lower(): v for k, v in handler.headers.items()})
        with self.lock:
            self._log.append(record)
        try:
            for pattern, route in self.routes:
                match = pattern.fullmatch(path)
                if match:
                    status, payload = route(match, record.headers)
                    self._send_json(handler, record, status, payload, body=body)
                    return
            blob = self.find_blob(path)
            if blob is None:
                self._send_json(handler, record, 404, {"error": f"not found: {path}"}, body=body)
                return
            self._send_blob(handler, record, blob, body=body)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    def find_blob(self, path: str) -> Blob | None:
        """The blob served at ``path`` (subclasses may compute it)."""
        return self.blobs.get(path)

    def _send_json(
        self, handler: BaseHTTPRequestHandler, record: ServedRequest, status: int, payload: Any, *, body: bool
    ) -> None:
        if isinstance(payload, str | bytes):
            data = payload.encode() if isinstance(payload, str) else payload
            kind = "text/html"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        self._head(handler, record, status, {"Content-Type": kind, "Content-Length": str(len(data))})
        if body:
            handler.wfile.write(data)

    def _send_blob(self, handler: BaseHTTPRequestHandler, record: ServedRequest, blob: Blob, *, body: bool) -> None:
        data = blob.data
        start, end = 0, len(data) - 1
        status = 200
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **blob.headers}
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", record.range or "")
        if wanted:
            start = int(wanted.group(1))
            end = min(int(wanted.group(2)), end) if wanted.group(2) else end
            if start >= len(data):
                self._head(handler, record, 416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        payload = data[start : end + 1]
        headers["Content-Length"] = str(len(payload))
        self._head(handler, record, status, headers)
        if not body:
            return
        cut = self._take_cut(record.path)
        if cut is not None and cut < len(payload):
            handler.wfile.write(payload[:cut])
            handler.wfile.flush()
            record.bytes_sent = cut
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.wfile.write(payload)
        record.bytes_sent = len(payload)

    def _take_cut(self, path: str) -> int | None:
        with self.lock:
            cut = self._cuts.get(path)
            if cut is None or cut.times <= 0:
                return None
            cut.times -= 1
            return cut.after_bytes

    @staticmethod
    def _head(handler: BaseHTTPRequestHandler, record: ServedRequest, status: int, headers: dict[str, str]) -> None:
        record.status = status
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()

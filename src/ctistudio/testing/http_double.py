"""The machinery every HTTP test double shares: a real threaded HTTP/1.1 server on 127.0.0.1.

:class:`HttpDouble` owns the server's life cycle (``start``/``stop``, or ``with``), keep-alive connections
(one thread per connection, TCP_NODELAY, one ``write`` per response, so it is fast enough for benchmarks),
the request log, the count of requests in flight and its peak, scheduled faults, and the queue of scripted
replies. Concrete doubles (:mod:`ctistudio.testing.lmstudio_double`, :mod:`ctistudio.testing.cloud_doubles`)
register routes and speak their server's dialect. See ``lmstudio_double``'s docstring for the user guide.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# -- values tests script and inspect ---------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer. A queued ``str`` is ``Reply(content=s)``; a ``dict``/``list`` is JSON-encoded.

    ``reasoning`` is sent as ``reasoning_content`` (LM Studio's "separate reasoning" setting). Token counts
    default to the double's tokenizer; ``latency`` overrides the double's fixed latency for this answer.
    """

    content: str = ""
    reasoning: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency: float | None = None


@dataclass
class ChatCall:
    """What a responder sees: the parsed chat request, plus the model instance that will answer."""

    model: str  # the instance that answers (e.g. "qwen/qwen3-4b-2507" or "qwen/qwen3-4b-2507:2")
    requested_model: str | None
    messages: list[dict[str, Any]]
    response_format: dict[str, Any] | None
    max_tokens: int | None
    stream: bool
    prompt_tokens: int
    body: dict[str, Any]

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema asked for (``response_format.json_schema.schema``), if any."""
        fmt = self.response_format or {}
        if fmt.get("type") == "json_schema":
            return (fmt.get("json_schema") or {}).get("schema")
        return fmt.get("schema")

    @property
    def system(self) -> str:
        return "\n".join(str(m.get("content") or "") for m in self.messages if m.get("role") == "system")

    @property
    def last_user(self) -> str:
        users = [str(m.get("content") or "") for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def text(self) -> str:
        """Every message's content joined (handy for ``"keyword" in call.text``)."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)


@dataclass
class RecordedRequest:
    """One request as the double saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    started: float  # time.monotonic()
    finished: float | None = None
    status: int | None = None
    in_flight_at_start: int = 0

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None


@dataclass
class Fault:
    """A failure the double applies to the next ``times`` matching requests.

    ``status``/``body``/``headers``: answer with this error instead. ``drop_after_chunks``: close the
    connection abruptly (mid-stream after that many SSE chunks; before any byte for a non-streaming
    request). ``delay``: sleep this long first (a one-off slow answer; combine with nothing else to just
    delay). ``paths`` limits the fault to these request paths (default: chat completions).
    """

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_after_chunks: int | None = None
    delay: float = 0.0
    times: int = 1
    paths: tuple[str, ...] = ("/v1/chat/completions",)


Responder = Callable[[ChatCall], "Reply | str | dict[str, Any] | list[Any] | None"]


# -- helpers ------------------------------------------------------------------------------------------


def count_tokens(text: str, chars_per_token: int) -> int:
    """The doubles' tokenizer: ``ceil(len(text) / chars_per_token)`` — simple, documented, exact."""
    return math.ceil(len(text) / chars_per_token) if text else 0


def split_tokens(text: str, chars_per_token: int) -> list[str]:
    """``text`` cut into its tokens (``chars_per_token``-character slices): what a stream sends."""
    return [text[i : i + chars_per_token] for i in range(0, len(text), chars_per_token)]


def as_reply(value: Reply | str | dict[str, Any] | list[Any]) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(content=value)
    return Reply(content=json.dumps(value))


def sample_for_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A minimal value that satisfies ``schema`` (the default answer to a structured request).

    Handles what pydantic emits: objects with required properties, ``$ref``/``$defs``, ``enum``/``const``,
    ``anyOf``/``oneOf``, arrays with ``minItems``, strings with ``minLength``, numbers with ``minimum``.
    """
    defs = defs if defs is not None else {**schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return sample_for_schema(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return sample_for_schema(schema[key][0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: sample_for_schema(props.get(name, {}), defs) for name in schema.get("required", [])}
    if kind == "array":
        return [sample_for_schema(schema.get("items") or {}, defs) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + (1 if "exclusiveMinimum" in schema else 0)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    return None


def hashed_embedding(text: str, dimensions: int) -> list[float]:
    """Deterministic bag-of-words vector (words hashed into buckets, L2-normalised).

    Texts that share words get a higher cosine similarity, so retrieval tests can rank something real.
    """
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dimensions
        vector[bucket] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:
        vector[0], norm = 1.0, 1.0
    return [v / norm for v in vector]


# -- one exchange --------------------------------------------------------------------------------------


class Exchange:
    """One request being answered: its parsed body, and ways to write the answer."""

    def __init__(self, handler: BaseHTTPRequestHandler, record: RecordedRequest) -> None:
        self.handler = handler
        self.record = record
        self.body = record.body
        self.status: int | None = None
        self.drop_after: int | None = None  # set by a Fault: cut the stream after this many chunks
        self._chunked = False
        # Called once, just before the bytes that let the client finish are written (see HttpDouble._handle).
        self.on_complete: Callable[[], None] | None = None

    def complete(self) -> None:
        """The answer is about to be complete: stop counting this request as in flight."""
        callback, self.on_complete = self.on_complete, None
        if callback is not None:
            callback()

    def header(self, name: str) -> str | None:
        return self.handler.headers.get(name)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.complete()
        self._write_head(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, len(data))
        self._write(data)

    def start_stream(self, status: int = 200) -> None:
        self._write_head(status, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}, None)
        self._chunked = True

    def send_event(self, payload: Any, *, event: str | None = None, last: bool = False) -> None:
        """One server-sent event (``data: <json>``, or the raw string ``[DONE]``) as one HTTP chunk.

        ``last`` (implied by ``[DONE]``): a client may stop reading after this event.
        """
        if last or payload == "[DONE]":
            self.complete()
        data = payload if isinstance(payload, str) else json.dumps(payload)
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        raw = text.encode()
        self._write(b"%x\r\n%s\r\n" % (len(raw), raw))

    def end_stream(self) -> None:
        self.complete()
        self._write(b"0\r\n\r\n")

    def drop(self) -> None:
        """Close the connection abruptly (no response, or a stream cut short)."""
        self.complete()
        self.handler.close_connection = True
        self.status = self.record.status = self.status or 0
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def _write_head(self, status: int, headers: dict[str, str], length: int | None) -> None:
        # Recorded before the client can read the answer: a test inspecting requests right after its call
        # returns must not race the handler thread.
        self.status = self.record.status = status
        reason = self.handler.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", "Server: ctistudio-double"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
        self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _write(self, data: bytes) -> None:
        self.handler.wfile.write(data)


# -- the server ------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.double._connections.add(self.connection)

    def finish(self) -> None:
        self.server.double._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self.server.double._handle(self)

    do_POST = do_DELETE = do_PUT = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], double: HttpDouble) -> None:
        self.double = double
        super().__init__(address, _Handler)


Route = Callable[[Exchange], None]


class HttpDouble:
    """Base of the doubles: a real server on ``host`` (127.0.0.1) and ``port`` (0 = a free one)."""

    #: request paths counted as predictions (in flight / peak)
    prediction_paths: tuple[str, ...] = ()
    #: the path the fault helpers aim at by default
    chat_path: str = ""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        latency: float = 0.0,
        token_latency: float = 0.0,
        chars_per_token: int = 4,
        default_reply: str = "OK",
    ) -> None:
        if chars_per_token < 1:
            raise ValueError("chars_per_token must be a whole number ≥ 1")
        self.host = host
        self.requested_port = port
        self.api_key = api_key
        self.latency = latency
        self.token_latency = token_latency
        self.chars_per_token = int(chars_per_token)
        self.default_reply = default_reply
        self.responder: Responder | None = None
        self.lock = threading.RLock()
        self._replies: deque[Reply] = deque()
        self._faults: list[Fault] = []
        self._log: list[RecordedRequest] = []
        self._in_flight = 0
        self._peak = 0
        self._routes: dict[tuple[str, str], Route] = {}
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> HttpDouble:
        if self._server is None:
            self._server = _Server((self.host, self.requested_port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for connection in list(self._connections):  # wake keep-alive threads so their sockets close
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the double is not running: call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the server root, where native endpoints live)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ``http://127.0.0.1:PORT/v1``."""
        return self.root_url + "/v1"

    # -- scripting -------------------------------------------------------------------------------
    def reply(self, *replies: Reply | str | dict[str, Any] | list[Any]) -> None:
        """Queue answers, used once each, in order, before the responder and the default answer."""
        with self.lock:
            self._replies.extend(as_reply(r) for r in replies)

    def fail(self, fault: Fault) -> Fault:
        """Schedule ``fault`` for the next ``fault.times`` matching requests."""
        with self.lock:
            self._faults.append(fault)
        return fault

    def server_error(self, times: int = 1, *, status: int = 500, paths: tuple[str, ...] = ()) -> Fault:
        """The next ``times`` requests fail with HTTP ``status`` and the server's crash wording."""
        body = self.server_error_body()
        return self.fail(Fault(status=status, body=body, times=times, paths=paths or (self.chat_path,)))

    def rate_limit(self, retry_after: float | None = 1, times: int = 1, *, paths: tuple[str, ...] = ()) -> Fault:
        """The next ``times`` requests get HTTP 429 with ``Retry-After: retry_after`` (omitted when None)."""
        headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else {}
        fault = Fault(status=429, body=self.rate_limit_body(), headers=headers, times=times)
        fault.paths = paths or (self.chat_path,)
        return self.fail(fault)

    def drop_connection(self, after_chunks: int = 0, times: int = 1, *, paths: tuple[str, ...] = ()) -> Fault:
        """Close the connection abruptly: mid-stream after ``after_chunks`` chunks (0: before answering)."""
        return self.fail(Fault(drop_after_chunks=after_chunks, times=times, paths=paths or (self.chat_path,)))

    def slow_down(self, seconds: float, times: int = 1, *, paths: tuple[str, ...] = ()) -> Fault:
        """Delay the next ``times`` answers by ``seconds`` (on top of ``latency``)."""
        return self.fail(Fault(delay=seconds, times=times, paths=paths or (self.chat_path,)))

    def clear(self) -> None:
        """Forget queued replies, faults, the request log and the in-flight peak."""
        with self.lock:
            self._replies.clear()
            self._faults.clear()
            self._log.clear()
            self._peak = self._in_flight

    def next_reply(self, call: ChatCall) -> Reply:
        with self.lock:
            if self._replies:
                return self._replies.popleft()
        if self.responder is not None:
            answer = self.responder(call)
            if answer is not None:
                return as_reply(answer)
        return self.default_answer(call)

    def default_answer(self, call: ChatCall) -> Reply:
        schema = call.schema
        if schema is not None:
            return Reply(content=json.dumps(sample_for_schema(schema)))
        return Reply(content=self.default_reply)

    # -- inspection ------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self._log)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    @property
    def in_flight(self) -> int:
        """Prediction requests (chat, embeddings) received and not yet answered."""
        return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        return self._peak

    def tokens(self, text: str) -> int:
        return count_tokens(text, self.chars_per_token)

    # -- dispatch --------------------------------------------------------------------------------
    def route(self, method: str, path: str, handler: Route) -> None:
        self._routes[(method, path)] = handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        record = RecordedRequest(
            method=handler.command,
            path=path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=None,
            started=time.monotonic(),
        )
        exchange = Exchange(handler, record)
        if path in self.prediction_paths:
            with self.lock:
                self._in_flight += 1
                self._peak = max(self._peak, self._in_flight)
                record.in_flight_at_start = self._in_flight
            # A request stops counting just BEFORE the bytes that let the client finish are written: counted
            # after them, the client could already have sent its next request (its slot freed) while this
            # thread had not yet decremented, and the peak would show one request too many.
            exchange.on_complete = self._request_done
        with self.lock:
            self._log.append(record)
        try:
            self._dispatch(exchange, raw)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
        finally:
            record.finished = time.monotonic()
            record.status = exchange.status
            exchange.complete()

    def _request_done(self) -> None:
        with self.lock:
            self._in_flight -= 1

    def _dispatch(self, exchange: Exchange, raw: bytes) -> None:
        record = exchange.record
        if raw:
            try:
                record.body = exchange.body = json.loads(raw)
            except ValueError:
                self.bad_json(exchange)
                return
        if self.api_key is not None and not self.authorized(exchange):
            return
        fault = self._take_fault(record.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                exchange.send_json(fault.status, fault.body, fault.headers)
                return
            if fault.drop_after_chunks is not None:
                streaming = isinstance(exchange.body, dict) and bool(exchange.body.get("stream"))
                if not streaming or fault.drop_after_chunks <= 0:
                    exchange.drop()
                    return
                exchange.drop_after = fault.drop_after_chunks
        route = self._routes.get((record.method, record.path))
        if route is None:
            self.unknown_endpoint(exchange)
            return
        route(exchange)

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.times > 0 and path in fault.paths:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- dialect hooks (subclasses give the wording) -----------------------------------------------
    def authorized(self, exchange: Exchange) -> bool:
        return True

    def unknown_endpoint(self, exchange: Exchange) -> None:
        exchange.send_json(404, {"error": f"no such endpoint: {exchange.record.method} {exchange.record.path}"})

    def bad_json(self, exchange: Exchange) -> None:
        exchange.send_json(400, {"error": "request body is not valid JSON"})

    def server_error_body(self) -> Any:
        return {"error": "internal server error"}

    def rate_limit_body(self) -> Any:
        return {"error": "rate limited"}


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)

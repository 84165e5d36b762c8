"""Local OpenAI-compatible and Ollama servers with seeded fault injection: test support.

Nothing in the product imports this module (a test enforces it); the test suite and
`benchmarks/bench_http.py` use it, and so may users who want to test their own code against an
HTTP backend without a real server.

    def rater(conversation, params):            # a scripted rater
        image = conversation[-1].images[0]      # images arrive decoded as `Image` (bytes)
        return "happy"

    with serve(rater, api="openai", faults=FaultPlan(server_error=0.1, seed=0)) as server:
        backend = OpenAIBackend(server.url, "fake", backoff_base=0.001)
        results = backend.generate(requests)
    print(server.faults.injected)               # {"server_error": 7, ...}

`responder` is either a `Backend` (e.g. an `hf` backend on a tiny model: the server answers with
its generations and logprobs) or a function `(conversation: list[Turn], params: dict) -> str |
(str, list[StepLogprobs] | None)`. `params` holds `max_new_tokens`, `temperature`, `top_p`,
`seed`, `top_logprobs`, `model`, `api` and the raw request `body`. A `Backend` result with
`status="error"` becomes HTTP 400 with its message (not retried by clients, as for vLLM's
"prompt too long"); a responder that raises becomes HTTP 500. Calls to the responder are
serialised by a lock, so a stateful scripted rater needs no locking of its own
(`serialize=False` lets a thread-safe responder answer several requests at once).

The server binds 127.0.0.1 on a free port, runs the stdlib `ThreadingHTTPServer` in a daemon
thread, and stops when the `with` block ends, when `close()` is called, or at the latest after
`lifetime` seconds, so a test that forgets it never leaves it running. Stopping is one step as
seen from outside: from the moment it begins no request reaches the responder (open keep-alive
connections included), and `running` turns False only once the port is released. Every answer
carries `X-Fake-Server: <server_id>`, so a client can tell this server from another one that
later binds the same port.

Routes: openai `POST /v1/chat/completions`, `GET /v1/models`; ollama `POST /api/chat`,
`GET /api/tags`. Faults are injected only into the chat routes.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Literal, Sequence, Union

from vlmlab.errors import DataError
from vlmlab.models.base import Backend, GenerationRequest, StepLogprobs, Turn
from vlmlab.testing.wire import Api, answer_json, error_json, ollama_conversation, openai_conversation, request_params

__all__ = ["FAULT_KINDS", "Api", "FaultPlan", "FaultKind", "Responder", "ServerHandle", "serve"]
FaultKind = Literal["server_error", "rate_limit", "timeout", "truncated", "dropped"]
FAULT_KINDS: tuple[str, ...] = ("server_error", "rate_limit", "timeout", "truncated", "dropped")
ResponderFn = Callable[[list[Turn], dict], Union[str, tuple[str, Union[list[StepLogprobs], None]]]]
Responder = Union[Backend, ResponderFn]


@dataclass
class FaultPlan:
    """Which faults a fake server injects, how often, and a count of what it did inject.

    Each chat request first takes the next entry of `sequence` (a fault kind, or None for a
    normal answer); once `sequence` is used up, it draws one fault with the given rates from a
    `random.Random(seed)`, so the same plan and the same request order inject the same faults.

    Kinds: `server_error` (HTTP 500), `rate_limit` (HTTP 429 with `Retry-After: retry_after`),
    `timeout` (no answer for `timeout_seconds`, then the connection is closed: set it past the
    client's timeout), `truncated` (HTTP 200 with the JSON body cut in half, Content-Length
    matching the cut body), `dropped` (the connection is closed without any response).
    """

    server_error: float = 0.0
    rate_limit: float = 0.0
    timeout: float = 0.0
    truncated: float = 0.0
    dropped: float = 0.0
    seed: int = 0
    retry_after: float = 0.05
    timeout_seconds: float = 1.0
    sequence: Sequence[FaultKind | None] = ()
    injected: Counter = field(default_factory=Counter, init=False)

    def __post_init__(self) -> None:
        rates = self.rates()
        bad = {k: v for k, v in rates.items() if not 0.0 <= v <= 1.0}
        if bad or sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be in [0, 1] and sum to at most 1, got {rates}")
        unknown = [k for k in self.sequence if k is not None and k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds in sequence: {unknown}; choose from {list(FAULT_KINDS)}")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._position = 0

    def rates(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in FAULT_KINDS}

    def draw(self) -> FaultKind | None:
        """The fault for the next chat request (None = answer normally); thread-safe, counted."""
        with self._lock:
            if self._position < len(self.sequence):
                kind = self.sequence[self._position]
                self._position += 1
            else:
                kind, u, edge = None, self._rng.random(), 0.0
                for name, rate in self.rates().items():
                    edge += rate
                    if u < edge:
                        kind = name  # type: ignore[assignment]
                        break
            if kind is not None:
                self.injected[kind] += 1
            return kind

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())


# --------------------------------------------------------------------------- server


class _ItemRejected(Exception):
    """A `Backend` responder answered `status="error"` for the request."""



class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many clients connecting at once must not be refused

    def __init__(self, handle: "ServerHandle") -> None:
        self.handle = handle
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: no request logs
        return

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.handle._track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.handle._track(self.connection, open_=False)
        super().finish()

    # ---- plumbing
    def _send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None, cut: bool = False) -> None:
        data = json.dumps(obj).encode()
        if cut:
            data = data[: len(data) // 2]
        if self._stopping():  # stopping began while this request was served
            return
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Fake-Server", self.server.handle.server_id)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _stopping(self) -> bool:
        """A request read after stopping began (on a keep-alive connection, or on one accepted
        just before the listening socket closed) is dropped unanswered, never served."""
        if not self.server.handle._stopped.is_set():
            return False
        self._drop()
        return True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # ---- routes
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        handle = self.server.handle
        if self._stopping():
            return
        if handle.api == "openai" and self.path.rstrip("/") == "/v1/models":
            self._send_json(200, {"object": "list", "data": [{"id": handle.model, "object": "model"}]})
        elif handle.api == "ollama" and self.path.rstrip("/") == "/api/tags":
            self._send_json(200, {"models": [{"name": handle.model, "model": handle.model}]})
        else:
            self._send_json(404, error_json(handle.api, f"no route GET {self.path}", "not_found"))

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        handle = self.server.handle
        raw = self._read_body()
        if self._stopping():
            return
        chat_path = "/v1/chat/completions" if handle.api == "openai" else "/api/chat"
        if self.path.rstrip("/") != chat_path:
            self._send_json(404, error_json(handle.api, f"no route POST {self.path}", "not_found"))
            return
        handle._enter()
        try:
            self._chat(handle, raw)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. after its timeout)
        finally:
            handle._leave()

    def _chat(self, handle: "ServerHandle", raw: bytes) -> None:
        api = handle.api
        if handle.require_api_key is not None:
            if self.headers.get("Authorization") != f"Bearer {handle.require_api_key}":
                self._send_json(401, error_json(api, "missing or wrong API key", "invalid_api_key"))
                return
        fault = handle.faults.draw() if handle.faults is not None else None
        if fault == "server_error":
            self._send_json(500, error_json(api, "injected internal server error", "server_error"))
            return
        if fault == "rate_limit":
            retry_after = {"Retry-After": f"{handle.faults.retry_after:g}"}  # type: ignore[union-attr]
            self._send_json(429, error_json(api, "injected rate limit", "rate_limit"), retry_after)
            return
        if fault == "timeout":
            handle._stopped.wait(handle.faults.timeout_seconds)  # type: ignore[union-attr]
            self._drop()
            return
        if fault == "dropped":
            self._drop()
            return
        try:
            body = json.loads(raw)
            if api == "ollama" and body.get("stream", True):
                raise DataError("fake ollama server answers only stream=false requests")
            conversation = openai_conversation(body) if api == "openai" else ollama_conversation(body)
            params = request_params(body, api)
        except (ValueError, KeyError, TypeError, AttributeError, DataError) as exc:
            self._send_json(400, error_json(api, f"bad request: {exc}", "invalid_request_error"))
            return
        try:
            answer = handle._respond(conversation, params)
        except _ItemRejected as exc:  # the backend refused this item (bad image, too long): a 400, like vLLM
            self._send_json(400, error_json(api, str(exc), "invalid_request_error"))
            return
        except Exception as exc:  # noqa: BLE001 - any responder failure becomes a 500, like a real server
            self._send_json(500, error_json(api, f"responder raised {type(exc).__name__}: {exc}", "server_error"))
            return
        self._send_json(200, answer, cut=(fault == "truncated"))


class ServerHandle:
    """A running fake server: `.url` to give a backend, `.faults` with injected counts, stats.

    `url` is what the matching backend takes as `base_url`: `http://127.0.0.1:PORT/v1` for
    `openai`, `http://127.0.0.1:PORT` for `ollama`.
    """

    def __init__(self, responder: Responder, api: Api, faults: FaultPlan | None, model: str,
                 require_api_key: str | None, lifetime: float | None, serialize: bool = True) -> None:
        if api not in ("openai", "ollama"):
            raise ValueError(f"api must be 'openai' or 'ollama', got {api!r}")
        self.responder = responder
        self.api: Api = api
        self.faults = faults
        self.model = model
        self.require_api_key = require_api_key
        self.serialize = serialize
        self.server_id = uuid.uuid4().hex  # sent as X-Fake-Server with every answer
        self.chat_requests = 0  # chat requests received (faulty ones included)
        self.answered = 0  # responder calls (a raising responder counts too)
        self.max_in_flight = 0
        self._in_flight = 0
        self._count_lock = threading.Lock()
        self._responder_lock = threading.Lock()
        self._stopped = threading.Event()  # set when stopping begins: no request is served after it
        self._closed = threading.Event()  # set when stopping is done: the port is free
        self._close_lock = threading.Lock()  # close() from the lifetime timer and from `with` at once
        self._connections: set[socket.socket] = set()
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        root = f"http://127.0.0.1:{self.port}"
        self.url = f"{root}/v1" if api == "openai" else root
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-{api}-server-{self.port}", daemon=True)
        self._thread.start()
        self._timer: threading.Timer | None = None
        if lifetime is not None:
            self._timer = threading.Timer(lifetime, self.close)
            self._timer.daemon = True
            self._timer.start()

    # ---- lifecycle
    def close(self) -> None:
        """Stop serving and free the port; returns once both are done (also when another thread,
        e.g. the lifetime timer, is closing it at the same time); safe to call twice."""
        with self._close_lock:
            if self._closed.is_set():
                return
            self._stopped.set()
            if self._timer is not None and threading.current_thread() is not self._timer:
                self._timer.cancel()
            self._server.shutdown()
            self._server.server_close()
            with self._count_lock:  # keep-alive connections would otherwise go on being served
                connections, self._connections = self._connections, set()
            for conn in connections:
                _shut(conn)
            self._closed.set()

    @property
    def running(self) -> bool:
        """False once the server has stopped: it serves nothing and its port is released.

        (It turned False at the *start* of stopping before, so a client that saw it could still be
        served on a keep-alive connection for up to one poll interval: a flaky test under load.)
        """
        return not self._closed.is_set()

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ServerHandle(api={self.api!r}, url={self.url!r}, running={self.running})"

    # ---- used by the handler
    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._count_lock:
            if open_ and self._stopped.is_set():  # accepted just before the listening socket closed
                _shut(conn)
            elif open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _enter(self) -> None:
        with self._count_lock:
            self.chat_requests += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._count_lock:
            self._in_flight -= 1

    def _respond(self, conversation: list[Turn], params: dict) -> dict[str, Any]:
        with self._count_lock:
            self.answered += 1
            number = self.answered
        with self._responder_lock if self.serialize else contextlib.nullcontext():
            if callable(getattr(self.responder, "generate", None)):  # a backend (only its generate is served)
                request = GenerationRequest(
                    id=f"fake-{number}",
                    conversation=conversation,
                    max_new_tokens=params["max_new_tokens"],
                    temperature=params["temperature"],
                    top_p=params["top_p"],
                    seed=params["seed"],
                    top_logprobs=params["top_logprobs"],
                )
                result = self.responder.generate([request])[0]
                if result.status == "error":
                    raise _ItemRejected(result.error or "backend returned status error")
                text, steps = result.text, result.logprobs
                prompt_tokens, generated_tokens = result.prompt_tokens, result.generated_tokens
            else:
                out = self.responder(conversation, params)
                if isinstance(out, str):
                    text, steps = out, None
                elif isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], str):
                    text, steps = out
                else:
                    raise TypeError(f"responder must return str or (str, logprobs), got {type(out).__name__}")
                prompt_tokens = generated_tokens = None
        return answer_json(self.api, self.model, number, text, steps, params, prompt_tokens, generated_tokens)


def _shut(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def serve(
    responder: Responder,
    *,
    api: Api,
    faults: FaultPlan | None = None,
    model: str = "fake",
    require_api_key: str | None = None,
    lifetime: float | None = 600.0,
    serialize: bool = True,
) -> ServerHandle:
    """Start a fake `openai` or `ollama` server on 127.0.0.1 and return its handle.

    Args:
        responder: a `Backend`, or a function `(conversation, params) -> str | (str, logprobs)`.
        api: which wire format to speak.
        faults: seeded fault injection (None: every request is answered).
        model: the model name the server reports.
        require_api_key: if set, chat requests without `Authorization: Bearer <key>` get a 401.
        lifetime: seconds after which the server stops by itself (None: only on close/exit).
        serialize: call the responder under a lock (default), one request at a time.
    """
    return ServerHandle(responder, api, faults, model, require_api_key, lifetime, serialize)

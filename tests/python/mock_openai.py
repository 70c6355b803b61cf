"""A mock OpenAI chat-completions upstream for the SDK tests.

It speaks the real API's wire format closely enough that the gateway cannot
tell the difference:

* ``POST /v1/chat/completions`` answers a ``chat.completion`` object with
  ``usage`` (including ``prompt_tokens_details.cached_tokens`` and
  ``completion_tokens_details.reasoning_tokens``), or with ``stream: true`` a
  chunked ``text/event-stream`` of ``chat.completion.chunk`` events ending in
  ``data: [DONE]``; the usage chunk (``choices: []``) is sent only when
  ``stream_options.include_usage`` is true, and then every other chunk carries
  ``"usage": null``, as OpenAI does.
* A request with ``tools`` (and ``tool_choice`` other than ``"none"``) is
  answered with a call to the first (or the chosen) function, streamed as
  ``delta.tool_calls`` fragments.
* ``POST /v1/embeddings`` answers OpenAI's embeddings list: one
  deterministic vector per input (:func:`embedding_for`), ``dimensions``
  honoured, as float lists or, with ``encoding_format: "base64"`` (what the
  SDKs ask for by default), as base64 of little-endian float32s.
* ``max_tokens`` / ``max_completion_tokens`` smaller than the answer cut it
  short with ``finish_reason: "length"``.
* ``GET /v1/models`` lists the upstream's models.
* Errors are OpenAI error JSON: ``{"error": {"message", "type", "param", "code"}}``.

Each upstream records every request it received and can be told to misbehave
for one upstream model (see :class:`Fault`), so tests stay independent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

# Deterministic usage numbers, so tests can check they arrive unchanged.
CACHED_TOKENS = 4
REASONING_TOKENS = 2
# Length of an embedding when the request names no `dimensions`.
EMBED_DIMS = 8


@dataclass
class Fault:
    """How an upstream misbehaves for one upstream model.

    status:     answer with this HTTP status and an OpenAI error body.
    code/type/message: the error body's fields (defaults suit the status).
    retry_after: a ``Retry-After`` header (seconds) to send with ``status``.
    cut_after:  streaming only: send this many content chunks, then close the
                connection mid-body (no final chunk, no ``[DONE]``).
    stream_error_after: streaming only: send this many content chunks, then an
                in-band ``data: {"error": ...}`` event and end the stream.
    delay:      seconds to wait before answering at all (no headers meanwhile).
    stall_after/stall: streaming only: after this many content chunks, go
                silent for `stall` seconds (headers already sent), then go on.
    times:      misbehave this many times, then answer normally (None: always).
    """

    status: Optional[int] = None
    code: Optional[str] = None
    type: Optional[str] = None
    message: Optional[str] = None
    retry_after: Optional[float] = None
    cut_after: Optional[int] = None
    stream_error_after: Optional[int] = None
    delay: float = 0.0
    stall_after: Optional[int] = None
    stall: float = 0.0
    times: Optional[int] = None
    used: int = field(default=0, init=False)


@dataclass
class Recorded:
    method: str
    path: str  # mock_openai keeps any query string here; the others keep it in `query`
    headers: dict[str, str]  # names lower-cased
    body: Any
    query: str = ""
    # APIs that name the model in the URL (Gemini's models/{model}:method).
    path_model: Optional[str] = None

    @property
    def model(self) -> Optional[str]:
        if self.path_model is not None:
            return self.path_model
        return self.body.get("model") if isinstance(self.body, dict) else None


_DEFAULT_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


def error_body(status: int, message: Optional[str] = None, type_: Optional[str] = None,
               code: Optional[str] = None, param: Optional[str] = None) -> dict:
    d_type, d_code, d_msg = _DEFAULT_ERRORS.get(status, ("invalid_request_error", None, "Error."))
    return {
        "error": {
            "message": message or d_msg,
            "type": type_ or d_type,
            "param": param,
            "code": code if code is not None else d_code,
        }
    }


def reply_text(model: str) -> str:
    """The text every mock answer carries: names the upstream model."""
    return f"Hello from {model}!"


def text_pieces(model: str) -> list[str]:
    """How the answer is split into stream chunks."""
    return ["Hello", " from", f" {model}", "!"]


def _prompt_words(body: dict) -> int:
    n = 0
    for m in body.get("messages") or []:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, str):
            n += len(c.split())
        elif isinstance(c, list):
            for part in c:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    n += len(part["text"].split())
    return n


def usage_for(body: dict, completion_tokens: int) -> dict:
    prompt = 10 + _prompt_words(body)
    completion = completion_tokens + REASONING_TOKENS
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": REASONING_TOKENS,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def answer_limit(limit: Any, pieces: list[str]) -> tuple[list[str], bool]:
    """The pieces a `limit` of output tokens (one per piece) lets through,
    and whether the limit cut the answer short."""
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(pieces):
        return pieces[:limit], True
    return pieces, False


def embedding_for(text: str, dims: int = EMBED_DIMS) -> list[float]:
    """A deterministic vector for `text`. Every value is a multiple of 1/256,
    so it survives a float32 (base64) round trip exactly."""
    digest = hashlib.sha256(text.encode()).digest()
    return [((digest[i % len(digest)] + i) % 256 - 128) / 256 for i in range(dims)]


def embedding_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _tool_call(body: dict) -> Optional[dict]:
    """The function the mock calls, if the request offers tools."""
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    name = None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
    if name is None:
        name = ((tools[0] or {}).get("function") or {}).get("name", "tool")
    return {
        "id": "call_" + uuid.uuid4().hex[:24],
        "type": "function",
        "function": {"name": name, "arguments": json.dumps({"city": "Paris", "unit": "celsius"})},
    }


class MockUpstream:
    """One mock OpenAI-compatible server on 127.0.0.1, in a background thread.

    The other providers' mocks subclass it with a handler of their own
    (`handler_class`) and the same per-test controls."""

    handler_class: type = None  # set below, once _Handler exists
    # What `requests()` lists by default: the chat endpoint.
    chat_path = "/v1/chat/completions"

    def __init__(self, name: str, api_key: Optional[str] = None, models: tuple[str, ...] = ()):
        self.name = name
        self.api_key = api_key
        self.models = list(models)
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._faults: dict[str, Fault] = {}
        upstream = self

        class Handler(self.handler_class):
            mock = upstream

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"mock-{name}", daemon=True,
        )
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # --- per-test control -------------------------------------------------

    def fail(self, model: str, fault: Fault) -> Fault:
        """Misbehave for requests naming upstream `model`."""
        with self._lock:
            self._faults[model] = fault
        return fault

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._requests.clear()

    def requests(self, model: Optional[str] = None, path: Optional[str] = None) -> list[Recorded]:
        """Requests received for upstream `model` (any) at `path` (the chat
        endpoint unless given)."""
        path = path or self.chat_path
        with self._lock:
            return [r for r in self._requests
                    if r.path == path and (model is None or r.model == model)]

    def all_requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self._requests.append(rec)

    def _take_fault(self, model: Optional[str]) -> Optional[Fault]:
        with self._lock:
            f = self._faults.get(model or "")
            if f is None:
                return None
            if f.times is not None and f.used >= f.times:
                return None
            f.used += 1
            return f


class _Handler(BaseHTTPRequestHandler):
    mock: MockUpstream
    protocol_version = "HTTP/1.1"
    server_version = "mock-openai/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    # --- plumbing -------------------------------------------------------

    def _send_json(self, status: int, obj: Any, headers: Optional[dict[str, str]] = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, status: int, fault: Optional[Fault] = None, **kw: Any) -> None:
        headers = {}
        if fault is not None:
            kw.setdefault("message", fault.message)
            kw.setdefault("type_", fault.type)
            kw.setdefault("code", fault.code)
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
        self._send_json(status, error_body(status, **kw), headers)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, obj: Any) -> None:
        payload = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        self._chunk(f"data: {payload}\n\n".encode())

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _authorised(self) -> bool:
        key = self.mock.api_key
        if key is None:
            return True
        return self.headers.get("Authorization") == f"Bearer {key}"

    # --- endpoints ------------------------------------------------------

    def handle_one_request(self) -> None:
        # The gateway hangs up on slow or stalled answers by design; writing
        # to a closed socket is then expected, not a test failure.
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self.mock._record(Recorded("GET", self.path, self._headers(), None))
        if not self._authorised():
            return self._send_error(401)
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": self.mock.name}
                    for m in self.mock.models]
            return self._send_json(200, {"object": "list", "data": data})
        self._send_error(404, message=f"Invalid URL (GET {self.path})", code=None)

    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.mock._record(Recorded("POST", self.path, self._headers(), body))
        path = self.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/embeddings"):
            return self._send_error(404, message=f"Invalid URL (POST {self.path})", code=None)
        if not self._authorised():
            return self._send_error(401)
        if not isinstance(body, dict):
            return self._send_error(400, message="We could not parse the JSON body of your request.")
        if not body.get("model"):
            return self._send_error(400, message="You must provide a model parameter.", param="model")
        if path == "/v1/embeddings":
            return self._embeddings(body)
        if not isinstance(body.get("messages"), list):
            return self._send_error(400, message="Missing required parameter: 'messages'.",
                                    param="messages", code="missing_required_parameter")
        model = body["model"]
        fault = self.mock._take_fault(model)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            return self._send_error(fault.status, fault)
        if body.get("stream"):
            return self._stream(body, model, fault)
        return self._whole(body, model)

    def _embeddings(self, body: dict) -> None:
        model = body["model"]
        inputs = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs
                                       and all(isinstance(i, int) for i in inputs)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return self._send_error(400, message="'input' is a required property", param="input")
        dims = body.get("dimensions", EMBED_DIMS)
        if not isinstance(dims, int) or dims < 1:
            return self._send_error(400, message=f"Invalid value for 'dimensions': {dims!r}.",
                                    param="dimensions")
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            return self._send_error(400, message=f"Invalid value for 'encoding_format': {fmt!r}.",
                                    param="encoding_format")
        fault = self.mock._take_fault(model)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            return self._send_error(fault.status, fault)
        data, tokens = [], 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            tokens += len(item) if isinstance(item, list) else len(item.split())
            vec = embedding_for(text, dims)
            data.append({"object": "embedding", "index": i,
                         "embedding": embedding_base64(vec) if fmt == "base64" else vec})
        self._send_json(200, {"object": "list", "data": data, "model": model,
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _whole(self, body: dict, model: str) -> None:
        call = _tool_call(body)
        if call is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [call],
                       "refusal": None, "annotations": []}
            finish, n = "tool_calls", 12
        else:
            limit = body.get("max_completion_tokens", body.get("max_tokens"))
            pieces, cut = answer_limit(limit, text_pieces(model))
            message = {"role": "assistant", "content": "".join(pieces),
                       "refusal": None, "annotations": []}
            finish, n = ("length" if cut else "stop"), len(pieces)
        self._send_json(200, {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage_for(body, n),
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        })

    def _stream(self, body: dict, model: str, fault: Optional[Fault]) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())

        def chunk(delta: dict, finish: Optional[str] = None) -> dict:
            c = {
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "service_tier": "default", "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                c["usage"] = None
            return c

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        self.end_headers()

        call = _tool_call(body)
        if call is not None:
            args = call["function"]["arguments"]
            pieces = [args[i:i + 8] for i in range(0, len(args), 8)]
            first = {"index": 0, "id": call["id"], "type": "function",
                     "function": {"name": call["function"]["name"], "arguments": ""}}
            deltas = [{"role": "assistant", "content": None, "tool_calls": [first], "refusal": None}]
            deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in pieces]
            finish = "tool_calls"
            n_tokens = len(pieces)
            content_from = 0  # every delta is content
        else:
            limit = body.get("max_completion_tokens", body.get("max_tokens"))
            pieces, cut = answer_limit(limit, text_pieces(model))
            deltas = [{"role": "assistant", "content": "", "refusal": None}]
            deltas += [{"content": p} for p in pieces]
            finish = "length" if cut else "stop"
            n_tokens = len(pieces)
            content_from = 1  # the role-only delta carries no token

        sent_content = 0
        stalled = False
        for i, delta in enumerate(deltas):
            if fault is not None and i >= content_from:
                if fault.stall_after is not None and sent_content >= fault.stall_after and not stalled:
                    stalled = True
                    time.sleep(fault.stall)
                if fault.cut_after is not None and sent_content >= fault.cut_after:
                    # Let the gateway relay what it has, then drop the
                    # connection mid-body: no final chunk, no [DONE].
                    time.sleep(0.2)
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault.stream_error_after is not None and sent_content >= fault.stream_error_after:
                    time.sleep(0.2)
                    self._event(error_body(500, message="The server had an error while processing your request."))
                    self._chunk(b"")
                    return
            self._event(chunk(delta))
            if i >= content_from:
                sent_content += 1
            time.sleep(0.005)
        self._event(chunk({}, finish))
        if include_usage:
            self._event({
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "service_tier": "default", "system_fingerprint": "fp_mock",
                "choices": [], "usage": usage_for(body, n_tokens),
            })
        self._event("[DONE]")
        self._chunk(b"")


MockUpstream.handler_class = _Handler

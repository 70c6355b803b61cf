"""A mock Anthropic Messages API upstream for the SDK tests.

It speaks the real API's wire format closely enough that the gateway cannot
tell the difference (see https://docs.anthropic.com/en/api/messages and
.../messages-streaming):

* ``POST /v1/messages`` with ``x-api-key`` and ``anthropic-version`` answers a
  ``message`` object (content blocks, ``stop_reason``, ``stop_sequence``, and
  ``usage`` with ``input_tokens``, ``cache_read_input_tokens``,
  ``cache_creation_input_tokens``, ``output_tokens``), or with
  ``stream: true`` a chunked ``text/event-stream`` of named events:
  ``message_start``, ``content_block_start`` / ``content_block_delta``
  (``text_delta``, ``thinking_delta`` + ``signature_delta``,
  ``input_json_delta``) / ``content_block_stop``, a ``ping``,
  ``message_delta`` (stop reason and output usage) and ``message_stop``.
* The request is validated the way the API does it, so a translation bug in
  the gateway shows up as the API's own 400: required fields and headers,
  unknown top-level fields, block types, image media types, empty text
  blocks, ``tool_use`` / ``tool_result`` pairing, thinking budgets.
* ``max_tokens`` and ``stop_sequences`` are honoured (``max_tokens`` /
  ``stop_sequence`` stop reasons); ``thinking`` adds a thinking block; tools
  with ``tool_choice`` other than ``none`` are answered with a ``tool_use``.
* ``POST /v1/messages/count_tokens`` and ``GET /v1/models`` answer in the
  API's formats.
* Errors are Anthropic error JSON:
  ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

Like mock_openai, it records every request and misbehaves per upstream model
(:class:`mock_openai.Fault`): an error status, a delay, a stream cut, an
in-band ``event: error``, or a stall.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

from mock_openai import (
    CACHED_TOKENS,
    Fault,
    MockUpstream,
    Recorded,
    _Handler,
    answer_limit,
    text_pieces,
)

API_VERSION = "2023-06-01"
# Deterministic usage numbers, so tests can check they arrive unchanged.
CACHE_WRITE_TOKENS = 3
THINKING_TOKENS = 5
TOOL_TOKENS = 12
THINKING_TEXT = ["Let me think", " about the question."]
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds9fGQHd1q7jBxlYCdYDE"
TOOL_PREAMBLE = "I'll check the weather."
TOOL_INPUT = {"city": "Paris", "unit": "celsius"}

_ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

_TOP_LEVEL = {
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management", "output_config", "inference_geo",
}
_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def error_body(status: int, message: Optional[str] = None, type_: Optional[str] = None) -> dict:
    d_type, d_msg = _ERROR_TYPES.get(status, ("api_error", "Error."))
    return {
        "type": "error",
        "error": {"type": type_ or d_type, "message": message or d_msg},
        "request_id": "req_011" + uuid.uuid4().hex[:21],
    }


def _text_of(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out = []
    for b in content or []:
        if not isinstance(b, dict):
            continue
        if isinstance(b.get("text"), str):
            out.append(b["text"])
        elif b.get("type") == "tool_result":
            out.extend(_text_of(b.get("content")))
    return out


def prompt_words(body: dict) -> int:
    """Words of text in the system prompt and the messages."""
    texts = _text_of(body.get("system"))
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            texts.extend(_text_of(m.get("content")))
    return sum(len(t.split()) for t in texts)


def usage_for(body: dict, output_tokens: int) -> dict:
    """The usage the mock reports for `body`: disjoint counts, as Anthropic's."""
    return {
        "input_tokens": 10 + prompt_words(body),
        "cache_creation_input_tokens": CACHE_WRITE_TOKENS,
        "cache_read_input_tokens": CACHED_TOKENS,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _invalid(message: str) -> tuple[int, dict]:
    return 400, error_body(400, message)


def validate(body: Any) -> Optional[tuple[int, dict]]:
    """The API's 400 for a request it would refuse, or None."""
    if not isinstance(body, dict):
        return _invalid("There was an issue with your request body: it must be a JSON object.")
    for k in body:
        if k not in _TOP_LEVEL:
            return _invalid(f"{k}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _invalid("model: Field required")
    mt = body.get("max_tokens")
    if not isinstance(mt, int) or isinstance(mt, bool):
        return _invalid("max_tokens: Field required")
    if mt < 1:
        return _invalid("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list):
        return _invalid("messages: Field required")
    if not messages:
        return _invalid("messages: at least one message is required")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        return _invalid("system: Input should be a valid string")
    temp = body.get("temperature")
    if temp is not None and not (0 <= temp <= 1):
        return _invalid("temperature: Input should be less than or equal to 1")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            return _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = m.get("content")
        if isinstance(content, str):
            if not content and i != len(messages) - 1:
                return _invalid(f"messages.{i}: all messages must have non-empty content except "
                                "for the optional final assistant message")
            continue
        if not isinstance(content, list):
            return _invalid(f"messages.{i}.content: Input should be a valid list")
        if not content:
            return _invalid(f"messages.{i}: all messages must have non-empty content except "
                            "for the optional final assistant message")
        for j, b in enumerate(content):
            kind = b.get("type") if isinstance(b, dict) else None
            where = f"messages.{i}.content.{j}"
            if kind == "text":
                if not isinstance(b.get("text"), str):
                    return _invalid(f"{where}.text.text: Field required")
                if not b["text"]:
                    return _invalid("messages: text content blocks must be non-empty")
            elif kind == "image":
                src = b.get("source") or {}
                if src.get("type") == "base64":
                    if src.get("media_type") not in _MEDIA_TYPES:
                        return _invalid(f"{where}.image.source.base64.media_type: Input should be "
                                        "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
                    if not isinstance(src.get("data"), str) or not src["data"]:
                        return _invalid(f"{where}.image.source.base64.data: Field required")
                elif src.get("type") == "url":
                    if not isinstance(src.get("url"), str):
                        return _invalid(f"{where}.image.source.url.url: Field required")
                else:
                    return _invalid(f"{where}.image.source: Input tag '{src.get('type')}' found using "
                                    "'type' does not match any of the expected tags: 'base64', 'url'")
                if m["role"] != "user":
                    return _invalid(f"{where}: image blocks are only allowed in user messages")
            elif kind == "tool_use":
                if m["role"] != "assistant":
                    return _invalid(f"{where}: tool_use blocks are only allowed in assistant messages")
                if not b.get("id") or not b.get("name") or not isinstance(b.get("input"), dict):
                    return _invalid(f"{where}.tool_use: `id`, `name` and an object `input` are required")
            elif kind == "tool_result":
                if m["role"] != "user":
                    return _invalid(f"{where}: tool_result blocks are only allowed in user messages")
                if not b.get("tool_use_id"):
                    return _invalid(f"{where}.tool_result.tool_use_id: Field required")
            elif kind in ("thinking", "redacted_thinking", "document"):
                pass
            else:
                return _invalid(f"{where}: Input tag '{kind}' found using 'type' does not match any "
                                "of the expected tags")
    # Every tool_use is answered by a tool_result at the start of the next
    # message, and every tool_result answers a tool_use of the one before.
    for i, m in enumerate(messages):
        blocks = m["content"] if isinstance(m["content"], list) else []
        results = [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]
        if results:
            prev = messages[i - 1] if i > 0 else {}
            prev_blocks = prev.get("content") if isinstance(prev.get("content"), list) else []
            uses = {b.get("id") for b in prev_blocks if b.get("type") == "tool_use"}
            for rid in results:
                if rid not in uses:
                    return _invalid(f"messages.{i}.content.0: unexpected `tool_use_id` found in "
                                    f"`tool_result` blocks: {rid}. Each `tool_result` block must have "
                                    "a corresponding `tool_use` block in the previous message.")
            leading = 0
            while leading < len(blocks) and blocks[leading].get("type") == "tool_result":
                leading += 1
            if leading != len(results):
                return _invalid(f"messages.{i}: `tool_result` blocks must come first in the user "
                                "message, before any other content")
        uses = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
        if uses:
            nxt = messages[i + 1] if i + 1 < len(messages) else None
            answered = set()
            if nxt is not None and isinstance(nxt.get("content"), list):
                answered = {b.get("tool_use_id") for b in nxt["content"] if b.get("type") == "tool_result"}
            missing = [u for u in uses if u not in answered]
            if nxt is not None and missing:
                return _invalid(f"messages.{i + 1}: `tool_use` ids were found without `tool_result` "
                                f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                                "must have a corresponding `tool_result` block in the next message.")
    for i, t in enumerate(body.get("tools") or []):
        if not isinstance(t, dict) or not t.get("name"):
            return _invalid(f"tools.{i}.custom.name: Field required")
        if t.get("type") in (None, "custom"):
            schema = t.get("input_schema")
            if not isinstance(schema, dict):
                return _invalid(f"tools.{i}.custom.input_schema: Field required")
            if schema.get("type") != "object":
                return _invalid(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return _invalid("tool_choice: Input tag does not match any of the expected tags: "
                            "'auto', 'any', 'tool', 'none'")
        if choice["type"] == "tool" and not choice.get("name"):
            return _invalid("tool_choice.tool.name: Field required")
        if not body.get("tools") and choice["type"] in ("any", "tool"):
            return _invalid("tool_choice may only be specified while providing tools.")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return _invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if mt <= budget:
            return _invalid("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
                            "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
                            "extended-thinking#max-tokens-and-context-window-size")
        if temp is not None and temp != 1:
            return _invalid("`temperature` may only be set to 1 when thinking is enabled. Please consult "
                            "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
                            "extended-thinking#feature-compatibility")
        if choice is not None and choice.get("type") in ("any", "tool"):
            return _invalid("Thinking may not be enabled when tool_choice forces tool use.")
    return None


@dataclass
class Block:
    kind: str  # text | thinking | tool_use
    pieces: list[str]
    tool: Optional[dict] = None  # tool_use: id, name, input

    def whole(self) -> dict:
        if self.kind == "text":
            return {"type": "text", "text": "".join(self.pieces)}
        if self.kind == "thinking":
            return {"type": "thinking", "thinking": "".join(self.pieces), "signature": SIGNATURE}
        return {"type": "tool_use", **(self.tool or {})}

    def start(self) -> dict:
        if self.kind == "text":
            return {"type": "text", "text": ""}
        if self.kind == "thinking":
            return {"type": "thinking", "thinking": "", "signature": ""}
        return {"type": "tool_use", "id": self.tool["id"], "name": self.tool["name"], "input": {}}

    def delta(self, piece: str) -> dict:
        if self.kind == "text":
            return {"type": "text_delta", "text": piece}
        if self.kind == "thinking":
            return {"type": "thinking_delta", "thinking": piece}
        return {"type": "input_json_delta", "partial_json": piece}


@dataclass
class Plan:
    blocks: list[Block]
    stop_reason: str
    stop_sequence: Optional[str]
    output_tokens: int


def plan(body: dict, model: str) -> Plan:
    """What the mock answers to `body`."""
    blocks: list[Block] = []
    tokens = 0
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        blocks.append(Block("thinking", list(THINKING_TEXT)))
        tokens += THINKING_TOKENS
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    if tools and choice.get("type") != "none":
        name = choice.get("name") if choice.get("type") == "tool" else tools[0].get("name")
        if choice.get("type") == "auto":
            blocks.append(Block("text", [TOOL_PREAMBLE]))
        args = json.dumps(TOOL_INPUT)
        blocks.append(Block("tool_use", [args[i:i + 8] for i in range(0, len(args), 8)],
                            {"id": "toolu_01" + uuid.uuid4().hex[:22], "name": name, "input": TOOL_INPUT}))
        return Plan(blocks, "tool_use", None, tokens + TOOL_TOKENS)
    pieces, cut = answer_limit(body.get("max_tokens"), text_pieces(model))
    stop_reason, stop_sequence = ("max_tokens" if cut else "end_turn"), None
    text = ""
    for i, p in enumerate(pieces):
        hit = next((s for s in body.get("stop_sequences") or [] if s and s in text + p), None)
        if hit is not None:
            keep = (text + p)[: (text + p).index(hit)]
            pieces = pieces[:i] + ([keep[len(text):]] if keep[len(text):] else [])
            stop_reason, stop_sequence = "stop_sequence", hit
            break
        text += p
    blocks.append(Block("text", pieces))
    return Plan(blocks, stop_reason, stop_sequence, tokens + len(pieces))


class MockAnthropic(MockUpstream):
    """One mock Anthropic API on 127.0.0.1, in a background thread."""

    chat_path = "/v1/messages"

    @property
    def base_url(self) -> str:
        # Anthropic's own base URL has no /v1; the client adds /v1/messages.
        return f"http://127.0.0.1:{self.port}"


class _AnthropicHandler(_Handler):
    mock: MockAnthropic
    server_version = "mock-anthropic/1.0"

    def _send_json(self, status: int, obj: Any, headers: Optional[dict[str, str]] = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_011" + uuid.uuid4().hex[:21])
        self.send_header("anthropic-organization-id", "00000000-0000-0000-0000-000000000000")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, status: int, fault: Optional[Fault] = None, message: Optional[str] = None,
                    type_: Optional[str] = None) -> None:
        headers = {}
        if fault is not None:
            message = message or fault.message
            type_ = type_ or fault.type
            if fault.retry_after is not None:
                headers["retry-after"] = str(fault.retry_after)
        if status == 529:
            headers.setdefault("x-should-retry", "true")
        self._send_json(status, error_body(status, message, type_), headers)

    def _sse(self, name: str, obj: dict) -> None:
        self._chunk(f"event: {name}\ndata: {json.dumps(obj, separators=(',', ':'))}\n\n".encode())

    def _record_request(self, method: str, body: Any) -> str:
        parts = urlsplit(self.path)
        self.mock._record(Recorded(method, parts.path, self._headers(), body, query=parts.query))
        return parts.path.rstrip("/")

    def _authorised(self) -> bool:
        key = self.mock.api_key
        return key is None or self.headers.get("x-api-key") == key

    def do_GET(self) -> None:  # noqa: N802
        path = self._record_request("GET", None)
        if not self._authorised():
            return self._send_error(401)
        if path == "/v1/models":
            data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                     "created_at": "2025-09-29T00:00:00Z"} for m in self.mock.models]
            return self._send_json(200, {"data": data, "has_more": False,
                                         "first_id": data[0]["id"] if data else None,
                                         "last_id": data[-1]["id"] if data else None})
        self._send_error(404, message=f"Not Found: GET {path}")

    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = self._record_request("POST", body)
        if path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return self._send_error(404, message=f"Not Found: POST {path}")
        if not self._authorised():
            return self._send_error(401)
        if not self.headers.get("anthropic-version"):
            return self._send_error(400, message="anthropic-version: header is required")
        if path == "/v1/messages/count_tokens":
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return self._send_error(400, message="messages: Field required")
            return self._send_json(200, {"input_tokens": 10 + prompt_words(body)})
        refusal = validate(body)
        if refusal is not None:
            return self._send_json(*refusal)
        model = body["model"]
        fault = self.mock._take_fault(model)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            return self._send_error(fault.status, fault)
        p = plan(body, model)
        if body.get("stream"):
            return self._stream(body, model, p, fault)
        self._send_json(200, {
            "id": "msg_01" + uuid.uuid4().hex[:22],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [b.whole() for b in p.blocks],
            "stop_reason": p.stop_reason,
            "stop_sequence": p.stop_sequence,
            "usage": usage_for(body, p.output_tokens),
        })

    def _stream(self, body: dict, model: str, p: Plan, fault: Optional[Fault]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", "req_011" + uuid.uuid4().hex[:21])
        self.end_headers()

        start_usage = usage_for(body, 1)
        self._sse("message_start", {"type": "message_start", "message": {
            "id": "msg_01" + uuid.uuid4().hex[:22], "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": start_usage}})
        sent = 0  # content deltas sent
        stalled = False
        for index, block in enumerate(p.blocks):
            self._sse("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": block.start()})
            if index == 0:
                self._sse("ping", {"type": "ping"})
            for piece in block.pieces:
                if fault is not None:
                    if fault.stall_after is not None and sent >= fault.stall_after and not stalled:
                        stalled = True
                        time.sleep(fault.stall)
                    if fault.cut_after is not None and sent >= fault.cut_after:
                        # Let the gateway relay what it has, then drop the
                        # connection mid-body: no message_delta, no message_stop.
                        time.sleep(0.2)
                        self.close_connection = True
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                    if fault.stream_error_after is not None and sent >= fault.stream_error_after:
                        time.sleep(0.2)
                        err = error_body(529)
                        err.pop("request_id")
                        self._sse("error", err)
                        self._chunk(b"")
                        return
                self._sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": block.delta(piece)})
                sent += 1
                time.sleep(0.005)
            if block.kind == "thinking":
                self._sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "signature_delta", "signature": SIGNATURE}})
            self._sse("content_block_stop", {"type": "content_block_stop", "index": index})
        self._sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": p.stop_reason, "stop_sequence": p.stop_sequence},
                                    "usage": {"output_tokens": p.output_tokens}})
        self._sse("message_stop", {"type": "message_stop"})
        self._chunk(b"")


MockAnthropic.handler_class = _AnthropicHandler

"""A mock Google Gemini API (Generative Language API, v1beta) upstream for
the SDK tests.

It speaks the real API's wire format closely enough that the gateway cannot
tell the difference (see https://ai.google.dev/api/generate-content and
https://ai.google.dev/api/embeddings):

* ``POST /v1beta/models/{model}:generateContent`` answers a
  ``GenerateContentResponse``: ``candidates`` (``content.parts``,
  ``finishReason``, ``index``), ``usageMetadata`` (``promptTokenCount``,
  which includes ``cachedContentTokenCount``; ``candidatesTokenCount``;
  ``thoughtsTokenCount``, which it does not; ``totalTokenCount``),
  ``modelVersion`` and ``responseId``.
* ``:streamGenerateContent?alt=sse`` answers the same objects as SSE
  ``data:`` events framed with CRLF, running usage on each, the finish
  reason on the last, and no ``[DONE]``. Without ``alt=sse`` it answers a
  JSON array, as the real API does.
* ``:batchEmbedContents`` / ``:embedContent`` answer deterministic vectors
  (:func:`mock_openai.embedding_for`) of ``outputDimensionality`` values;
  ``:countTokens`` counts; ``GET /v1beta/models`` lists.
* The key is taken from ``x-goog-api-key`` (or ``?key=``): missing is 403
  ``PERMISSION_DENIED``, wrong is 400 ``INVALID_ARGUMENT`` with reason
  ``API_KEY_INVALID``, as Google answers.
* The request is validated the way the API does it, so a translation bug in
  the gateway shows up as the API's own 400: unknown fields (the API refuses
  OpenAI's names), roles, empty parts, parts with more than one kind of
  data, function call / function response turn order.
* ``maxOutputTokens`` and ``stopSequences`` are honoured (``MAX_TOKENS`` /
  ``STOP``); tools with ``functionCallingConfig.mode`` other than ``NONE``
  are answered with a ``functionCall`` part that carries a
  ``thoughtSignature``.
* Errors are Google's JSON: ``{"error": {"code", "message", "status"}}``.

Like mock_openai, it records every request (the model is read from the URL)
and misbehaves per upstream model (:class:`GeminiFault`): an error status, a
delay, a prompt blocked by safety (reported with 200), a stream cut, an
in-band error event, or a stall.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

from mock_openai import (
    CACHED_TOKENS,
    EMBED_DIMS,
    Fault,
    MockUpstream,
    Recorded,
    _Handler,
    answer_limit,
    embedding_for,
    text_pieces,
)

# Deterministic usage numbers, so tests can check they arrive unchanged.
THOUGHTS_TOKENS = 2
TOOL_TOKENS = 12
TOOL_ARGS = {"city": "Paris", "unit": "celsius"}
THOUGHT_SIGNATURE = "CiQB0e2Kb3VudGVyLXNpZ25hdHVyZQ=="

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

_REQUEST_FIELDS = {"contents", "systemInstruction", "tools", "toolConfig", "safetySettings",
                   "generationConfig", "cachedContent"}
_GENERATION_FIELDS = {
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
    "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
    "thinkingConfig", "mediaResolution",
}
_PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
              "codeExecutionResult"}
_PART_FIELDS = _PART_DATA | {"thought", "thoughtSignature", "videoMetadata", "partMetadata"}


@dataclass
class GeminiFault(Fault):
    """A :class:`mock_openai.Fault`, and `blocked`: answer 200 with the
    prompt blocked by safety (``promptFeedback.blockReason``), no candidates."""

    blocked: bool = False


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _known(key: str, names: set[str]) -> bool:
    """The API parses proto JSON, which takes a field's camelCase or
    snake_case name; the mock reads what the gateway sends (camelCase) and
    refuses only names that are neither."""
    return key in names or _camel(key) in names


def error_body(status: int, message: Optional[str] = None, status_name: Optional[str] = None,
               details: Optional[list] = None) -> dict:
    err = {
        "code": status,
        "message": message or _DEFAULT_MESSAGES.get(status, "Error."),
        "status": status_name or _STATUS.get(status, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return {"error": err}


def _unknown(name: str, where: str = "") -> str:
    at = f" at '{where}'" if where else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'


def prompt_words(body: dict) -> int:
    """Words of text in the system instruction and the contents."""
    n = 0
    contents = list(body.get("contents") or [])
    if isinstance(body.get("systemInstruction"), dict):
        contents.append(body["systemInstruction"])
    for c in contents:
        for part in (c or {}).get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                n += len(part["text"].split())
    return n


def usage_for(body: dict, candidates: int, thoughts: int = THOUGHTS_TOKENS) -> dict:
    """The `usageMetadata` the mock reports: the prompt count includes the
    cached tokens, thoughts are counted beside the candidates."""
    prompt = 10 + prompt_words(body) + CACHED_TOKENS
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "cachedContentTokenCount": CACHED_TOKENS,
        "thoughtsTokenCount": thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": CACHED_TOKENS}],
    }


def validate(body: Any) -> Optional[str]:
    """The API's INVALID_ARGUMENT message for a request it would refuse."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Expected an object."
    for k in body:
        if not _known(k, _REQUEST_FIELDS):
            return _unknown(k)
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified\n"
    for k in body.get("generationConfig") or {}:
        if not _known(k, _GENERATION_FIELDS):
            return _unknown(k, "generation_config")
    system = body.get("systemInstruction")
    all_contents = [("system_instruction", system)] if system is not None else []
    all_contents += [(f"contents[{i}]", c) for i, c in enumerate(contents)]
    for where, c in all_contents:
        if not isinstance(c, dict):
            return f"* GenerateContentRequest.{where}: must be an object\n"
        for k in c:
            if k not in ("role", "parts"):
                return _unknown(k, where)
        if where != "system_instruction" and c.get("role") not in ("user", "model"):
            return "Please use a valid role: user, model."
        parts = c.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n"
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                return f"* GenerateContentRequest.{where}.parts[{j}]: must be an object\n"
            for k in part:
                if not _known(k, _PART_FIELDS):
                    return _unknown(k, f"{where}.parts[{j}]")
            data = [k for k in part if _known(k, _PART_DATA)]
            if len(data) != 1:
                return (f"* GenerateContentRequest.{where}.parts[{j}].data: required oneof field "
                        "'data' must have one initialized field\n")
            if "inlineData" in part:
                inline = part["inlineData"]
                if not inline.get("mimeType"):
                    return f"* GenerateContentRequest.{where}.parts[{j}].inline_data.mime_type: missing\n"
                try:
                    base64.b64decode(inline.get("data") or "", validate=True)
                except (binascii.Error, ValueError):
                    return _unknown("data", f"{where}.parts[{j}].inline_data") + " Base64 decoding failed."
            if "functionCall" in part and not (part["functionCall"] or {}).get("name"):
                return f"* GenerateContentRequest.{where}.parts[{j}].function_call.name: Name cannot be empty.\n"
            if "functionResponse" in part:
                fr = part["functionResponse"] or {}
                if not fr.get("name"):
                    return f"* GenerateContentRequest.{where}.parts[{j}].function_response.name: Name cannot be empty.\n"
                if not isinstance(fr.get("response"), dict):
                    return f"* GenerateContentRequest.{where}.parts[{j}].function_response.response: must be an object\n"
    # Function calls and responses come in turns: a call turn after a user
    # (or response) turn, then a response turn with as many responses.
    for i, c in enumerate(contents):
        calls = [p for p in c["parts"] if "functionCall" in p]
        responses = [p for p in c["parts"] if "functionResponse" in p]
        if calls:
            prev = contents[i - 1] if i > 0 else None
            if prev is None or prev.get("role") != "user":
                return ("Please ensure that function call turn comes immediately after a user turn "
                        "or after a function response turn.")
            nxt = contents[i + 1] if i + 1 < len(contents) else None
            if nxt is not None:
                got = [p for p in nxt["parts"] if "functionResponse" in p]
                if not got:
                    return "Please ensure that function response turn comes immediately after a function call turn."
                if len(got) != len(calls):
                    return ("Please ensure that the number of function response parts is equal to the "
                            "number of function call parts of the function call turn.")
        if responses:
            prev = contents[i - 1] if i > 0 else None
            if prev is None or not any("functionCall" in p for p in prev["parts"]):
                return "Please ensure that function response turn comes immediately after a function call turn."
    for i, tool in enumerate(body.get("tools") or []):
        for j, decl in enumerate((tool or {}).get("functionDeclarations") or []):
            if not decl.get("name"):
                return f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Name cannot be empty.\n"
            if "parameters" in decl and "parametersJsonSchema" in decl:
                return (f"* GenerateContentRequest.tools[{i}].function_declarations[{j}]: parameters and "
                        "parameters_json_schema cannot both be set.\n")
    return None


@dataclass
class Plan:
    parts: list[dict]  # one streamed event per part
    finish: str
    candidates_tokens: int


def plan(body: dict, model: str) -> Plan:
    """What the mock answers to `body`."""
    decls = [d for t in body.get("tools") or [] for d in (t or {}).get("functionDeclarations") or []]
    fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if decls and fcc.get("mode", "AUTO") != "NONE":
        allowed = fcc.get("allowedFunctionNames") or []
        name = allowed[0] if allowed else decls[0]["name"]
        part = {"functionCall": {"name": name, "args": TOOL_ARGS}, "thoughtSignature": THOUGHT_SIGNATURE}
        return Plan([part], "STOP", TOOL_TOKENS)
    config = body.get("generationConfig") or {}
    pieces, cut = answer_limit(config.get("maxOutputTokens"), text_pieces(model))
    text = ""
    for i, p in enumerate(pieces):
        hit = next((s for s in config.get("stopSequences") or [] if s and s in text + p), None)
        if hit is not None:
            keep = (text + p)[: (text + p).index(hit)][len(text):]
            pieces = pieces[:i] + ([keep] if keep else [])
            break
        text += p
    return Plan([{"text": p} for p in pieces], "MAX_TOKENS" if cut else "STOP", len(pieces))


_PATH = re.compile(r"^/v1beta/(models/[^/:]+|tunedModels/[^/:]+):([A-Za-z]+)$")


class MockGemini(MockUpstream):
    """One mock Gemini API on 127.0.0.1, in a background thread.

    `requests(model)` lists the generate calls (whole and streamed) for an
    upstream model; `requests(model, method="batchEmbedContents")` others."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1beta"

    def requests(self, model: Optional[str] = None, path: Optional[str] = None,
                 method: Optional[str] = None) -> list[Recorded]:
        methods = (method,) if method else ("generateContent", "streamGenerateContent")
        with self._lock:
            return [r for r in self._requests
                    if (path is None or r.path == path)
                    and r.path.rsplit(":", 1)[-1] in methods
                    and (model is None or r.model == model)]


class _GeminiHandler(_Handler):
    mock: MockGemini
    server_version = "mock-gemini/1.0"

    def _send_json(self, status: int, obj: Any, headers: Optional[dict[str, str]] = None) -> None:
        data = json.dumps(obj, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Vary", "Origin, X-Origin, Referer")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, status: int, fault: Optional[Fault] = None, message: Optional[str] = None,
                    details: Optional[list] = None) -> None:
        headers = {}
        if fault is not None:
            message = message or fault.message
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
        self._send_json(status, error_body(status, message, details=details), headers)

    def _data(self, obj: Any) -> None:
        self._chunk(f"data: {json.dumps(obj, separators=(',', ':'))}\r\n\r\n".encode())

    def _record_request(self, method: str, body: Any) -> tuple[str, dict]:
        parts = urlsplit(self.path)
        m = _PATH.match(parts.path)
        model = m.group(1).split("/", 1)[1] if m else None
        self.mock._record(Recorded(method, parts.path, self._headers(), body, query=parts.query,
                                   path_model=model))
        return parts.path, parse_qs(parts.query)

    def _key_error(self, query: dict) -> bool:
        """Answers the API's error for a missing or wrong key; False if the
        key is good."""
        want = self.mock.api_key
        if want is None:
            return False
        got = self.headers.get("x-goog-api-key") or (query.get("key") or [None])[0]
        if got is None:
            self._send_error(403, message="Method doesn't allow unregistered callers (callers without "
                             "established identity). Please use API Key or other form of API consumer "
                             "identity to call this API.")
            return True
        if got != want:
            self._send_error(400, message="API key not valid. Please pass a valid API key.", details=[{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])
            return True
        return False

    def do_GET(self) -> None:  # noqa: N802
        path, query = self._record_request("GET", None)
        if self._key_error(query):
            return
        if path.rstrip("/") == "/v1beta/models":
            models = [{"name": f"models/{m}", "version": "001", "displayName": m,
                       "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                       "supportedGenerationMethods": ["generateContent", "countTokens"]}
                      for m in self.mock.models]
            return self._send_json(200, {"models": models})
        self._send_error(404, message=f"Method not found: GET {path}")

    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path, query = self._record_request("POST", body)
        m = _PATH.match(path)
        if m is None:
            return self._send_error(404, message=f"Method not found: POST {path}")
        if self._key_error(query):
            return
        resource, method = m.group(1), m.group(2)
        model = resource.split("/", 1)[1]
        if not isinstance(body, dict):
            return self._send_error(400, message="Invalid JSON payload received.")
        if method in ("generateContent", "streamGenerateContent"):
            why = validate(body)
            if why is not None:
                return self._send_error(400, message=why)
            fault = self.mock._take_fault(model)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.status is not None:
                return self._send_error(fault.status, fault)
            blocked = isinstance(fault, GeminiFault) and fault.blocked
            if method == "generateContent":
                return self._whole(body, model, blocked)
            return self._stream(body, model, fault, blocked, sse=query.get("alt") == ["sse"])
        if method == "countTokens":
            return self._send_json(200, {"totalTokens": 10 + prompt_words(body)})
        if method in ("batchEmbedContents", "embedContent"):
            return self._embed(body, resource, model, method)
        self._send_error(404, message=f"Method not found: {method}")

    # --- generate ------------------------------------------------------

    def _response(self, body: dict, model: str, parts: list[dict], finish: Optional[str],
                  usage: dict, response_id: str) -> dict:
        candidate: dict = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                "responseId": response_id}

    def _blocked(self, body: dict, model: str) -> dict:
        prompt = 10 + prompt_words(body)
        return {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "LOW"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
            ]},
            "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:23],
        }

    def _whole(self, body: dict, model: str, blocked: bool) -> None:
        if blocked:
            return self._send_json(200, self._blocked(body, model))
        p = plan(body, model)
        text = "".join(part["text"] for part in p.parts if "text" in part)
        parts = [{"text": text}] if text else [part for part in p.parts if "text" not in part]
        self._send_json(200, self._response(body, model, parts, p.finish,
                                            usage_for(body, p.candidates_tokens), uuid.uuid4().hex[:23]))

    def _stream(self, body: dict, model: str, fault: Optional[Fault], blocked: bool, sse: bool) -> None:
        p = plan(body, model)
        rid = uuid.uuid4().hex[:23]
        if not sse:
            # Without alt=sse the API streams one JSON array.
            events = [self._response(body, model, [part], p.finish if i == len(p.parts) - 1 else None,
                                     usage_for(body, i + 1), rid) for i, part in enumerate(p.parts)]
            return self._send_json(200, events)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Disposition", "attachment")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Vary", "Origin, X-Origin, Referer")
        self.end_headers()
        if blocked:
            self._data(self._blocked(body, model))
            self._chunk(b"")
            return
        stalled = False
        for i, part in enumerate(p.parts):
            last = i == len(p.parts) - 1
            if fault is not None:
                if fault.stall_after is not None and i >= fault.stall_after and not stalled:
                    stalled = True
                    time.sleep(fault.stall)
                if fault.cut_after is not None and i >= fault.cut_after:
                    time.sleep(0.2)
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault.stream_error_after is not None and i >= fault.stream_error_after:
                    time.sleep(0.2)
                    self._data(error_body(500))
                    self._chunk(b"")
                    return
            tokens = p.candidates_tokens if last else i + 1
            self._data(self._response(body, model, [part], p.finish if last else None,
                                      usage_for(body, tokens), rid))
            time.sleep(0.005)
        self._chunk(b"")

    # --- embeddings ----------------------------------------------------

    def _embed(self, body: dict, resource: str, model: str, method: str) -> None:
        requests = body.get("requests") if method == "batchEmbedContents" else [dict(body, model=resource)]
        if not isinstance(requests, list) or not requests:
            return self._send_error(400, message="* BatchEmbedContentsRequest.requests: requests is not specified\n")
        vectors = []
        for i, r in enumerate(requests):
            if r.get("model") != resource:
                return self._send_error(400, message=f"* BatchEmbedContentsRequest.requests[{i}].model: "
                                        f"model in the request ({r.get('model')}) does not match the model "
                                        f"in the URL ({resource})\n")
            parts = (r.get("content") or {}).get("parts") or []
            texts = [p.get("text") for p in parts if isinstance(p, dict)]
            if not texts or not all(isinstance(t, str) for t in texts):
                return self._send_error(400, message=f"* BatchEmbedContentsRequest.requests[{i}].content: "
                                        "contents is not specified\n")
            dims = r.get("outputDimensionality", EMBED_DIMS)
            if not isinstance(dims, int) or dims < 1:
                return self._send_error(400, message="* outputDimensionality must be positive\n")
            vectors.append(embedding_for(" ".join(texts), dims))
        fault = self.mock._take_fault(model)
        if fault is not None and fault.status is not None:
            return self._send_error(fault.status, fault)
        if method == "embedContent":
            return self._send_json(200, {"embedding": {"values": vectors[0]}})
        self._send_json(200, {"embeddings": [{"values": v} for v in vectors]})


MockGemini.handler_class = _GeminiHandler

"""The three upstream channel types behind the gateway, described once so that
a test can be parametrised over them (the `upstream` fixture in conftest.py).

An :class:`Upstream` knows the routes conftest.py configures for its type,
the mock that serves them, and how to read what that mock received in its
own wire format (the system prompt, an image, a tool result, ...), and what
usage each client API must report for the mock's deterministic counts. The
assertions stay in the tests; this module only translates.

Routes, per type (`via-<type>[-<purpose>]`), all paid from Credit:

=========  ============================================================
main       `via-<type>`: the one target
bad        `via-<type>-400`: the target, then a backup on mock `backup`
           (told to answer 400: the backup must never be called)
down       `via-<type>-down`: the target, then a backup on mock `backup`
           (told to fail with 5xx: the backup must answer)
sfail      `via-<type>-sfail`: the same, for a stream cut before its
           first token
cut        `via-<type>-cut`: the one target (told to cut its stream)
=========  ============================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import mock_anthropic
import mock_gemini
import mock_openai
from mock_openai import CACHED_TOKENS, REASONING_TOKENS, Fault, MockUpstream, Recorded

KINDS = ("openai", "anthropic", "gemini")
PURPOSES = ("main", "bad", "down", "sfail", "cut")
# Purposes whose route has a backup target on the `backup` mock.
WITH_BACKUP = ("bad", "down", "sfail")

MOCK_KEY = "sk-mock-upstream-secret-0123456789"
MOCK_ANTHROPIC_KEY = "sk-ant-api03-mock-upstream-secret-0123456789"
MOCK_GEMINI_KEY = "AIzaSyMock-upstream-secret-0123456789"

# Embeddings routes: (route, channel, upstream model).
EMBED_ROUTES = {
    "openai": ("embed-openai", "primary", "up-embed-small"),
    "gemini": ("embed-gemini", "gem", "gemini-embedding-001"),
}

_MODEL_PREFIX = {"openai": "up-via-openai", "anthropic": "claude-via-anthropic", "gemini": "gemini-via"}
CHANNELS = {"openai": "primary", "anthropic": "anth", "gemini": "gem"}


def route_name(kind: str, purpose: str = "main") -> str:
    return f"via-{kind}" if purpose == "main" else f"via-{kind}-{'400' if purpose == 'bad' else purpose}"


def model_name(kind: str, purpose: str = "main") -> str:
    base = _MODEL_PREFIX[kind]
    return base if purpose == "main" else f"{base}-{'400' if purpose == 'bad' else purpose}"


def backup_model(kind: str, purpose: str) -> str:
    return f"up-via-{kind}-{purpose}-b"


def routes_toml() -> str:
    """The `[[routes]]` of every type and purpose, and the embeddings routes."""
    out = []
    for kind in KINDS:
        for purpose in PURPOSES:
            targets = [f'{{ channel = "{CHANNELS[kind]}", model = "{model_name(kind, purpose)}" }}']
            if purpose in WITH_BACKUP:
                targets.append(f'{{ channel = "backup", model = "{backup_model(kind, purpose)}" }}')
            out.append(f'[[routes]]\nmodel = "{route_name(kind, purpose)}"\ntargets = [{", ".join(targets)}]\n')
    for route, channel, model in EMBED_ROUTES.values():
        out.append(f'[[routes]]\nmodel = "{route}"\ntargets = [{{ channel = "{channel}", model = "{model}" }}]\n')
    return "\n".join(out)


ROUTES = {route_name(k, p) for k in KINDS for p in PURPOSES} | {r for r, _, _ in EMBED_ROUTES.values()}


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [p["text"] for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]


@dataclass
class Upstream:
    kind: str
    mock: MockUpstream
    channel: str

    # --- routes ----------------------------------------------------------

    def route(self, purpose: str = "main") -> str:
        return route_name(self.kind, purpose)

    def model(self, purpose: str = "main") -> str:
        """The upstream model id, which is also the model that answers."""
        return model_name(self.kind, purpose)

    def requests(self, purpose: str = "main") -> list[Recorded]:
        return self.mock.requests(self.model(purpose))

    def __str__(self) -> str:
        return self.kind

    # --- per type: overridden below ---------------------------------------

    def auth(self, rec: Recorded) -> Optional[str]:
        """The credential the gateway sent upstream."""
        raise NotImplementedError

    def secret(self) -> str:
        raise NotImplementedError

    def is_stream(self, rec: Recorded) -> bool:
        return bool(rec.body.get("stream"))

    def system_text(self, body: dict) -> str:
        raise NotImplementedError

    def user_texts(self, body: dict) -> list[str]:
        """Texts of the user turns, in order."""
        raise NotImplementedError

    def image(self, body: dict) -> tuple[str, str]:
        """(media type, base64 data) of the first inline image."""
        raise NotImplementedError

    def max_tokens(self, body: dict) -> Any:
        raise NotImplementedError

    def tools(self, body: dict) -> dict[str, dict]:
        """Tool name → JSON schema of its parameters."""
        raise NotImplementedError

    def forced_tool(self, body: dict) -> Optional[str]:
        """The tool the request forces, if any."""
        raise NotImplementedError

    def replayed_call(self, body: dict) -> tuple[Optional[str], str, dict]:
        """(call id or None, name, arguments) of the assistant's earlier tool call."""
        raise NotImplementedError

    def tool_result(self, body: dict) -> tuple[str, Any]:
        """(call id, or the function name for Gemini, which answers by name;
        the result as sent)."""
        raise NotImplementedError

    def openai_usage(self, body: dict, n: int) -> dict:
        """What an OpenAI client must be told for an answer of `n` tokens to
        `body` (as the upstream received it)."""
        raise NotImplementedError

    def anthropic_usage(self, body: dict, n: int) -> dict:
        """What an Anthropic client must be told."""
        raise NotImplementedError

    def bad_request(self, message: str) -> Fault:
        """A 400 in the provider's own terms."""
        return Fault(status=400, message=message)

    def overloaded(self) -> Fault:
        """The provider's way of saying it cannot answer now."""
        return Fault(status=503)


class OpenAIUpstream(Upstream):
    def auth(self, rec: Recorded) -> Optional[str]:
        return rec.headers.get("authorization")

    def secret(self) -> str:
        return f"Bearer {MOCK_KEY}"

    def system_text(self, body: dict) -> str:
        return "\n\n".join(t for m in body["messages"] if m["role"] == "system" for t in _texts(m["content"]))

    def user_texts(self, body: dict) -> list[str]:
        return [t for m in body["messages"] if m["role"] == "user" for t in _texts(m["content"])]

    def image(self, body: dict) -> tuple[str, str]:
        for m in body["messages"]:
            for p in m["content"] if isinstance(m.get("content"), list) else []:
                if p.get("type") == "image_url":
                    url = p["image_url"]["url"]
                    meta, data = url.removeprefix("data:").split(",", 1)
                    return meta.removesuffix(";base64"), data
        raise AssertionError(f"no image in {body!r}")

    def max_tokens(self, body: dict) -> Any:
        return body.get("max_completion_tokens", body.get("max_tokens"))

    def tools(self, body: dict) -> dict[str, dict]:
        return {t["function"]["name"]: t["function"].get("parameters") for t in body.get("tools") or []}

    def forced_tool(self, body: dict) -> Optional[str]:
        choice = body.get("tool_choice")
        return choice["function"]["name"] if isinstance(choice, dict) else None

    def replayed_call(self, body: dict) -> tuple[Optional[str], str, dict]:
        for m in body["messages"]:
            for c in m.get("tool_calls") or []:
                return c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])
        raise AssertionError(f"no tool call in {body!r}")

    def tool_result(self, body: dict) -> tuple[str, Any]:
        for m in body["messages"]:
            if m["role"] == "tool":
                return m["tool_call_id"], m["content"]
        raise AssertionError(f"no tool result in {body!r}")

    def openai_usage(self, body: dict, n: int) -> dict:
        u = mock_openai.usage_for(body, n)
        return {"prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
                "total_tokens": u["total_tokens"], "cached_tokens": CACHED_TOKENS,
                "reasoning_tokens": REASONING_TOKENS}

    def anthropic_usage(self, body: dict, n: int) -> dict:
        u = mock_openai.usage_for(body, n)
        return {"input_tokens": u["prompt_tokens"] - CACHED_TOKENS, "output_tokens": u["completion_tokens"],
                "cache_read_input_tokens": CACHED_TOKENS, "cache_creation_input_tokens": 0}


class AnthropicUpstream(Upstream):
    def auth(self, rec: Recorded) -> Optional[str]:
        return rec.headers.get("x-api-key")

    def secret(self) -> str:
        return MOCK_ANTHROPIC_KEY

    def system_text(self, body: dict) -> str:
        return "\n\n".join(_texts(body.get("system")))

    def user_texts(self, body: dict) -> list[str]:
        return [t for m in body["messages"] if m["role"] == "user" for t in _texts(m["content"])]

    def image(self, body: dict) -> tuple[str, str]:
        for m in body["messages"]:
            for b in m["content"] if isinstance(m["content"], list) else []:
                if b.get("type") == "image":
                    assert b["source"]["type"] == "base64", b
                    return b["source"]["media_type"], b["source"]["data"]
        raise AssertionError(f"no image in {body!r}")

    def max_tokens(self, body: dict) -> Any:
        return body.get("max_tokens")

    def tools(self, body: dict) -> dict[str, dict]:
        return {t["name"]: t.get("input_schema") for t in body.get("tools") or []}

    def forced_tool(self, body: dict) -> Optional[str]:
        choice = body.get("tool_choice") or {}
        return choice.get("name") if choice.get("type") == "tool" else None

    def replayed_call(self, body: dict) -> tuple[Optional[str], str, dict]:
        for m in body["messages"]:
            for b in m["content"] if isinstance(m["content"], list) else []:
                if b.get("type") == "tool_use":
                    return b["id"], b["name"], b["input"]
        raise AssertionError(f"no tool_use in {body!r}")

    def tool_result(self, body: dict) -> tuple[str, Any]:
        for m in body["messages"]:
            for b in m["content"] if isinstance(m["content"], list) else []:
                if b.get("type") == "tool_result":
                    content = b.get("content")
                    if isinstance(content, list):
                        content = "".join(_texts(content))
                    return b["tool_use_id"], content
        raise AssertionError(f"no tool_result in {body!r}")

    def openai_usage(self, body: dict, n: int) -> dict:
        u = mock_anthropic.usage_for(body, n)
        prompt = u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
        return {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n,
                "cached_tokens": CACHED_TOKENS, "reasoning_tokens": None}

    def anthropic_usage(self, body: dict, n: int) -> dict:
        u = mock_anthropic.usage_for(body, n)
        return {k: u[k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                  "cache_creation_input_tokens")}

    def overloaded(self) -> Fault:
        return Fault(status=529)


class GeminiUpstream(Upstream):
    def auth(self, rec: Recorded) -> Optional[str]:
        return rec.headers.get("x-goog-api-key")

    def secret(self) -> str:
        return MOCK_GEMINI_KEY

    def is_stream(self, rec: Recorded) -> bool:
        return rec.path.endswith(":streamGenerateContent")

    def system_text(self, body: dict) -> str:
        parts = (body.get("systemInstruction") or {}).get("parts") or []
        return "\n\n".join(p["text"] for p in parts if "text" in p)

    def user_texts(self, body: dict) -> list[str]:
        return [p["text"] for c in body["contents"] if c["role"] == "user" for p in c["parts"] if "text" in p]

    def image(self, body: dict) -> tuple[str, str]:
        for c in body["contents"]:
            for p in c["parts"]:
                if "inlineData" in p:
                    return p["inlineData"]["mimeType"], p["inlineData"]["data"]
        raise AssertionError(f"no inlineData in {body!r}")

    def max_tokens(self, body: dict) -> Any:
        return (body.get("generationConfig") or {}).get("maxOutputTokens")

    def tools(self, body: dict) -> dict[str, dict]:
        return {d["name"]: d.get("parametersJsonSchema", d.get("parameters"))
                for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []}

    def forced_tool(self, body: dict) -> Optional[str]:
        fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        names = fcc.get("allowedFunctionNames") or []
        return names[0] if fcc.get("mode") == "ANY" and len(names) == 1 else None

    def replayed_call(self, body: dict) -> tuple[Optional[str], str, dict]:
        for c in body["contents"]:
            for p in c["parts"]:
                if "functionCall" in p:
                    assert c["role"] == "model", c
                    return p["functionCall"].get("id"), p["functionCall"]["name"], p["functionCall"]["args"]
        raise AssertionError(f"no functionCall in {body!r}")

    def tool_result(self, body: dict) -> tuple[str, Any]:
        for c in body["contents"]:
            for p in c["parts"]:
                if "functionResponse" in p:
                    return p["functionResponse"]["name"], p["functionResponse"]["response"]
        raise AssertionError(f"no functionResponse in {body!r}")

    def openai_usage(self, body: dict, n: int) -> dict:
        u = mock_gemini.usage_for(body, n)
        completion = n + u["thoughtsTokenCount"]
        return {"prompt_tokens": u["promptTokenCount"], "completion_tokens": completion,
                "total_tokens": u["promptTokenCount"] + completion, "cached_tokens": CACHED_TOKENS,
                "reasoning_tokens": u["thoughtsTokenCount"]}

    def anthropic_usage(self, body: dict, n: int) -> dict:
        u = mock_gemini.usage_for(body, n)
        return {"input_tokens": u["promptTokenCount"] - CACHED_TOKENS,
                "output_tokens": n + u["thoughtsTokenCount"],
                "cache_read_input_tokens": CACHED_TOKENS, "cache_creation_input_tokens": 0}

    def bad_request(self, message: str) -> Fault:
        return mock_gemini.GeminiFault(status=400, message=message)


UPSTREAM_CLASSES = {"openai": OpenAIUpstream, "anthropic": AnthropicUpstream, "gemini": GeminiUpstream}

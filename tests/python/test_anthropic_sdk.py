"""The official `anthropic` Python SDK against a real `switchyard serve`
(its Anthropic-compatible ingress: POST /v1/messages, count_tokens, and
GET /v1/models with `anthropic-version`), with each of the three upstream
channel types behind it: an OpenAI-compatible mock (mock_openai.py), a mock
Anthropic Messages API (mock_anthropic.py) and a mock Gemini API
(mock_gemini.py).

Tests that take the `upstream` fixture run once per upstream type; the
routes (`via-openai`, `via-anthropic`, `via-gemini`, and their misbehaving
twins) are described in upstreams.py. Each test checks what the SDK user
sees, and what reached the upstream in that upstream's own wire format.
"""

from __future__ import annotations

import datetime as dt
import json

import anthropic
import pytest

from conftest import PASSTHROUGH_MODELS, ROUTED_MODELS
from mock_anthropic import THINKING_TEXT
from mock_openai import Fault, reply_text, text_pieces
from upstreams import backup_model

SYSTEM = "You are a terse assistant."
HELLO = [{"role": "user", "content": "Say hello to the test suite"}]
# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
TIME_TOOL = {"name": "get_time", "description": "The time now.",
             "input_schema": {"type": "object", "properties": {}}}
TOOL_INPUT = {"city": "Paris", "unit": "celsius"}
BAD_KEY = "sy-thisKeyDoesNotExist0000000000000000000000000"


def only(items):
    assert len(items) == 1, f"expected exactly one, got {len(items)}: {items!r}"
    return items[0]


def assert_nothing_reached_upstream(*mocks):
    for m in mocks:
        assert m.all_requests() == [], f"{m.name} was called: {m.all_requests()!r}"


def usage_of(message) -> dict:
    u = message.usage
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens}


def sse_events(lines) -> list[tuple[str, dict]]:
    """(event name, data) pairs of an SSE body."""
    events, name = [], None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
            name = None
    return events


# --- whole answers -------------------------------------------------------------


def test_bearer_auth_token_works_like_an_api_key(gateway, upstream):
    # Tools configured with ANTHROPIC_AUTH_TOKEN send `Authorization: Bearer`.
    with anthropic.Anthropic(auth_token=gateway.keys["default"], base_url=gateway.root, max_retries=0,
                             timeout=30) as c:
        msg = c.messages.create(model=upstream.route(), max_tokens=64, messages=HELLO)
    assert msg.content[0].text == reply_text(upstream.model())



def test_message_names_the_answering_model_with_text_stop_reason_usage_and_headers(
        claude, gateway, upstream):
    raw = claude.messages.with_raw_response.create(
        model=upstream.route(), max_tokens=256, system=SYSTEM, messages=HELLO)
    msg = raw.parse()

    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.id.startswith("msg_")
    assert msg.model == upstream.model()  # the model that actually answered
    assert [(b.type, b.text) for b in msg.content] == [("text", reply_text(upstream.model()))]
    assert msg.stop_reason == "end_turn"
    assert msg.stop_sequence is None

    h = raw.headers
    assert h["x-switchyard-route"] == upstream.route()
    assert h["x-switchyard-channel"] == upstream.channel
    assert h["x-switchyard-bucket"] == "credit"
    assert h["x-switchyard-attempts"] == "1"
    assert h["x-switchyard-request-id"].startswith("req_")

    sent = only(upstream.requests())
    assert not upstream.is_stream(sent)
    assert upstream.system_text(sent.body) == SYSTEM
    assert upstream.user_texts(sent.body) == ["Say hello to the test suite"]
    assert upstream.max_tokens(sent.body) == 256
    # The channel's secret goes upstream in the provider's header; the
    # gateway key never does.
    assert upstream.auth(sent) == upstream.secret()
    assert all(gateway.keys["default"] not in v for v in sent.headers.values())

    # Usage: Anthropic's four disjoint counts, adding up to what the
    # upstream billed (input excludes cache reads and writes).
    assert usage_of(msg) == upstream.anthropic_usage(sent.body, len(text_pieces(upstream.model())))


def test_system_blocks_reach_the_upstream_as_its_system_prompt(claude, upstream):
    system = [{"type": "text", "text": "You are terse."},
              {"type": "text", "text": "Answer in English.", "cache_control": {"type": "ephemeral"}}]
    msg = claude.messages.create(model=upstream.route(), max_tokens=64, system=system, messages=HELLO)
    assert msg.content[0].text == reply_text(upstream.model())
    sent = only(upstream.requests())
    assert upstream.system_text(sent.body) == "You are terse.\n\nAnswer in English."
    assert upstream.user_texts(sent.body) == ["Say hello to the test suite"]


@pytest.mark.parametrize("upstream", ["anthropic"], indirect=True)
def test_beta_headers_reach_an_anthropic_upstream(claude, upstream):
    # Claude Code and the SDK's `client.beta` send `anthropic-beta`; an
    # Anthropic channel that passes the request through must pass it on.
    betas = "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    msg = claude.messages.create(model=upstream.route(), max_tokens=64, messages=HELLO,
                                 extra_headers={"anthropic-beta": betas})
    assert msg.content[0].text == reply_text(upstream.model())
    assert only(upstream.requests()).headers.get("anthropic-beta") == betas


def test_max_tokens_cuts_the_answer_with_stop_reason_max_tokens(claude, upstream):
    msg = claude.messages.create(model=upstream.route(), max_tokens=2, messages=HELLO)
    assert msg.stop_reason == "max_tokens"
    assert msg.content[0].text == "".join(text_pieces(upstream.model())[:2])
    sent = only(upstream.requests())
    assert upstream.max_tokens(sent.body) == 2
    assert msg.usage.output_tokens == upstream.anthropic_usage(sent.body, 2)["output_tokens"]


@pytest.mark.parametrize("upstream", ["anthropic"], indirect=True)
def test_stop_sequence_is_reported_as_the_stop_reason(claude, upstream):
    msg = claude.messages.create(model=upstream.route(), max_tokens=256, messages=HELLO,
                                 stop_sequences=[" from"])
    sent = only(upstream.requests())
    assert sent.body["stop_sequences"] == [" from"]
    assert msg.content[0].text == "Hello"
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", " from")


@pytest.mark.parametrize("upstream", ["anthropic"], indirect=True)
def test_thinking_comes_back_as_a_thinking_block(claude, upstream):
    msg = claude.messages.create(model=upstream.route(), max_tokens=2048, messages=HELLO,
                                 thinking={"type": "enabled", "budget_tokens": 1024})
    sent = only(upstream.requests())
    assert sent.body["thinking"]["type"] == "enabled"
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == "".join(THINKING_TEXT)
    assert msg.content[1].text == reply_text(upstream.model())


# --- streaming -----------------------------------------------------------------


def test_stream_text_and_final_message(claude, upstream):
    with claude.messages.stream(model=upstream.route(), max_tokens=256, system=SYSTEM,
                                messages=HELLO) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
        headers = stream.response.headers

    assert pieces == text_pieces(upstream.model())
    assert final.model == upstream.model()
    assert [(b.type, b.text) for b in final.content] == [("text", reply_text(upstream.model()))]
    assert final.stop_reason == "end_turn"
    assert headers["x-switchyard-channel"] == upstream.channel
    sent = only(upstream.requests())
    assert upstream.is_stream(sent)
    assert upstream.system_text(sent.body) == SYSTEM
    # The usage of the whole answer, as a non-streamed request reports it.
    assert usage_of(final) == upstream.anthropic_usage(sent.body, len(text_pieces(upstream.model())))


def test_stream_wire_format_is_anthropics_event_sequence(claude, upstream):
    with claude.messages.with_streaming_response.create(
            model=upstream.route(), max_tokens=256, messages=HELLO, stream=True) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = sse_events(resp.iter_lines())

    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "content_block_start" and names[-3] == "content_block_stop"
    assert set(names[2:-3]) == {"content_block_delta"}
    for name, data in events:
        assert data["type"] == name, "every event's data names its own type"
    start = events[0][1]["message"]
    assert (start["role"], start["content"], start["stop_reason"]) == ("assistant", [], None)
    assert start["model"] == upstream.model()
    deltas = [d for n, d in events if n == "content_block_delta"]
    assert all(d["index"] == 0 and d["delta"]["type"] == "text_delta" for d in deltas)
    assert "".join(d["delta"]["text"] for d in deltas) == reply_text(upstream.model())
    message_delta = next(d for n, d in events if n == "message_delta")
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("upstream", ["anthropic"], indirect=True)
def test_streamed_thinking_comes_before_the_text(claude, upstream):
    with claude.messages.stream(model=upstream.route(), max_tokens=2048, messages=HELLO,
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == reply_text(upstream.model())
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "".join(THINKING_TEXT)
    sent = only(upstream.requests())
    thinking = sent.body["thinking"]
    assert thinking["type"] == "enabled" and thinking["budget_tokens"] >= 1024
    assert sent.body["max_tokens"] > thinking["budget_tokens"]


def test_stream_cut_after_the_first_token_raises_and_is_not_a_finished_message(
        claude, backup, upstream):
    upstream.mock.fail(upstream.model("cut"), Fault(cut_after=1))
    pieces = []
    with pytest.raises(anthropic.APIStatusError) as e:
        with claude.messages.stream(model=upstream.route("cut"), max_tokens=256, messages=HELLO) as stream:
            for piece in stream.text_stream:
                pieces.append(piece)
    # The error came in-band (`event: error`), after the answer had begun.
    assert e.value.status_code == 200
    assert e.value.type in ("api_error", "overloaded_error")
    assert e.value.api_message
    assert pieces == text_pieces(upstream.model("cut"))[:1]
    assert_nothing_reached_upstream(backup)


def test_stream_cut_before_the_first_token_fails_over_to_the_backup(claude, backup, upstream):
    upstream.mock.fail(upstream.model("sfail"), Fault(cut_after=0))
    with claude.messages.stream(model=upstream.route("sfail"), max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        headers = stream.response.headers
    b = backup_model(upstream.kind, "sfail")
    # Nothing of the abandoned stream reached the client.
    assert text == reply_text(b)
    assert final.model == b
    assert final.stop_reason == "end_turn"
    assert headers["x-switchyard-channel"] == "backup"
    assert int(headers["x-switchyard-attempts"]) == len(upstream.requests("sfail")) + 1
    only(backup.requests(b))


# --- tools -----------------------------------------------------------------------


def test_tool_use_then_tool_result_round_trip(claude, upstream):
    first = claude.messages.create(
        model=upstream.route(), max_tokens=256, tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "What's the weather in Paris?"}])

    assert first.stop_reason == "tool_use"
    call = only([b for b in first.content if b.type == "tool_use"])
    assert [b.type for b in first.content] == ["tool_use"]  # forced: no preamble
    assert call.name == "get_weather"
    assert call.input == TOOL_INPUT
    assert call.id

    sent = only(upstream.requests())
    assert upstream.tools(sent.body) == {"get_weather": WEATHER_TOOL["input_schema"],
                                         "get_time": TIME_TOOL["input_schema"]}
    assert upstream.forced_tool(sent.body) == "get_weather"

    # Second turn: the assistant's call and the tool's result go back.
    upstream.mock.reset()
    second = claude.messages.create(
        model=upstream.route(), max_tokens=256, tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "none"},
        messages=[
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": json.dumps({"temp_c": 21})}]},
        ])
    assert second.stop_reason == "end_turn"
    assert [(b.type, b.text) for b in second.content] == [("text", reply_text(upstream.model()))]

    sent = only(upstream.requests())
    call_id, name, args = upstream.replayed_call(sent.body)
    assert (name, args) == ("get_weather", TOOL_INPUT)
    ref, result = upstream.tool_result(sent.body)
    if upstream.kind == "gemini":
        # Gemini answers a call by the function's name, with an object.
        assert (ref, result) == ("get_weather", {"temp_c": 21})
    else:
        assert call_id == call.id
        assert ref == call.id
        assert json.loads(result) == {"temp_c": 21}


def test_streamed_tool_use_is_assembled_by_the_sdk(claude, upstream):
    with claude.messages.stream(
            model=upstream.route(), max_tokens=256, tools=[WEATHER_TOOL],
            tool_choice={"type": "any"},
            messages=[{"role": "user", "content": "Weather?"}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    call = only([b for b in final.content if b.type == "tool_use"])
    assert call.name == "get_weather"
    assert call.input == TOOL_INPUT
    sent = only(upstream.requests())
    assert upstream.is_stream(sent)
    assert list(upstream.tools(sent.body)) == ["get_weather"]


# --- images ----------------------------------------------------------------------


def test_base64_image_reaches_the_upstream_in_its_own_format(claude, upstream):
    msg = claude.messages.create(
        model=upstream.route(), max_tokens=256,
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": "What is in this image?"},
        ]}])
    assert msg.content[0].text == reply_text(upstream.model())
    sent = only(upstream.requests())
    assert upstream.image(sent.body) == ("image/png", PNG)
    assert upstream.user_texts(sent.body) == ["What is in this image?"]


# --- count_tokens and models -----------------------------------------------------


def test_count_tokens_counts_messages_system_and_tools(claude, upstream):
    def count(**kw) -> int:
        kw.setdefault("messages", HELLO)
        n = claude.messages.count_tokens(model=upstream.route(), **kw).input_tokens
        assert isinstance(n, int) and n > 0
        return n

    base = count()
    assert count(messages=[{"role": "user", "content": "Say hello to the test suite " * 50}]) > base
    assert count(system=SYSTEM * 10) > base
    assert count(tools=[WEATHER_TOOL]) > base


def test_count_tokens_refuses_unknown_and_out_of_scope_models(claude, claude_other):
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.count_tokens(model="no-such-model", messages=HELLO)
    assert e.value.type == "not_found_error"
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        claude_other.messages.count_tokens(model="via-anthropic", messages=HELLO)
    assert e.value.type == "permission_error"


def test_models_list_is_in_anthropics_format_and_scoped_to_the_key(claude, claude_other):
    page = claude.models.list()
    models = list(page)
    assert {m.id for m in models} == ROUTED_MODELS | PASSTHROUGH_MODELS
    for m in models:
        assert m.type == "model"
        assert m.display_name
        assert isinstance(m.created_at, dt.datetime)
    assert page.has_more is False
    assert (page.first_id, page.last_id) == (models[0].id, models[-1].id)

    assert {m.id for m in claude_other.models.list()} == {"other-alpha", "other-beta"}


def test_models_retrieve_describes_one_model(claude):
    m = claude.models.retrieve("via-anthropic")
    assert (m.type, m.id) == ("model", "via-anthropic")
    assert m.display_name
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("no-such-model")


# --- errors as SDK exceptions ----------------------------------------------------


def test_bad_key_raises_authentication_error(gateway, primary, backup, anthropic_up, gemini_up):
    with gateway.anthropic_client(BAD_KEY) as bad:
        with pytest.raises(anthropic.AuthenticationError) as e:
            bad.messages.create(model="via-anthropic", max_tokens=16, messages=HELLO)
        with pytest.raises(anthropic.AuthenticationError):
            bad.models.list()
    err = e.value
    assert err.status_code == 401
    assert err.type == "authentication_error"
    assert err.body["type"] == "error"
    assert "sy-" in err.api_message  # says what kind of key to send
    assert_nothing_reached_upstream(primary, backup, anthropic_up, gemini_up)


def test_unknown_model_raises_not_found_error(claude, primary, backup, anthropic_up, gemini_up):
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="no-such-model", max_tokens=16, messages=HELLO)
    assert e.value.status_code == 404
    assert e.value.type == "not_found_error"
    assert "no-such-model" in e.value.api_message
    assert_nothing_reached_upstream(primary, backup, anthropic_up, gemini_up)


def test_missing_max_tokens_raises_bad_request_error(claude, primary, backup, anthropic_up, gemini_up):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model="via-anthropic", max_tokens=anthropic.omit, messages=HELLO)
    assert e.value.status_code == 400
    assert e.value.type == "invalid_request_error"
    assert "max_tokens" in e.value.api_message
    assert_nothing_reached_upstream(primary, backup, anthropic_up, gemini_up)


def test_out_of_scope_model_raises_permission_denied_error(claude_other, primary, backup, anthropic_up,
                                                           gemini_up):
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        claude_other.messages.create(model="via-anthropic", max_tokens=16, messages=HELLO)
    assert e.value.status_code == 403
    assert e.value.type == "permission_error"
    assert "via-anthropic" in e.value.api_message
    with pytest.raises(anthropic.PermissionDeniedError):
        with claude_other.messages.stream(model="via-gemini", max_tokens=16, messages=HELLO) as s:
            s.get_final_message()
    assert_nothing_reached_upstream(primary, backup, anthropic_up, gemini_up)


UPSTREAM_400 = {
    "openai": "Invalid 'messages[0].content': string too long. Expected a string with maximum length "
              "10485760, but got a string with length 10485761 instead.",
    "anthropic": "messages.0.content.1.image.source.base64.media_type: Input should be 'image/jpeg', "
                 "'image/png', 'image/gif' or 'image/webp'",
    "gemini": "* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be "
              "positive.\n",
}


def test_upstream_400_is_relayed_as_bad_request_error_with_the_providers_message(claude, backup, upstream):
    upstream.mock.fail(upstream.model("bad"), upstream.bad_request(UPSTREAM_400[upstream.kind]))
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model=upstream.route("bad"), max_tokens=64, messages=HELLO)
    assert e.value.status_code == 400
    assert e.value.type == "invalid_request_error"
    assert e.value.api_message.strip() == UPSTREAM_400[upstream.kind].strip()
    # Not the gateway's to retry or fail over: the request itself is wrong.
    only(upstream.requests("bad"))
    assert backup.requests() == []


def test_overloaded_primary_fails_over_to_the_backup(claude, backup, upstream):
    upstream.mock.fail(upstream.model("down"), upstream.overloaded())
    raw = claude.messages.with_raw_response.create(model=upstream.route("down"), max_tokens=64, messages=HELLO)
    msg = raw.parse()
    assert msg.model == backup_model(upstream.kind, "down")
    assert msg.content[0].text == reply_text(backup_model(upstream.kind, "down"))
    assert raw.headers["x-switchyard-channel"] == "backup"
    attempts = int(raw.headers["x-switchyard-attempts"])
    assert attempts == len(upstream.requests("down")) + 1 > 1
    only(backup.requests(backup_model(upstream.kind, "down")))

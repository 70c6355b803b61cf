"""The official `openai` Python SDK against a real `switchyard serve`, with
mock OpenAI upstreams (mock_openai.py) behind it.

Each test names the behaviour it checks. Routes and upstream model ids are
set up in conftest.py: `gpt-test` is primary `up-model-a` with backup
`up-model-b`; tests that make an upstream misbehave have routes of their own.
The same client against Anthropic and Gemini channels, and embeddings, are in
test_openai_sdk_upstreams.py.
"""

from __future__ import annotations

import json
import time

import openai
import pytest

from conftest import MOCK_KEY, PASSTHROUGH_MODELS, ROUTED_MODELS, create_key
from mock_openai import CACHED_TOKENS, REASONING_TOKENS, Fault, reply_text, text_pieces, usage_for

HELLO = [{"role": "user", "content": "Say hello to the test suite"}]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def only(items):
    assert len(items) == 1, f"expected exactly one, got {len(items)}: {items!r}"
    return items[0]


def assert_nothing_reached_upstream(*mocks):
    for m in mocks:
        assert m.requests() == [], f"{m.name} was called: {m.requests()!r}"


# --- whole answers -------------------------------------------------------------


def test_chat_returns_upstream_model_name_usage_and_switchyard_headers(client, gateway, primary, backup):
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=HELLO, seed=7)
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.model == "up-model-a"  # the model that actually answered
    assert completion.choices[0].message.content == reply_text("up-model-a")
    assert completion.choices[0].finish_reason == "stop"

    h = raw.headers
    assert h["x-switchyard-request-id"].startswith("req_")
    assert h["x-switchyard-route"] == "gpt-test"
    assert h["x-switchyard-channel"] == "primary"
    assert h["x-switchyard-bucket"] == "credit"
    assert h["x-switchyard-attempts"] == "1"

    want = usage_for({"messages": HELLO}, len(text_pieces("up-model-a")))
    u = completion.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (
        want["prompt_tokens"], want["completion_tokens"], want["total_tokens"])
    assert u.prompt_tokens_details.cached_tokens == CACHED_TOKENS
    assert u.completion_tokens_details.reasoning_tokens == REASONING_TOKENS

    sent = only(primary.requests())
    assert sent.body["model"] == "up-model-a"
    assert sent.body["messages"] == HELLO
    assert sent.body["seed"] == 7
    # The channel's secret goes upstream; the gateway key never does.
    assert sent.headers.get("authorization") == f"Bearer {MOCK_KEY}"
    assert all(gateway.keys["default"] not in v for v in sent.headers.values())
    assert_nothing_reached_upstream(backup)


def test_each_request_gets_its_own_request_id(client):
    a = client.chat.completions.with_raw_response.create(model="gpt-test", messages=HELLO)
    b = client.chat.completions.with_raw_response.create(model="gpt-test", messages=HELLO)
    assert a.headers["x-switchyard-request-id"] != b.headers["x-switchyard-request-id"]


# --- streams -------------------------------------------------------------------


def test_streaming_yields_text_and_no_usage_chunk_by_default(client, primary):
    raw = client.chat.completions.with_raw_response.create(model="gpt-test", messages=HELLO, stream=True)
    assert raw.headers["x-switchyard-channel"] == "primary"
    assert raw.headers["x-switchyard-route"] == "gpt-test"
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply_text("up-model-a")
    assert all(c.usage is None for c in chunks), "usage leaked into a stream that did not ask for it"
    assert all(c.choices for c in chunks), "the usage-only chunk was not stripped"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.model for c in chunks} == {"up-model-a"}

    # The gateway itself asked upstream for usage (for its ledger).
    sent = only(primary.requests())
    assert sent.body["stream"] is True
    assert sent.body["stream_options"]["include_usage"] is True


def test_streaming_with_include_usage_ends_with_a_usage_chunk(client, primary):
    stream = client.chat.completions.create(
        model="gpt-test", messages=HELLO, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply_text("up-model-a")
    last = chunks[-1]
    assert last.choices == []
    want = usage_for({"messages": HELLO}, len(text_pieces("up-model-a")))
    assert last.usage.prompt_tokens == want["prompt_tokens"]
    assert last.usage.completion_tokens == want["completion_tokens"]
    assert last.usage.total_tokens == want["total_tokens"]
    assert last.usage.prompt_tokens_details.cached_tokens == CACHED_TOKENS
    assert last.usage.completion_tokens_details.reasoning_tokens == REASONING_TOKENS
    assert all(c.usage is None for c in chunks[:-1])
    assert only(primary.requests()).body["stream_options"] == {"include_usage": True}


# --- tools ---------------------------------------------------------------------


def test_tool_calls_round_trip(client, primary):
    tools = [WEATHER_TOOL, TIME_TOOL]
    tool_choice = {"type": "function", "function": {"name": "get_weather"}}
    first = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=tools, tool_choice=tool_choice, parallel_tool_calls=False)

    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = only(choice.message.tool_calls)
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}

    sent = only(primary.requests())
    assert sent.body["tools"] == tools  # unchanged, `strict` and all
    assert sent.body["tool_choice"] == tool_choice
    assert sent.body["parallel_tool_calls"] is False

    # Second turn: the tool's result goes back and reaches upstream as sent.
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call.id, "type": "function",
            "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})},
    ]
    primary.reset()
    second = client.chat.completions.create(model="gpt-test", messages=history, tools=tools, tool_choice="none")
    assert second.choices[0].message.content == reply_text("up-model-a")
    sent = only(primary.requests())
    assert sent.body["messages"] == history
    assert sent.body["tool_choice"] == "none"


def test_streamed_tool_calls_arrive_as_deltas(client, primary):
    stream = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL], tool_choice="required", stream=True)
    name, args, ids, finish = "", "", set(), None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                assert tc.index == 0
                if tc.id:
                    ids.add(tc.id)
                if tc.function and tc.function.name:
                    name += tc.function.name
                if tc.function and tc.function.arguments:
                    args += tc.function.arguments
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert len(ids) == 1
    assert json.loads(args) == {"city": "Paris", "unit": "celsius"}
    assert finish == "tool_calls"
    sent = only(primary.requests())
    assert sent.body["tools"] == [WEATHER_TOOL]
    assert sent.body["tool_choice"] == "required"


# --- failover ------------------------------------------------------------------


def test_fallback_to_backup_when_primary_returns_503(client, primary, backup):
    primary.fail("up-failover-a", Fault(status=503))
    raw = client.chat.completions.with_raw_response.create(model="gpt-failover", messages=HELLO)
    completion = raw.parse()

    assert completion.model == "up-failover-b"
    assert completion.choices[0].message.content == reply_text("up-failover-b")
    assert raw.headers["x-switchyard-channel"] == "backup"
    assert raw.headers["x-switchyard-route"] == "gpt-failover"
    assert raw.headers["x-switchyard-bucket"] == "credit"
    attempts = int(raw.headers["x-switchyard-attempts"])
    assert attempts > 1
    tried_primary = len(primary.requests("up-failover-a"))
    assert tried_primary >= 1
    assert attempts == tried_primary + 1, "the attempts header counts every upstream call"
    only(backup.requests("up-failover-b"))


@pytest.mark.parametrize(("route", "up", "fault"), [
    ("gpt-sfailover-503", "up-sf503", Fault(status=503)),
    ("gpt-sfailover-cut", "up-sfcut", Fault(cut_after=0)),
], ids=["primary-503", "primary-cut-before-first-token"])
def test_stream_fails_over_to_backup_before_the_first_token(client, primary, backup, route, up, fault):
    primary.fail(f"{up}-a", fault)
    raw = client.chat.completions.with_raw_response.create(model=route, messages=HELLO, stream=True)
    assert raw.headers["x-switchyard-channel"] == "backup"
    attempts = int(raw.headers["x-switchyard-attempts"])
    assert attempts > 1
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply_text(f"{up}-b")
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.model for c in chunks} == {f"{up}-b"}
    assert len(primary.requests(f"{up}-a")) == attempts - 1
    only(backup.requests(f"{up}-b"))


def test_upstream_400_is_relayed_without_failover(client, primary, backup):
    primary.fail("up-relay-a", Fault(
        status=400, code="content_policy_violation",
        message="Your request was rejected as a result of our safety system."))
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-relay-400", messages=HELLO)
    assert e.value.status_code == 400
    assert e.value.code == "content_policy_violation"
    assert "safety system" in e.value.message
    only(primary.requests("up-relay-a"))
    assert_nothing_reached_upstream(backup)


def test_all_targets_failing_raises_a_server_error_that_names_the_route_walk(client, primary, backup):
    primary.fail("up-down-a", Fault(status=503))
    backup.fail("up-down-b", Fault(status=503))
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.with_raw_response.create(model="gpt-all-down", messages=HELLO)
    err = e.value
    assert err.status_code in (502, 503)
    assert err.response.headers["x-switchyard-route"] == "gpt-all-down"
    request_id = err.response.headers["x-switchyard-request-id"]
    assert request_id in err.message  # the summary names the request to look up
    assert "primary" in err.message and "backup" in err.message
    assert int(err.response.headers["x-switchyard-attempts"]) == (
        len(primary.requests("up-down-a")) + len(backup.requests("up-down-b")))


def test_silent_primary_fails_over_at_once_after_the_first_byte_timeout(client, primary, backup):
    # gpt-slow has first_byte_s = 1; the primary would take 5 s to answer.
    primary.fail("up-slow-a", Fault(delay=5))
    began = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="gpt-slow", messages=HELLO)
    elapsed = time.monotonic() - began
    assert raw.parse().model == "up-slow-b"
    assert raw.headers["x-switchyard-channel"] == "backup"
    assert raw.headers["x-switchyard-attempts"] == "2", "a silent target is not retried"
    assert elapsed < 4, f"failover took {elapsed:.1f}s"
    only(primary.requests("up-slow-a"))


def test_stream_with_no_first_token_in_time_fails_over(client, primary, backup):
    # gpt-stall-first has first_token_s = 1; the primary sends its headers and
    # a role-only chunk, then nothing for 5 s.
    primary.fail("up-stall-a", Fault(stall_after=0, stall=5))
    began = time.monotonic()
    chunks = list(client.chat.completions.create(model="gpt-stall-first", messages=HELLO, stream=True))
    elapsed = time.monotonic() - began
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply_text("up-stall-b")
    # Nothing of the abandoned primary's stream reached the client.
    assert {c.model for c in chunks} == {"up-stall-b"}
    assert elapsed < 4, f"failover took {elapsed:.1f}s"
    only(backup.requests("up-stall-b"))


# --- a stream cut mid-answer ------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault(cut_after=1), Fault(stream_error_after=1)],
                         ids=["connection-cut", "in-band-upstream-error"])
def test_stream_cut_after_first_token_raises_api_error(client, primary, backup, fault):
    primary.fail("up-cut-a", fault)
    stream = client.chat.completions.create(model="gpt-cut", messages=HELLO, stream=True)
    text = ""
    finished = False
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finished |= choice.finish_reason is not None
    # Not a status error: the answer had begun, so the error came in-band.
    assert not isinstance(e.value, openai.APIStatusError)
    assert text == text_pieces("up-cut-a")[0]
    assert not finished, "a truncated answer was presented as finished"
    assert e.value.message
    # After the first token there is no failover.
    assert_nothing_reached_upstream(backup)


def test_stream_stalled_after_first_token_raises_api_error(client, primary, backup):
    # gpt-idle has idle_s = 1; the primary goes silent for 5 s mid-answer.
    primary.fail("up-idle-a", Fault(stall_after=1, stall=5))
    text = ""
    began = time.monotonic()
    with pytest.raises(openai.APIError) as e:
        for chunk in client.chat.completions.create(model="gpt-idle", messages=HELLO, stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
    assert not isinstance(e.value, openai.APIStatusError)
    assert text == text_pieces("up-idle-a")[0]
    assert time.monotonic() - began < 4
    assert_nothing_reached_upstream(backup)


def test_cut_stream_ends_with_an_error_event_and_no_done_on_the_wire(client, primary):
    primary.fail("up-cut-a", Fault(cut_after=1))
    with client.chat.completions.with_streaming_response.create(
            model="gpt-cut", messages=HELLO, stream=True) as resp:
        assert resp.status_code == 200
        events = [ln[len("data: "):] for ln in resp.iter_lines() if ln.startswith("data: ")]
    assert "[DONE]" not in events
    last = json.loads(events[-1])
    assert set(last) == {"error"}
    assert last["error"]["message"]
    assert last["error"]["code"]
    # Every event before it was a chunk of the (incomplete) answer.
    assert all(json.loads(ev)["object"] == "chat.completion.chunk" for ev in events[:-1])


# --- models ----------------------------------------------------------------------


def test_models_list_shows_only_models_the_key_may_call(client, other_client):
    every = {m.id for m in client.models.list()}
    assert every == ROUTED_MODELS | PASSTHROUGH_MODELS

    scoped = list(other_client.models.list())
    assert {m.id for m in scoped} == {"other-alpha", "other-beta"}
    assert all(m.object == "model" for m in scoped)


def test_scoped_key_may_call_models_inside_its_scope(other_client, backup):
    completion = other_client.chat.completions.create(model="other-alpha", messages=HELLO)
    assert completion.model == "up-other-alpha"
    only(backup.requests("up-other-alpha"))


def test_passthrough_model_is_served_under_its_own_name(client, backup):
    raw = client.chat.completions.with_raw_response.create(model="local-small", messages=HELLO)
    assert raw.parse().model == "local-small"
    assert raw.headers["x-switchyard-channel"] == "local"
    only(backup.requests("local-small"))


# --- errors as SDK exceptions ---------------------------------------------------


def test_bad_key_raises_authentication_error(gateway, primary, backup):
    with gateway.client("sy-thisKeyDoesNotExist0000000000000000000000000") as bad:
        with pytest.raises(openai.AuthenticationError) as e:
            bad.chat.completions.create(model="gpt-test", messages=HELLO)
        assert e.value.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    assert e.value.type == "invalid_request_error"
    assert_nothing_reached_upstream(primary, backup)


def test_unknown_model_raises_not_found_error(client, primary, backup):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert e.value.status_code == 404
    assert e.value.code == "model_not_found"
    assert "no-such-model" in e.value.message
    assert_nothing_reached_upstream(primary, backup)


def test_out_of_scope_model_raises_permission_denied_error(other_client, primary, backup):
    with pytest.raises(openai.PermissionDeniedError) as e:
        other_client.chat.completions.create(model="gpt-test", messages=HELLO)
    assert e.value.status_code == 403
    assert "gpt-test" in e.value.message
    with pytest.raises(openai.PermissionDeniedError):
        other_client.chat.completions.create(model="gpt-test", messages=HELLO, stream=True)
    assert_nothing_reached_upstream(primary, backup)


def test_key_without_the_routes_bucket_raises_permission_denied_error(gateway, primary, backup):
    with gateway.client(gateway.keys["wallet"]) as wallet_only:
        with pytest.raises(openai.PermissionDeniedError) as e:
            wallet_only.chat.completions.create(model="gpt-test", messages=HELLO)
        assert e.value.status_code == 403
        assert list(wallet_only.models.list()) == []
    assert_nothing_reached_upstream(primary, backup)


def test_missing_messages_raises_bad_request_error(client, primary, backup):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-test", messages=openai.omit)
    assert e.value.status_code == 400
    assert "messages" in e.value.message
    assert e.value.type == "invalid_request_error"
    assert_nothing_reached_upstream(primary, backup)


def test_revoked_key_is_refused(gateway, primary):
    name = f"revoke-me-{time.monotonic_ns()}"
    key = create_key(gateway.bin, gateway.config, gateway.data_dir, name)
    with gateway.client(key) as c:
        # A key created while the gateway runs is picked up without a restart.
        deadline = time.monotonic() + 10
        while True:
            try:
                assert c.chat.completions.create(model="gpt-test", messages=HELLO).model == "up-model-a"
                break
            except openai.AuthenticationError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        gateway.cli("key", "revoke", name)
        deadline = time.monotonic() + 10
        while True:
            try:
                c.chat.completions.create(model="gpt-test", messages=HELLO)
            except openai.AuthenticationError:
                break
            assert time.monotonic() < deadline, "a revoked key still works after 10 s"
            time.sleep(0.25)

"""The official `openai` Python SDK's Responses API (`client.responses`)
against a real `switchyard serve`, over each of the three upstream channel
types (the `upstream` fixture): whole answers and streams with their usage,
tool calls round trip, structured output, errors and cut streams.
"""

from __future__ import annotations

import json

import openai
import pytest

from mock_openai import Fault, reply_text, text_pieces

INSTRUCTIONS = "You are a terse assistant."
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city.",
                "parameters": WEATHER_PARAMS, "strict": True}
TOOL_ARGS = {"city": "Paris", "unit": "celsius"}


def only(items):
    assert len(items) == 1, f"expected exactly one, got {len(items)}: {items!r}"
    return items[0]


def test_response_names_the_answering_model_with_usage_and_headers(client, upstream):
    raw = client.responses.with_raw_response.create(
        model=upstream.route(), instructions=INSTRUCTIONS, input="Say hello to the test suite")
    resp = raw.parse()

    assert resp.object == "response"
    assert resp.status == "completed"
    assert resp.model == upstream.model()
    assert resp.output_text == reply_text(upstream.model())
    message = only([o for o in resp.output if o.type == "message"])
    assert message.role == "assistant"
    assert raw.headers["x-switchyard-channel"] == upstream.channel
    assert raw.headers["x-switchyard-route"] == upstream.route()

    sent = only(upstream.requests())
    assert not upstream.is_stream(sent)
    assert upstream.system_text(sent.body) == INSTRUCTIONS
    assert upstream.user_texts(sent.body) == ["Say hello to the test suite"]
    want = upstream.openai_usage(sent.body, len(text_pieces(upstream.model())))
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (
        want["prompt_tokens"], want["completion_tokens"], want["total_tokens"])
    assert resp.usage.input_tokens_details.cached_tokens == want["cached_tokens"]


def test_developer_messages_and_items_become_the_system_prompt_and_turns(client, upstream):
    client.responses.create(model=upstream.route(), input=[
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": INSTRUCTIONS}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "First"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Ok"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Second"}]},
    ])
    sent = only(upstream.requests())
    assert upstream.system_text(sent.body) == INSTRUCTIONS
    assert upstream.user_texts(sent.body) == ["First", "Second"]


def test_stream_is_the_responses_event_sequence_with_usage(client, upstream):
    events = list(client.responses.create(model=upstream.route(), input="Say hello to the test suite",
                                          stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in ["response.output_item.added", "response.content_part.added", "response.output_text.done",
                 "response.content_part.done", "response.output_item.done"]:
        assert kind in kinds, kind
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == reply_text(upstream.model())
    done = events[-1].response
    assert done.output_text == text
    assert done.model == upstream.model()
    sent = only(upstream.requests())
    assert upstream.is_stream(sent)
    want = upstream.openai_usage(sent.body, len(text_pieces(upstream.model())))
    assert (done.usage.input_tokens, done.usage.output_tokens) == (want["prompt_tokens"], want["completion_tokens"])


def test_max_output_tokens_ends_incomplete(client, upstream):
    resp = client.responses.create(model=upstream.route(), input="Say hello", max_output_tokens=2)
    assert resp.status == "incomplete"
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output_text == "".join(text_pieces(upstream.model())[:2])
    assert upstream.max_tokens(only(upstream.requests()).body) == 2


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_function_calls_round_trip(client, upstream, stream):
    kwargs = dict(model=upstream.route(), input="Weather in Paris?", tools=[WEATHER_TOOL],
                  tool_choice={"type": "function", "name": "get_weather"})
    if stream:
        events = list(client.responses.create(stream=True, **kwargs))
        args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
        assert json.loads(args) == TOOL_ARGS
        first = events[-1].response
    else:
        first = client.responses.create(**kwargs)
    call = only([o for o in first.output if o.type == "function_call"])
    assert call.name == "get_weather"
    assert call.call_id
    assert json.loads(call.arguments) == TOOL_ARGS
    sent = only(upstream.requests())
    assert upstream.tools(sent.body) == {"get_weather": WEATHER_PARAMS}
    assert upstream.forced_tool(sent.body) == "get_weather"

    upstream.mock.reset()
    second = client.responses.create(model=upstream.route(), tools=[WEATHER_TOOL], tool_choice="none", input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"temp_c": 21})},
    ])
    assert second.output_text == reply_text(upstream.model())
    sent = only(upstream.requests())
    call_id, name, args = upstream.replayed_call(sent.body)
    assert (name, args) == ("get_weather", TOOL_ARGS)
    ref, result = upstream.tool_result(sent.body)
    if upstream.kind == "gemini":
        assert (ref, result) == ("get_weather", {"temp_c": 21})
    else:
        assert call_id == call.call_id
        assert (ref, json.loads(result)) == (call.call_id, {"temp_c": 21})


def test_json_schema_output_reaches_the_upstream(client, upstream):
    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"],
              "additionalProperties": False}
    client.responses.create(model=upstream.route(), input="Greet",
                            text={"format": {"type": "json_schema", "name": "greeting", "schema": schema,
                                             "strict": True}})
    body = only(upstream.requests()).body
    if upstream.kind == "gemini":
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert (config.get("responseJsonSchema") or config.get("responseSchema"))["required"] == ["greeting"]
    elif upstream.kind == "anthropic":
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    else:
        assert body["response_format"]["json_schema"]["schema"] == schema


def test_hosted_tools_are_left_out_with_a_warning_and_refused_when_forced(client, upstream):
    raw = client.responses.with_raw_response.create(
        model=upstream.route(), input="Hi", tools=[WEATHER_TOOL, {"type": "web_search"}], tool_choice="none")
    assert raw.parse().output_text == reply_text(upstream.model())
    assert "web_search" in raw.headers["x-switchyard-warning"]
    assert list(upstream.tools(only(upstream.requests()).body)) == ["get_weather"]

    upstream.mock.reset()
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=upstream.route(), input="Hi", tools=[{"type": "web_search"}],
                                tool_choice={"type": "web_search"})
    assert "web_search" in e.value.message
    assert upstream.requests() == []


def test_bad_requests_are_openai_errors(client, upstream):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-route", input="Hi")
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=upstream.route(), input=[{"role": "tool", "content": "x"}])
    assert "role" in e.value.message
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model=upstream.route(), input="Hi", previous_response_id="resp_x")
    assert "resp_x" in e.value.message
    assert upstream.requests() == []


def test_a_kept_response_is_continued_fetched_and_deleted_by_its_own_key(client, gateway, upstream):
    first = client.responses.create(model=upstream.route(), instructions=INSTRUCTIONS, input="First question")
    assert first.store is True
    upstream.mock.reset()
    second = client.responses.create(model=upstream.route(), input="Second question",
                                     previous_response_id=first.id)
    assert second.output_text == reply_text(upstream.model())
    sent = only(upstream.requests())
    # The earlier turns and answer travel again; the instructions do not.
    assert upstream.user_texts(sent.body) == ["First question", "Second question"]
    assert reply_text(upstream.model()) in json.dumps(sent.body)
    assert not upstream.system_text(sent.body)

    assert client.responses.retrieve(second.id).output_text == second.output_text
    other = gateway.client(gateway.keys["other"])
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(second.id)
    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)

    upstream.mock.reset()
    unkept = client.responses.create(model=upstream.route(), input="Hi", store=False)
    assert unkept.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unkept.id)


def test_stream_cut_after_the_first_token_ends_failed(client, backup, upstream):
    upstream.mock.fail(upstream.model("cut"), Fault(cut_after=1))
    events = list(client.responses.create(model=upstream.route("cut"), input="Hi", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == text_pieces(upstream.model("cut"))[0]
    assert backup.requests() == []


def test_a_streamed_response_is_kept_too(client, upstream):
    events = list(client.responses.create(model=upstream.route(), input="First question", stream=True))
    done = events[-1].response
    assert done.store is True
    upstream.mock.reset()
    client.responses.create(model=upstream.route(), input="Second question", previous_response_id=done.id)
    sent = only(upstream.requests())
    assert upstream.user_texts(sent.body) == ["First question", "Second question"]
    assert reply_text(upstream.model()) in json.dumps(sent.body)

"""The official `openai` Python SDK against a real `switchyard serve`, with
each of the three upstream channel types behind it: OpenAI-compatible
(mock_openai.py), Anthropic (mock_anthropic.py) and Gemini (mock_gemini.py).

The core chat behaviours (whole answers, streams, tools, images, relayed
errors, cut streams) run once per upstream type through the `upstream`
fixture, so an OpenAI client cannot tell which kind of provider answered;
embeddings run against the OpenAI-compatible and Gemini routes. Routes are
described in upstreams.py.
"""

from __future__ import annotations

import base64
import json
import struct

import openai
import pytest

from mock_gemini import THOUGHT_SIGNATURE, GeminiFault
from mock_openai import EMBED_DIMS, Fault, embedding_for, reply_text, text_pieces
from upstreams import EMBED_ROUTES

SYSTEM = "You are a terse assistant."
HELLO = [{"role": "system", "content": SYSTEM},
         {"role": "user", "content": "Say hello to the test suite"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.", "parameters": WEATHER_PARAMS,
    "strict": True}}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
TOOL_ARGS = {"city": "Paris", "unit": "celsius"}


def only(items):
    assert len(items) == 1, f"expected exactly one, got {len(items)}: {items!r}"
    return items[0]


def text_of(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- whole answers ---------------------------------------------------------------


def test_chat_names_the_answering_model_with_usage_and_headers(client, gateway, upstream):
    raw = client.chat.completions.with_raw_response.create(model=upstream.route(), messages=HELLO)
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.model == upstream.model()
    choice = only(completion.choices)
    assert (choice.index, choice.finish_reason) == (0, "stop")
    assert choice.message.role == "assistant"
    assert choice.message.content == reply_text(upstream.model())
    assert not choice.message.tool_calls

    h = raw.headers
    assert h["x-switchyard-route"] == upstream.route()
    assert h["x-switchyard-channel"] == upstream.channel
    assert h["x-switchyard-attempts"] == "1"

    sent = only(upstream.requests())
    assert not upstream.is_stream(sent)
    assert upstream.system_text(sent.body) == SYSTEM
    assert upstream.user_texts(sent.body) == ["Say hello to the test suite"]
    assert upstream.auth(sent) == upstream.secret()
    assert all(gateway.keys["default"] not in v for v in sent.headers.values())

    want = upstream.openai_usage(sent.body, len(text_pieces(upstream.model())))
    u = completion.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (
        want["prompt_tokens"], want["completion_tokens"], want["total_tokens"])
    assert u.prompt_tokens_details.cached_tokens == want["cached_tokens"]
    if want["reasoning_tokens"] is not None:
        assert u.completion_tokens_details.reasoning_tokens == want["reasoning_tokens"]


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client, upstream):
    completion = client.chat.completions.create(model=upstream.route(), messages=HELLO, max_tokens=2)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "".join(text_pieces(upstream.model())[:2])
    assert upstream.max_tokens(only(upstream.requests()).body) == 2


# --- streams -----------------------------------------------------------------------


def test_stream_with_usage_ends_with_the_usage_chunk(client, upstream):
    chunks = list(client.chat.completions.create(
        model=upstream.route(), messages=HELLO, stream=True, stream_options={"include_usage": True}))

    assert text_of(chunks) == reply_text(upstream.model())
    assert {c.model for c in chunks} == {upstream.model()}
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    content = [c for c in chunks if c.choices]
    assert content[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in content].count("stop") == 1
    assert content[-1].choices[0].finish_reason == "stop"

    last = chunks[-1]
    assert last.choices == []
    sent = only(upstream.requests())
    assert upstream.is_stream(sent)
    want = upstream.openai_usage(sent.body, len(text_pieces(upstream.model())))
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        want["prompt_tokens"], want["completion_tokens"], want["total_tokens"])
    assert last.usage.prompt_tokens_details.cached_tokens == want["cached_tokens"]
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_has_no_usage_chunk(client, upstream):
    chunks = list(client.chat.completions.create(model=upstream.route(), messages=HELLO, stream=True))
    assert text_of(chunks) == reply_text(upstream.model())
    assert all(c.choices for c in chunks), "a usage chunk the client did not ask for"
    assert all(getattr(c, "usage", None) is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_cut_after_the_first_token_raises_api_error(client, backup, upstream):
    upstream.mock.fail(upstream.model("cut"), Fault(cut_after=1))
    text, finished = "", False
    with pytest.raises(openai.APIError) as e:
        for chunk in client.chat.completions.create(model=upstream.route("cut"), messages=HELLO, stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finished |= choice.finish_reason is not None
    assert not isinstance(e.value, openai.APIStatusError)  # in-band, after the answer began
    assert text == text_pieces(upstream.model("cut"))[0]
    assert not finished, "a truncated answer was presented as finished"
    assert backup.requests() == []


# --- tools ---------------------------------------------------------------------------


def test_tool_calls_round_trip(client, upstream):
    first = client.chat.completions.create(
        model=upstream.route(), messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL, TIME_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = only(choice.message.tool_calls)
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == TOOL_ARGS

    sent = only(upstream.requests())
    assert upstream.tools(sent.body) == {"get_weather": WEATHER_PARAMS, "get_time": TIME_TOOL["function"]["parameters"]}
    assert upstream.forced_tool(sent.body) == "get_weather"

    upstream.mock.reset()
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": call.id, "type": "function",
            "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})},
    ]
    second = client.chat.completions.create(model=upstream.route(), messages=history,
                                            tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="none")
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == reply_text(upstream.model())

    sent = only(upstream.requests())
    call_id, name, args = upstream.replayed_call(sent.body)
    assert (name, args) == ("get_weather", TOOL_ARGS)
    ref, result = upstream.tool_result(sent.body)
    if upstream.kind == "gemini":
        assert (ref, result) == ("get_weather", {"temp_c": 21})
    else:
        assert call_id == call.id
        assert (ref, json.loads(result)) == (call.id, {"temp_c": 21})


def test_streamed_tool_calls_arrive_as_deltas(client, upstream):
    stream = client.chat.completions.create(
        model=upstream.route(), messages=[{"role": "user", "content": "Weather?"}],
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
    assert json.loads(args) == TOOL_ARGS
    assert finish == "tool_calls"
    sent = only(upstream.requests())
    assert upstream.is_stream(sent)
    assert list(upstream.tools(sent.body)) == ["get_weather"]


@pytest.mark.parametrize("upstream", ["gemini"], indirect=True)
def test_gemini_thought_signature_travels_back_with_the_call(client, upstream):
    first = client.chat.completions.create(
        model=upstream.route(), messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL], tool_choice="required")
    call = only(first.choices[0].message.tool_calls)
    # As Google's OpenAI-compatible endpoint does it.
    assert call.model_dump()["extra_content"] == {"google": {"thought_signature": THOUGHT_SIGNATURE}}

    upstream.mock.reset()
    client.chat.completions.create(model=upstream.route(), tools=[WEATHER_TOOL], tool_choice="none", messages=[
        {"role": "user", "content": "Weather in Paris?"},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})},
    ])
    sent = only(upstream.requests())
    part = only([p for c in sent.body["contents"] for p in c["parts"] if "functionCall" in p])
    assert part["thoughtSignature"] == THOUGHT_SIGNATURE


# --- images ----------------------------------------------------------------------------


def test_image_reaches_the_upstream_in_its_own_format(client, upstream):
    completion = client.chat.completions.create(model=upstream.route(), messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]}])
    assert completion.choices[0].message.content == reply_text(upstream.model())
    sent = only(upstream.requests())
    assert upstream.image(sent.body) == ("image/png", PNG)
    assert upstream.user_texts(sent.body) == ["What is in this image?"]


# --- errors ---------------------------------------------------------------------------------

UPSTREAM_400 = {
    "openai": "Invalid 'messages[0].content': string too long. Expected a string with maximum length "
              "10485760, but got a string with length 10485761 instead.",
    "anthropic": "messages.0.content.1.image.source.base64.media_type: Input should be 'image/jpeg', "
                 "'image/png', 'image/gif' or 'image/webp'",
    "gemini": "* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be "
              "positive.\n",
}


def test_upstream_400_is_relayed_as_bad_request_error_with_the_providers_message(client, backup, upstream):
    upstream.mock.fail(upstream.model("bad"), upstream.bad_request(UPSTREAM_400[upstream.kind]))
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=upstream.route("bad"), messages=HELLO)
    err = e.value
    assert err.status_code == 400
    assert err.type == "invalid_request_error"
    # The provider's own words, in OpenAI's error object.
    assert err.body["message"].strip() == UPSTREAM_400[upstream.kind].strip()
    if upstream.kind == "gemini":
        assert err.code == "invalid_argument"
    only(upstream.requests("bad"))
    assert backup.requests() == []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("upstream", ["gemini"], indirect=True)
def test_gemini_safety_block_is_a_content_policy_error(client, backup, upstream, stream):
    upstream.mock.fail(upstream.model("bad"), GeminiFault(blocked=True))
    with pytest.raises(openai.BadRequestError) as e:
        resp = client.chat.completions.create(model=upstream.route("bad"), messages=HELLO, stream=stream)
        if stream:
            list(resp)
    assert e.value.code == "content_policy_violation"
    assert "HARM_CATEGORY_DANGEROUS_CONTENT" in e.value.message
    only(upstream.requests("bad"))
    assert backup.requests() == []


# --- models ----------------------------------------------------------------------------------


def test_models_retrieve_describes_one_model(client):
    m = client.models.retrieve("via-gemini")
    assert (m.object, m.id) == ("model", "via-gemini")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


# --- embeddings ------------------------------------------------------------------------------


@pytest.fixture(params=sorted(EMBED_ROUTES))
def embed(request, primary, gemini_up):
    """(kind, route, upstream model, mock) of an embeddings route."""
    route, _channel, model = EMBED_ROUTES[request.param]
    mock = {"openai": primary, "gemini": gemini_up}[request.param]
    return request.param, route, model, mock


def embed_requests(kind, mock, model):
    if kind == "gemini":
        return mock.requests(model, method="batchEmbedContents")
    return mock.requests(model, path="/v1/embeddings")


def sent_texts(kind, body) -> list[str]:
    if kind == "gemini":
        return [" ".join(p["text"] for p in r["content"]["parts"]) for r in body["requests"]]
    return [body["input"]] if isinstance(body["input"], str) else body["input"]


def sent_dimensions(kind, body):
    if kind == "gemini":
        return {r.get("outputDimensionality") for r in body["requests"]}
    return {body.get("dimensions")}


def test_embeddings_for_a_string(client, embed):
    kind, route, model, mock = embed
    text = "The food was delicious"
    raw = client.embeddings.with_raw_response.create(model=route, input=text)
    resp = raw.parse()

    assert resp.object == "list"
    item = only(resp.data)
    assert (item.object, item.index) == ("embedding", 0)
    assert item.embedding == embedding_for(text)  # decoded from base64 by the SDK
    assert resp.model == model
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens
    assert raw.headers["x-switchyard-route"] == route

    sent = only(embed_requests(kind, mock, model))
    assert sent_texts(kind, sent.body) == [text]
    if kind == "openai":
        assert sent.body["model"] == model
        assert resp.usage.prompt_tokens == len(text.split())  # the upstream's own count
    else:
        assert sent.body["requests"][0]["model"] == f"models/{model}"
        assert sent.headers.get("x-goog-api-key")


def test_embeddings_for_a_list_keep_the_input_order(client, embed):
    kind, route, model, mock = embed
    texts = ["first text", "the second one", "3"]
    resp = client.embeddings.create(model=route, input=texts)
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert [d.embedding for d in resp.data] == [embedding_for(t) for t in texts]
    assert resp.usage.prompt_tokens > 0
    assert sent_texts(kind, only(embed_requests(kind, mock, model)).body) == texts


def test_embeddings_dimensions_are_honoured(client, embed):
    kind, route, model, mock = embed
    resp = client.embeddings.create(model=route, input=["a b", "c"], dimensions=4)
    assert [len(d.embedding) for d in resp.data] == [4, 4]
    assert resp.data[0].embedding == embedding_for("a b", 4)
    assert sent_dimensions(kind, only(embed_requests(kind, mock, model)).body) == {4}


@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_embeddings_in_the_encoding_format_asked_for(client, embed, fmt):
    kind, route, model, mock = embed
    resp = client.embeddings.create(model=route, input="hello there", encoding_format=fmt)
    got = only(resp.data).embedding
    if fmt == "float":
        assert got == embedding_for("hello there")
    else:
        assert isinstance(got, str)
        raw = base64.b64decode(got)
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == embedding_for("hello there")
        assert len(raw) == 4 * EMBED_DIMS


def test_embeddings_on_a_route_that_cannot_embed_are_refused(client, anthropic_up):
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="via-anthropic", input="hello")
    assert "via-anthropic" in e.value.message
    assert anthropic_up.all_requests() == []


def test_embeddings_errors(client, primary, gemini_up):
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-embedder", input="hello")
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="embed-openai", input=openai.omit)
    assert "input" in e.value.message
    assert primary.all_requests() == [] and gemini_up.all_requests() == []

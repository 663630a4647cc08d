"""The OpenAI-compatible server on the embedded model, driven by the official `openai` SDK."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m-instruct"  # as served by the api_url fixture

QUESTIONS = ["Who are you?", "What is the capital of France?", "Name three colors.", "What is 2 + 2?",
             "Say hello in Spanish.", "What is a cat?", "Write one word.", "What day comes after Monday?"]


def _ask(client, question, **kwargs):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                          temperature=0, **kwargs)


def test_models_listed(client):
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_chat_answer_and_usage(client, smol_engine):
    answer = _ask(client, "What is the capital of France?", max_tokens=20)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and "Paris" in choice.message.content
    assert choice.finish_reason in ("stop", "length")
    prompt = smol_engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False)
    assert answer.usage.prompt_tokens == len(smol_engine.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert 0 < answer.usage.completion_tokens <= 20
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_stream_equals_the_whole_answer(client):
    whole = _ask(client, "Name three colors.", max_tokens=24).choices[0].message.content
    pieces, finish, usage = [], None, None
    for chunk in _ask(client, "Name three colors.", max_tokens=24, stream=True,
                      stream_options={"include_usage": True}):
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert len([p for p in pieces if p]) > 3  # really streamed, piece by piece
    assert "".join(pieces) == whole and finish in ("stop", "length") and usage.completion_tokens > 0


def test_stop_sequence_cuts_the_answer(client):
    whole = _ask(client, "Count from one to ten in words.", max_tokens=40).choices[0].message.content
    stop = whole.split()[4]  # a word from the middle of the greedy answer
    cut = _ask(client, "Count from one to ten in words.", max_tokens=40, stop=[stop, "zzz"]).choices[0]
    assert cut.message.content == whole[:whole.index(stop)] and cut.finish_reason == "stop"


def test_n_choices_with_seed(client):
    kwargs = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a fact."}], "n": 3,
              "temperature": 1.0, "seed": 42, "max_tokens": 16}
    first = client.chat.completions.create(**kwargs)
    again = client.chat.completions.create(**kwargs)
    texts = [c.message.content for c in first.choices]
    assert [c.index for c in first.choices] == [0, 1, 2] and len(set(texts)) > 1
    assert texts == [c.message.content for c in again.choices]
    assert 3 <= first.usage.completion_tokens <= 3 * 16  # usage counts every choice


def test_eight_concurrent_requests_match_sequential_answers(client):
    sequential = [_ask(client, q, max_tokens=24).choices[0].message.content for q in QUESTIONS]
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        concurrent = list(pool.map(lambda q: _ask(client, q, max_tokens=24).choices[0].message.content, QUESTIONS))
    assert concurrent == sequential


def test_tool_call_round_trip(client):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    question = {"role": "user", "content": "What is the weather in Paris?"}
    # a named tool_choice forces a call of that function; the model writes the arguments
    first = client.chat.completions.create(model=MODEL, messages=[question], tools=tools, temperature=0,
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                           max_tokens=60)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    assert isinstance(json.loads(call.function.arguments), dict)
    streamed = client.chat.completions.create(model=MODEL, messages=[question], tools=tools, temperature=0,
                                              tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                              max_tokens=60, stream=True)
    deltas = [c.choices[0] for c in streamed if c.choices]
    calls = [tc for d in deltas for tc in (d.delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather" and calls[0].function.arguments == call.function.arguments
    assert deltas[-1].finish_reason == "tool_calls"
    # the result goes back as a tool message; the answer is text
    follow = client.chat.completions.create(
        model=MODEL, tools=tools, temperature=0, max_tokens=30,
        messages=[question, choice.message.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21, "sky": "sunny"}'}])
    assert follow.choices[0].finish_reason in ("stop", "length") and follow.choices[0].message.content
    assert follow.usage.prompt_tokens > first.usage.prompt_tokens


def test_completions_endpoint(client):
    one = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=5, temperature=0)
    assert one.choices[0].text and one.usage.completion_tokens <= 5
    both = client.completions.create(model=MODEL, prompt=["The capital of France is", "One, two,"],
                                     max_tokens=5, temperature=0)
    assert [c.index for c in both.choices] == [0, 1] and both.choices[0].text == one.choices[0].text
    pieces = [c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=5, temperature=0, stream=True) if c.choices]
    assert "".join(pieces) == one.choices[0].text


def test_errors_have_openai_shape(client, keyed_url):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404 and err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        _ask(client, "hi", top_p=1.5)
    assert err.value.body["param"] == "top_p" and err.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=[])
    assert err.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        _ask(client, "hi", n=0)
    with pytest.raises(openai.BadRequestError) as err:
        _ask(client, "long " * 9000)
    assert "context" in err.value.body["message"]
    wrong = openai.OpenAI(base_url=keyed_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        wrong.models.list()
    assert err.value.body["code"] == "invalid_api_key"
    right = openai.OpenAI(base_url=keyed_url, api_key="sekret", max_retries=0)
    assert [m.id for m in right.models.list()] == [MODEL]
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{keyed_url}/models", timeout=10)
    assert err.value.code == 401 and "API key" in json.loads(err.value.read())["error"]["message"]


def test_client_that_goes_away_frees_its_rows(client, smol_engine):
    import time

    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Tell a long story."}],
                                            max_tokens=400, temperature=0, stream=True)
    for pieces, _chunk in enumerate(stream, 1):
        if pieces == 3:
            break
    assert smol_engine._rows  # still generating for us
    stream.close()
    deadline = time.monotonic() + 10
    while smol_engine._rows and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not smol_engine._rows, "the aborted request should leave the batch"

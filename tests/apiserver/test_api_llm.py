"""The answer service with the embedded LLM: streamed tokens then the verified answer's citations, and a
client that goes away mid-stream stops the generation (the server closes ``Assistant.stream``)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from rag.remote import RemoteAssistant
from tests.support.apiserver import API_KEY, start_api, stop_api

pytestmark = [pytest.mark.slow, pytest.mark.server, pytest.mark.timeout(1200)]

QUESTION = "What did the Datadog recap say about platform engineering and supply chain security at KubeCon 2022?"
CLOSED = "stream closed early: the client went away"


@pytest.fixture(scope="module")
def llm_api(fresh_home, seed_data_dir):
    server = start_api(fresh_home("llm"), seed_data_dir, keys=(API_KEY,), timeout=600,
                       KQA_LLM_BACKEND="llamacpp", KQA_LLM_THREADS="2")  # fmt: skip
    yield server
    stop_api(server)


def wait_for_log(server, text: str, count: int, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while server.log().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged {count} times:\n{server.log()[-4000:]}"
        time.sleep(0.5)
    return server.log()


def test_openai_stream_sends_tokens_then_the_verified_citations(llm_api):
    client = openai.OpenAI(base_url=f"{llm_api.url}/v1", api_key=API_KEY)
    chunks = list(client.chat.completions.create(
        model="kubecon-qa", messages=[{"role": "user", "content": QUESTION}], stream=True,
    ))  # fmt: skip
    tokens = [c.choices[0].delta.content for c in chunks[:-1] if c.choices[0].delta.content]
    assert len(tokens) > 3  # the model's own tokens, as it wrote them
    last = chunks[-1].model_extra
    assert chunks[-1].choices[0].finish_reason == "stop" and last["verified_text"]
    if not last["abstained"]:
        assert last["citations"]
        for c in last["citations"]:
            assert f"[{c['number']}]" in last["verified_text"] and c["quote"]


def test_a_client_that_disconnects_mid_stream_stops_the_generation(llm_api):
    before = llm_api.log().count(CLOSED)
    seen = 0
    with httpx.stream("POST", f"{llm_api.url}/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                      json={"model": "kubecon-qa", "stream": True, "messages": [{"role": "user", "content": QUESTION}]},
                      timeout=300) as response:  # fmt: skip
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                seen += 1
                if seen == 2:
                    break  # leave after two tokens: the with block closes the connection
    assert seen == 2
    wait_for_log(llm_api, CLOSED, before + 1)
    # A stream ends as either "answered" or "closed early", never both: the close is this request's, and
    # no answer is finished after it (the previous test's "answered" line may land late; it comes before).
    time.sleep(2)
    assert "stream answered" not in llm_api.log().rsplit(CLOSED, 1)[1]
    assert httpx.get(f"{llm_api.url}/healthz").status_code == 200

    # the front ends' client: closing its stream early closes the service's generator the same way
    remote = RemoteAssistant(llm_api.url, API_KEY)
    stream = remote.stream(QUESTION)
    kinds = []
    for item in stream:
        kinds.append(item.kind)
        if item.kind == "token":
            break
    stream.close()
    assert kinds[-1] == "token"
    wait_for_log(llm_api, CLOSED, before + 2)
    time.sleep(2)
    assert "stream answered" not in llm_api.log().rsplit(CLOSED, 1)[1]

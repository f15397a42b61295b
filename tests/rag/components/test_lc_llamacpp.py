"""The LangChain Runnable over the real embedded 0.5B model: its run under generate, and closing a stream."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from rag.assistant import Assistant
from rag.components import llm
from tests.support.runs import walk as _walk

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def real_qa(fixture_settings, embedded_home):
    """The fixture store answered by the embedded model (its GGUF in ``embedded_home``)."""
    settings = fixture_settings.model_copy(
        update={"llm_backend": "llamacpp", "home": embedded_home, "chroma_path": fixture_settings.chroma_dir,
                "llm_max_tokens": 96, "llm_ctx": 2048}  # fmt: skip
    )
    return Assistant(settings)


def test_the_models_run_sits_under_generate_with_its_usage(real_qa):
    collector = RunCollectorCallbackHandler()
    answer = real_qa.as_runnable().invoke("What is SpinKube?", config={"callbacks": [collector]})
    assert answer.backend == "llamacpp" and not answer.fallback_reason
    [root] = collector.traced_runs
    generate = next(r for r in root.child_runs if r.name == "generate")
    [model_run] = [r for r in _walk(generate) if r.run_type == "llm"]
    message = model_run.outputs["generations"][0][0]["message"]  # serialised: {"kwargs": {...}}
    usage = message["kwargs"]["usage_metadata"] if isinstance(message, dict) else message.usage_metadata
    assert usage["input_tokens"] >= answer.prompt_tokens // 2  # our cl100k count vs the model's tokenizer
    assert usage["output_tokens"] >= 1
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert generate.outputs["text"].strip()


class _Tokens(BaseCallbackHandler):
    def __init__(self):
        self.tokens: list[str] = []

    def on_llm_new_token(self, token, **kwargs):
        self.tokens.append(token)


def test_closing_the_runnables_astream_stops_the_model(real_qa):
    """Read one token, close: once the model is free again, it has written at most a couple more."""
    counted = _Tokens()
    whole = _Tokens()
    real_qa.as_runnable().invoke("What is SpinKube?", config={"callbacks": [whole]})
    assert len(whole.tokens) > 8  # the answer the model writes when read to the end

    async def read_one_then_close():
        stream = real_qa.as_runnable().astream("What is SpinKube?", config={"callbacks": [counted]})
        async for event in stream:
            if event.kind == "token":
                break
        await stream.aclose()

    asyncio.run(read_one_then_close())
    engine = llm.get_chat_model(real_qa.settings).engine
    assert engine.lock.acquire(timeout=120)  # the generation has ended (stopped or finished)
    engine.lock.release()
    assert 1 <= len(counted.tokens) <= 3, counted.tokens

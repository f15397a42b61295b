"""The embedded llama.cpp backend, end to end with the real 0.5B GGUF (slow, but it runs in CI)."""

from __future__ import annotations

import threading
import time

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from rag.components.llm import LlamaCppChatModel, get_chat_model
from rag.errors import LLMTimeoutError
from rag.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# A fact no pre-training corpus has, so a correct answer can only come from the passage.
PASSAGE = (
    "[1] KubeCon Valencia recap (fictional test passage): The Flux maintainers announced that the "
    "project's new mascot is a purple otter named Fennelbrook, chosen by a community vote."
)
GROUNDED = [
    SystemMessage("Answer the question using only the numbered passage. Cite it as [1]. Be brief."),
    HumanMessage(f"{PASSAGE}\n\nQuestion: What is the name of the Flux mascot?"),
]
LONG_TASK = [HumanMessage("Count from 1 to 400, separated by commas. Output only the numbers.")]


def embedded_settings(home, **overrides) -> Settings:
    values = {"home": home, "llm_ctx": 2048, "llm_max_tokens": 48, "llm_threads": 2} | overrides
    return Settings(**values)


@pytest.fixture(scope="module")
def model(embedded_home) -> LlamaCppChatModel:
    return get_chat_model(embedded_settings(embedded_home))


def test_loaded_once_per_process_and_shared(embedded_home, model):
    assert isinstance(model, BaseChatModel)
    assert get_chat_model(embedded_settings(embedded_home)) is model
    other = get_chat_model(embedded_settings(embedded_home, llm_max_tokens=16))
    assert other is not model and other.llama is model.llama  # same weights, different generation settings


def test_extractive_backend_has_no_model(embedded_home):
    assert get_chat_model(embedded_settings(embedded_home, llm_backend="extractive")) is None


def test_streams_an_answer_grounded_in_the_passage(model):
    arrivals, pieces = [], []
    for chunk in model.stream(GROUNDED):
        if chunk.content:
            arrivals.append(time.monotonic())
            pieces.append(chunk.content)
    answer = "".join(pieces)
    assert "Fennelbrook" in answer
    assert len(pieces) >= 3  # token by token, not one blob
    assert arrivals[-1] - arrivals[0] > 0.01  # and the tokens arrived over time


def test_invoke_answers_from_the_passage_too(model):
    reply = model.invoke(GROUNDED)
    assert "Fennelbrook" in reply.content
    assert reply.response_metadata["finish_reason"] == "stop"


def test_max_tokens_bounds_the_answer(embedded_home):
    short = get_chat_model(embedded_settings(embedded_home, llm_max_tokens=16))
    reply = short.invoke(LONG_TASK)
    assert reply.response_metadata["finish_reason"] == "length"
    assert len(short.llama.tokenize(reply.content.encode(), add_bos=False)) <= 16


def test_timeout_while_reading_a_long_prompt_then_recovers(embedded_home, model):
    impatient = get_chat_model(embedded_settings(embedded_home, llm_timeout_s=0.3))
    long_passage = " ".join(
        f"Session {i} covered eBPF, service meshes and platform teams." for i in range(100)
    )
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError, match="llm_timeout_s=0.3"):
        impatient.invoke([HumanMessage(long_passage + "\nSummarise.")])
    assert time.monotonic() - started < 0.3 + 1.5  # aborted inside llama.cpp, not after the whole prompt
    assert "Fennelbrook" in model.invoke(GROUNDED).content  # the shared context still works afterwards


def test_timeout_while_generating_keeps_the_streamed_tokens(embedded_home):
    # How long this model takes on this machine decides the budget: half-way between its first token
    # and its natural end, so the deadline always falls inside generation, on a quiet or a loaded box.
    unhurried = get_chat_model(embedded_settings(embedded_home, llm_max_tokens=2000))
    started = time.monotonic()
    first_token_at = None
    for chunk in unhurried.stream(LONG_TASK):
        if first_token_at is None and chunk.content:
            first_token_at = time.monotonic() - started
    finished_at = time.monotonic() - started
    assert first_token_at is not None and finished_at - first_token_at > 0.5, "answer too short to test"
    budget = first_token_at + (finished_at - first_token_at) / 2

    impatient = get_chat_model(embedded_settings(embedded_home, llm_timeout_s=budget, llm_max_tokens=2000))
    received = []
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        for chunk in impatient.stream(LONG_TASK):
            received.append(chunk.content)
    # checked between tokens: the bound is the budget plus one token's decode (slow on a loaded 2-core box)
    assert time.monotonic() - started < budget + 3
    assert "".join(received).startswith("1")  # the tokens streamed before the deadline were delivered


def test_threads_share_the_model_one_generation_at_a_time(embedded_home, model):
    answers, errors = [], []

    def ask():
        try:
            answers.append(model.invoke(GROUNDED).content)
        except Exception as exc:  # pragma: no cover - reported by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(answers) == 3 and all("Fennelbrook" in answer for answer in answers)


def test_waiting_for_a_busy_model_counts_against_the_timeout(embedded_home, model):
    busy = get_chat_model(embedded_settings(embedded_home, llm_max_tokens=2000))
    waiting = get_chat_model(embedded_settings(embedded_home, llm_timeout_s=1))
    stream = busy.stream(LONG_TASK)
    next(stream)  # the busy model now holds the llama.cpp context
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError, match="busy"):
        waiting.invoke(GROUNDED)
    assert 0.9 < time.monotonic() - started < 2.5
    stream.close()  # abandoning a stream releases the context at once
    started = time.monotonic()
    assert "Fennelbrook" in model.invoke(GROUNDED).content
    assert time.monotonic() - started < 30

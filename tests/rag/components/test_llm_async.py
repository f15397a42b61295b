"""The OpenAI-compatible backend's async path: the same overall deadline and error mapping as the sync one."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.messages import HumanMessage

from rag.components.llm import OpenAICompatibleChatModel
from rag.errors import LLMTimeoutError, LLMUnavailableError
from tests.support.processes import free_port

QUESTION = [HumanMessage("What is the badge printer's nickname?")]


def _model(base_url: str, budget: float) -> OpenAICompatibleChatModel:
    return OpenAICompatibleChatModel(
        base_url=base_url, model="qwen2.5-coder-0.5b", api_key="sk-local", timeout=budget, max_retries=1,
        total_timeout_s=budget,
    )  # fmt: skip


async def _stream(model):
    return [chunk async for chunk in model.astream(QUESTION)]


def test_async_calls_to_a_wedged_server_end_at_the_overall_deadline(hung_server):
    # without it, two attempts of 1.5 s plus the client's back-off would take > 3 s
    model = _model(hung_server, 1.5)
    for call in (lambda: model.ainvoke(QUESTION), lambda: _stream(model)):
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError, match="llm_timeout_s=1.5"):
            asyncio.run(call())
        assert time.monotonic() - started < 2.9


def test_async_calls_to_a_closed_port_are_llm_unavailable():
    model = _model(f"http://127.0.0.1:{free_port()}/v1", 5)
    for call in (lambda: model.ainvoke(QUESTION), lambda: _stream(model)):
        with pytest.raises(LLMUnavailableError, match="Cannot reach the OpenAI-compatible server"):
            asyncio.run(call())

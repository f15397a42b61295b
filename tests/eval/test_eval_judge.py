"""The optional LLM judge: verdict parsing, and how each kind of item is judged."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from eval.gold import GoldItem
from eval.judge import Judge, parse_verdict
from rag.errors import KQAError
from rag.settings import Settings

ITEM = GoldItem(
    "q", "Who adopted Cilium?", "fact", "Datadog.", [["datadog"]], ["p"], ["Datadog adopted Cilium"]
)
UNANSWERABLE = GoldItem("u", "Ticket price?", "unanswerable", "Not in the recaps.", [], [], [])


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [("YES", True), ("no.", False), ("Answer: Yes, it matches.", True), ("I cannot tell", None), ("", None)],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) is verdict


def test_judge_asks_the_model_only_for_answerable_items(tmp_path):
    chat = FakeListChatModel(responses=["YES", "NO"])
    judge = Judge(Settings(home=tmp_path, llm_backend="extractive"), chat=chat)
    assert judge.correct(ITEM, {"answer": "Datadog did [1].", "abstained": False}) is True
    assert judge.correct(ITEM, {"answer": "Google did [1].", "abstained": False}) is False
    assert judge.correct(ITEM, {"answer": "I couldn't find that.", "abstained": True}) is False
    assert judge.correct(UNANSWERABLE, {"answer": "I couldn't find that.", "abstained": True}) is True
    assert judge.correct(UNANSWERABLE, {"answer": "It cost $99 [1].", "abstained": False}) is False


def test_judge_needs_an_llm_backend(tmp_path):
    with pytest.raises(KQAError, match="needs an LLM backend"):
        Judge(Settings(home=tmp_path, llm_backend="extractive"))

"""Stopping an answer stops the model: closing ``generate`` must not let LangChain drain the model's stream.

A reader's Stop closes the answer's generator chain; the model must produce nothing after that. (A
``prompt | model | parser`` sequence's stream, when closed, reads the model to its last token.)
"""

from __future__ import annotations

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from rag.answering import generate
from rag.evidence import Evidence


class _CountTokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens = 0

    def on_llm_new_token(self, token, **kwargs) -> None:
        self.tokens += 1


def _model(words: int, counter: _CountTokens) -> GenericFakeChatModel:
    reply = " ".join(f"word{i}" for i in range(words))
    return GenericFakeChatModel(messages=iter([AIMessage(content=reply)]), callbacks=[counter])


def test_closing_the_answer_stops_the_model_at_once():
    counter = _CountTokens()
    pieces = generate(_model(400, counter), Evidence(passages=[], tokens=0, ranked=[]), "What happened?")
    first = [next(pieces) for _ in range(3)]
    pieces.close()
    assert "".join(first).startswith("word0")
    assert counter.tokens <= 5, f"the model wrote {counter.tokens} tokens after being stopped at 3"


def test_an_unstopped_answer_streams_every_token_in_order():
    counter = _CountTokens()
    text = "".join(generate(_model(50, counter), Evidence(passages=[], tokens=0, ranked=[]), "What happened?"))
    assert text == " ".join(f"word{i}" for i in range(50))

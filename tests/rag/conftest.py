"""Fixtures for the read path: a real embedded Chroma store holding the fixture posts, ingested once.

The fixture posts (``tests/rag/fixtures/posts``) are short recaps of eight events, written so that
each has facts no other post has (names, versions, CVE ids) and one of them carries prompt-injection
text. They go through the real ingest job, so retrieval reads exactly what production reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

import rag.components.llm as llm_module
from tests.support.posts import source_text  # noqa: F401 - re-exported for the read-path tests

FIXTURE_POSTS = Path(__file__).parent / "fixtures" / "posts"


@pytest.fixture(scope="session")
def fixture_posts_dir() -> Path:
    return FIXTURE_POSTS


@pytest.fixture(scope="session")
def fixture_settings(tmp_path_factory, settings_factory):
    """Extractive-backend settings whose embedded store holds the fixture posts."""
    from ingest.pipeline import run_ingest

    settings = settings_factory(tmp_path_factory.mktemp("rag-fixture-home"), llm_backend="extractive")
    summary = run_ingest(paths=[FIXTURE_POSTS], settings=settings)
    assert summary.exit_code == 0, summary.to_dict()
    return settings


@pytest.fixture(scope="session")
def assistant(fixture_settings):
    from rag.assistant import Assistant

    return Assistant(fixture_settings)


@pytest.fixture
def settings_with(fixture_settings):
    """``settings_with(**changes)``: the fixture store's settings with some values changed."""

    def make(**changes):
        return fixture_settings.model_copy(update=changes)

    return make


@pytest.fixture(scope="session")
def embedder(fixture_settings):
    from rag.components.store import get_embedder_for

    return get_embedder_for(fixture_settings)


@pytest.fixture(scope="session")
def evidence_for(assistant, embedder):
    """``evidence_for([doc_id, ...])``: every evidence sentence of those posts as passages [1], [2], … in
    that order (one passage per post).

    Verification tests need to know exactly what each number holds, so this bypasses the selection
    that ``build_evidence`` makes (tested on its own).
    """
    from dataclasses import replace

    from rag.evidence import Evidence, Passage, chunk_sentences

    snapshot = assistant.retriever.snapshot()

    def build(doc_ids: list[str]) -> Evidence:
        passages = []
        for n, doc_id in enumerate(doc_ids, start=1):
            chunks = sorted((c for c in snapshot.chunks if c.doc_id == doc_id), key=lambda c: c.start)
            assert chunks, f"no chunks for {doc_id}"
            post = snapshot.post_text(doc_id)
            seen, sentences = set(), []
            for chunk in chunks:
                for s in chunk_sentences(chunk, post):
                    if s.key not in seen:
                        seen.add(s.key)
                        sentences.append(s)
            vectors = embedder.embed([s.display for s in sentences])
            sentences = [replace(s, embedding=v) for s, v in zip(sentences, vectors, strict=True)]
            passages.append(Passage(n, sentences))
        return Evidence(passages, 0, [s for p in passages for s in p.sentences])

    return build


def replying(*replies: str):
    """A chat model that answers with ``replies`` in turn (the last one again once they run out)."""

    class Scripted(GenericFakeChatModel):
        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            yield from super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)

    queue = list(replies)

    def messages():
        while True:
            yield AIMessage(content=queue.pop(0) if len(queue) > 1 else queue[0])

    return Scripted(messages=messages())


@pytest.fixture
def corpus_with_model(corpus_settings, monkeypatch):
    """``corpus_with_model(*replies)``: an openai-backend Assistant over the corpus whose model says ``replies``."""

    def make(*replies: str):
        model = replying(*replies)
        monkeypatch.setattr(llm_module, "get_chat_model", lambda settings=None: model)
        from rag.assistant import Assistant

        return Assistant(corpus_settings.model_copy(update={"llm_backend": "openai"}))

    return make

"""Fixtures for the read path: a real embedded Chroma store holding the fixture posts, ingested once.

The fixture posts (``tests/rag/fixtures/posts``) are short recaps of eight events, written so that
each has facts no other post has (names, versions, CVE ids) and one of them carries prompt-injection
text. They go through the real ingest job, so retrieval reads exactly what production reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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


def source_text(path: str | Path) -> str:
    """The text that chunk and citation offsets index (what ingest read from the file)."""
    from ingest.loaders import load_document

    path = Path(path)
    return load_document(path, path.read_bytes()).source_text


@pytest.fixture(scope="session")
def embedder(fixture_settings):
    from rag.components.store import get_embedder_for

    return get_embedder_for(fixture_settings)


@pytest.fixture(scope="session")
def evidence_for(assistant, embedder):
    """``evidence_for([doc_id, ...])``: every sentence of those posts packed as [1], [2], … in that order.

    Verification tests need to know exactly what each number holds, so this bypasses the selection
    that ``pack_evidence`` makes (tested on its own).
    """
    from rag.packing import Evidence, EvidenceSentence, PackedPost, chunk_sentences

    snapshot = assistant.retriever.snapshot()

    def build(doc_ids: list[str]) -> Evidence:
        posts = []
        for n, doc_id in enumerate(doc_ids, start=1):
            chunks = sorted((c for c in snapshot.chunks if c.doc_id == doc_id), key=lambda c: c.start)
            assert chunks, f"no chunks for {doc_id}"
            seen, sentences = set(), []
            for chunk in chunks:
                for s in chunk_sentences(chunk):
                    if s.key not in seen:
                        seen.add(s.key)
                        sentences.append(s)
            vectors = embedder.embed([s.text for s in sentences])
            sentences = [
                EvidenceSentence(s.chunk, s.text, s.start, s.end, 0.0, 0.0, v)
                for s, v in zip(sentences, vectors, strict=True)
            ]
            posts.append(PackedPost(n, chunks[0], sentences))
        return Evidence(posts, 0, [s for p in posts for s in p.sentences])

    return build

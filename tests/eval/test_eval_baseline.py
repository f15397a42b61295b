"""The LangChain tutorial baseline: its splitter, its citation parsing, and a real Chroma index."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from langchain_core.documents import Document

from eval.baseline import (
    CHUNK_OVERLAP,
    CHUNK_SIZE,
    STUFF_PROMPT,
    TutorialRAG,
    attach_slug_mentions,
    cited_evidence,
    format_context,
    load_documents,
    split_documents,
)
from rag.settings import Settings

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "articles"
SEEDS = ["seed-kubecon-detroit-2022-three-takeaways", "seed-kubecon-valencia-2022-datadog-highlights"]


def _chunks() -> list[Document]:
    return [
        Document(page_content="Cilium was adopted by Datadog.", metadata={"slug": "valencia-post"}),
        Document(page_content="Wasm is production ready.", metadata={"slug": "detroit-post"}),
    ]


def test_tutorial_splitter_settings(tmp_path):
    (tmp_path / "long.md").write_text("word " * 2000, encoding="utf-8")
    chunks = split_documents(load_documents(tmp_path))
    assert (CHUNK_SIZE, CHUNK_OVERLAP) == (1000, 200)
    assert all(len(c.page_content) <= CHUNK_SIZE for c in chunks)
    assert len(chunks) > 10 and all(c.metadata["slug"] == "long" for c in chunks)
    assert chunks[1].metadata["start_index"] < chunks[0].metadata["start_index"] + CHUNK_SIZE  # overlapping


def test_prompt_numbers_the_context_and_asks_for_sources():
    context = format_context(_chunks())
    assert context.startswith("[1] (source: valencia-post)\nCilium")
    assert "[2] (source: detroit-post)" in context
    prompt = STUFF_PROMPT.format(question="Q?", context=context)
    assert "square brackets" in prompt and "don't know" in prompt


def test_citations_from_markers_and_slug_mentions():
    chunks = _chunks()
    text = attach_slug_mentions(
        "Datadog adopted Cilium (source: valencia-post). Wasm is ready [2]. Bad [7].", chunks
    )
    assert text == "Datadog adopted Cilium [1]. Wasm is ready [2]. Bad [7]."
    cited = cited_evidence(text, chunks)
    assert [(c.n, c.source_id) for c in cited] == [(1, "valencia-post"), (2, "detroit-post")]
    assert cited[0].quote == "Cilium was adopted by Datadog."


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_index_is_built_once_and_ranks_the_right_post(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for slug in SEEDS:
        shutil.copy(CORPUS / f"{slug}.md", corpus / f"{slug}.md")
    settings = Settings(home=tmp_path / "home", llm_backend="extractive")
    first = TutorialRAG(settings, corpus)
    info = first.build_index(log=lambda _: None)
    assert info["posts"] == 2 and info["chunks"] > 2 and not info["reused"]
    second = TutorialRAG(settings, corpus)
    assert second.build_index(log=lambda _: None)["reused"]
    ranked = second.retrieve("Which company shared its experience adopting Cilium?").ranked_sources
    assert ranked[0] == "seed-kubecon-valencia-2022-datadog-highlights"
    # A changed corpus gets a fresh collection and the stale one is dropped.
    (corpus / f"{SEEDS[0]}.md").write_text("# Changed\n\nNothing left but this line.\n", encoding="utf-8")
    third = TutorialRAG(settings, corpus)
    changed = third.build_index(log=lambda _: None)
    assert not changed["reused"] and changed["collection"] != info["collection"]
    from rag.components.store import get_client

    names = [getattr(c, "name", c) for c in get_client(settings).list_collections()]
    assert info["collection"] not in names

"""The whole shared corpus (84 recaps): every post ingested, records exact, a second run a no-op."""

from __future__ import annotations

from collections import defaultdict

from ingest.pipeline import run_ingest
from rag.components.store import get_collection
from rag.components.tokens import count_tokens
from rag.events import parse_event
from tests.support.posts import source_text


def test_every_post_is_stored_with_exact_chunks_and_event_metadata(corpus_settings, shared_corpus_dir):
    files = {p.stem: p for p in shared_corpus_dir.glob("*.md")}
    assert len(files) == 84
    got = get_collection(corpus_settings).get(include=["documents", "metadatas"])
    posts: dict[str, list[dict]] = defaultdict(list)
    for document, meta in zip(got["documents"], got["metadatas"], strict=True):
        posts[meta["doc_id"]].append(meta)
        source = source_text(files[meta["doc_id"]])
        assert document == source[meta["start"] : meta["end"]]
        assert count_tokens(document) <= corpus_settings.chunk_tokens
    assert posts.keys() == files.keys()
    for doc_id, metas in posts.items():
        assert sorted(m["chunk_index"] for m in metas) == list(range(metas[0]["n_chunks"])), doc_id
        meta = metas[0]
        assert meta["title"] and meta["event"] and meta["year"], doc_id
        # Every post but the two seeds names its GitHub source in the front matter.
        assert meta["url"].startswith("https://github.com/") or doc_id.startswith("seed-"), doc_id
        info = parse_event(meta["event"])
        assert (info.year, info.city, info.region) == (meta["year"], meta["city"], meta["region"]), doc_id


def test_a_second_run_over_the_corpus_writes_nothing(corpus_settings, shared_corpus_dir):
    summary = run_ingest(paths=[shared_corpus_dir], settings=corpus_settings)
    assert (summary.unchanged, summary.added, summary.updated, summary.deleted) == (84, 0, 0, 0)
    assert (summary.chunks_written, summary.chunks_deleted, summary.exit_code) == (0, 0, 0)

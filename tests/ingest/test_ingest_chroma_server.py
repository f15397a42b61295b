"""The ingest job against a real Chroma server (``chroma run`` on loopback), not the embedded store."""

from __future__ import annotations

import shutil

import pytest

from ingest.pipeline import run_ingest
from rag.schema import UPDATED_AT_KEY
from tests.support.posts import source_text

pytestmark = pytest.mark.server


def test_ingest_into_chroma_server_is_incremental_and_prunes(
    chroma_server, tmp_path, seed_data_dir, settings_factory
):
    corpus = tmp_path / "posts"
    shutil.copytree(seed_data_dir, corpus)
    settings = settings_factory(tmp_path / "home", chroma_url=chroma_server, collection="server_ingest_test")

    first = run_ingest(paths=[corpus], settings=settings)
    assert first.exit_code == 0, first.to_dict()
    assert first.added == 2 and first.chunks_written > 0
    assert first.store == f"Chroma server {chroma_server}"
    assert not (tmp_path / "home" / "chroma").exists(), "a server run must not create an embedded store"

    # A second client (another process would do the same) sees exactly what was written.
    import chromadb

    host, port = chroma_server.removeprefix("http://").split(":")
    raw = chromadb.HttpClient(host=host, port=int(port)).get_collection("server_ingest_test")
    stored = raw.get(include=["documents", "metadatas"])
    assert len(stored["ids"]) == first.chunks_written
    assert {m["doc_id"] for m in stored["metadatas"]} == {p.stem for p in corpus.glob("*.md")}
    for document, metadata in zip(stored["documents"], stored["metadatas"], strict=True):
        source = source_text(corpus / f"{metadata['doc_id']}.md")
        assert document == source[metadata["start"] : metadata["end"]]
    updated_at = raw.metadata[UPDATED_AT_KEY]

    second = run_ingest(paths=[corpus], settings=settings)
    assert (second.unchanged, second.chunks_written, second.chunks_deleted) == (2, 0, 0)
    assert raw.get()["ids"] == stored["ids"]
    assert (
        chromadb.HttpClient(host=host, port=int(port))
        .get_collection("server_ingest_test")
        .metadata[UPDATED_AT_KEY]
        == updated_at
    )

    removed = sorted(corpus.glob("*.md"))[0]
    removed.unlink()
    third = run_ingest(paths=[corpus], settings=settings)
    assert (third.deleted, third.unchanged) == (1, 1)
    remaining = raw.get(include=["metadatas"])["metadatas"]
    assert remaining and all(m["doc_id"] != removed.stem for m in remaining)

"""run_ingest against a real embedded Chroma store and the real embedding model.

Covers the record contract (rag/schema.py), incremental and idempotent runs, pruning, bad inputs
next to good ones, reset / dry run, and recovery from runs interrupted at every write step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from chromadb.api.models.Collection import Collection

from ingest.pipeline import IngestUsageError, embedding_text, run_ingest
from rag.components.store import get_collection, get_embedder_for
from rag.events import parse_event
from rag.schema import UPDATED_AT_KEY, make_chunk_id
from tests.support.posts import source_text

SCHEMA_FIELDS = {
    "doc_id", "title", "event", "year", "city", "region", "date", "author", "url", "path", "section",
    "chunk_index", "n_chunks", "start", "end", "content_hash", "doc_hash",
}  # fmt: skip

POSTS = {
    "alice-valencia-2022": (
        '---\ntitle: "Valencia highlights"\ndate: 2022-05-20\n'
        'event: "KubeCon + CloudNativeCon Europe 2022 (Valencia)"\nauthor: Alice\n---\n\n'
        "# Valencia highlights\n\nThe first in-person KubeCon after the pandemic felt like a reunion.\n\n"
        "## Keynotes\n\n"
        + " ".join(
            f"Keynote {i} covered supply chain security, signing with Sigstore and SBOMs." for i in range(12)
        )
        + "\n\n## Hallway track\n\nPeople talked about eBPF, Cilium and platform teams all week long.\n"
    ),
    "bob-detroit-notes": (
        "# Detroit notes\n\nKubeCon North America 2022 in Detroit was about platform engineering.\n\n"
        + "\n\n".join(
            f"Session {i}: internal developer platforms reduce cognitive load for teams." for i in range(10)
        )
        + "\n"
    ),
    "carol-paris-2024": (
        "---\ntitle: Paris 2024\nsource_repo: carol/site\nsource_path: kubecon.md\n---\n"
        "AI workloads on Kubernetes dominated KubeCon Europe 2024 in Paris; GPUs were the talk of the town.\n"
    ),
}


def write_posts(directory: Path) -> Path:
    """``POSTS`` as ``<doc_id>.md`` files in a new ``directory``."""
    directory.mkdir()
    for doc_id, text in POSTS.items():
        (directory / f"{doc_id}.md").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_posts(tmp_path / "posts")


@pytest.fixture
def settings(tmp_path, settings_factory):
    return settings_factory(tmp_path / "home", chunk_tokens=64, chunk_overlap=12)


@pytest.fixture
def embed_calls(settings, monkeypatch) -> list[list[str]]:
    """Every list of texts the pipeline embeds (the model still runs)."""
    embedder = get_embedder_for(settings)
    calls: list[list[str]] = []
    real_embed = embedder.embed

    def spy(texts, **kwargs):
        calls.append(list(texts))
        return real_embed(texts, **kwargs)

    monkeypatch.setattr(embedder, "embed", spy)
    return calls


def snapshot(settings) -> dict[str, tuple[str, dict, np.ndarray]]:
    got = get_collection(settings).get(include=["documents", "metadatas", "embeddings"])
    return {
        i: (d, m, np.asarray(e))
        for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True)
    }


def same_records(left: dict, right: dict) -> bool:
    """Same ids, texts and metadata, and the same vectors up to the embedder's precision: on a CPU with
    bf16 (AVX512-BF16/AMX) a chunk embedded in another batch differs in the fourth decimal (cosine
    0.99999), while another text's vector is far off."""
    return left.keys() == right.keys() and all(
        left[i][0] == right[i][0] and left[i][1] == right[i][1] and _cosine(left[i][2], right[i][2]) > 0.9999
        for i in left
    )


def _cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def updated_at(settings) -> str | None:
    return (get_collection(settings).metadata or {}).get(UPDATED_AT_KEY)


def test_records_follow_the_schema(corpus, settings, embed_calls):
    summary = run_ingest(paths=[corpus], settings=settings)
    assert summary.exit_code == 0, summary.to_dict()
    assert (summary.added, summary.updated, summary.unchanged, summary.deleted) == (3, 0, 0, 0)
    assert sorted(summary.changes["added"]) == sorted(POSTS)
    assert set(summary.seconds) >= {"scan", "read", "chunk", "embed", "write", "total"}
    records = snapshot(settings)
    assert len(records) == summary.chunks_written == summary.chunks_in_store
    assert updated_at(settings)

    by_post: dict[str, list] = {}
    for record_id, (document, meta, vector) in records.items():
        assert set(meta) == SCHEMA_FIELDS
        source = source_text(corpus / f"{meta['doc_id']}.md")
        assert document == source[meta["start"] : meta["end"]]
        assert record_id == make_chunk_id(meta["doc_id"], meta["chunk_index"], meta["content_hash"])
        assert meta["path"] == str((corpus / f"{meta['doc_id']}.md").resolve())
        assert vector.shape == (get_embedder_for(settings).dimension,)
        by_post.setdefault(meta["doc_id"], []).append(meta)
    for metas in by_post.values():
        assert sorted(m["chunk_index"] for m in metas) == list(range(metas[0]["n_chunks"]))
        assert len({m["doc_hash"] for m in metas}) == 1
    assert len(by_post["alice-valencia-2022"]) > 2, "the long post is split"

    alice = by_post["alice-valencia-2022"][0]
    assert (alice["title"], alice["event"], alice["year"], alice["city"], alice["region"]) == (
        "Valencia highlights", "KubeCon + CloudNativeCon Europe 2022 (Valencia)", 2022, "Valencia", "EU",
    )  # fmt: skip
    assert (alice["date"], alice["author"], alice["url"]) == ("2022-05-20", "Alice", "")
    assert {m["section"] for m in by_post["alice-valencia-2022"]} >= {
        "Valencia highlights > Keynotes",
        "Valencia highlights > Hallway track",
    }
    bob = by_post["bob-detroit-notes"][0]
    info = parse_event(bob["event"])
    assert (bob["title"], bob["year"], bob["city"], bob["region"]) == ("Detroit notes", 2022, "Detroit", "NA")
    assert (info.year, info.city) == (2022, "Detroit")
    carol = by_post["carol-paris-2024"][0]
    assert carol["url"] == "https://github.com/carol/site/blob/HEAD/kubecon.md"
    assert (carol["year"], carol["city"], carol["region"]) == (2024, "Paris", "EU")

    # What was embedded is the heading path plus the chunk text; one call covers all three posts.
    assert len(embed_calls) == 1
    expected = [embedding_text(m["section"], d) for d, m, _ in records.values()]
    assert sorted(embed_calls[0]) == sorted(expected)


def test_second_run_changes_nothing_and_embeds_nothing(corpus, settings, embed_calls):
    run_ingest(paths=[corpus], settings=settings)
    before, stamp = snapshot(settings), updated_at(settings)
    embed_calls.clear()
    again = run_ingest(paths=[corpus], settings=settings)
    assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 0, 3, 0)
    assert (again.chunks_written, again.chunks_deleted, again.exit_code) == (0, 0, 0)
    assert embed_calls == []
    assert same_records(before, snapshot(settings))
    assert updated_at(settings) == stamp


def test_a_changed_post_replaces_all_its_chunks_and_only_it_is_embedded(corpus, settings, embed_calls):
    run_ingest(paths=[corpus], settings=settings)
    before = snapshot(settings)
    path = corpus / "alice-valencia-2022.md"
    path.write_text(
        POSTS["alice-valencia-2022"].replace("## Hallway track", "## Hallway talk"), encoding="utf-8"
    )
    embed_calls.clear()
    summary = run_ingest(paths=[corpus], settings=settings)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 2)
    assert summary.changes["updated"] == ["alice-valencia-2022"]
    after = snapshot(settings)
    alice_after = {i: r for i, r in after.items() if r[1]["doc_id"] == "alice-valencia-2022"}
    assert len(embed_calls) == 1 and len(embed_calls[0]) == len(alice_after) == summary.chunks_written
    assert "Valencia highlights > Hallway talk" in {r[1]["section"] for r in alice_after.values()}
    assert not any("Hallway track" in r[0] for r in alice_after.values())
    alice_before = {i for i, r in before.items() if r[1]["doc_id"] == "alice-valencia-2022"}
    assert summary.chunks_deleted == len(alice_before - alice_after.keys())
    others = {i: r for i, r in before.items() if r[1]["doc_id"] != "alice-valencia-2022"}
    assert same_records(others, {i: r for i, r in after.items() if r[1]["doc_id"] != "alice-valencia-2022"})


def test_touching_a_file_without_changing_it_is_not_a_change(corpus, settings, embed_calls):
    run_ingest(paths=[corpus], settings=settings)
    path = corpus / "bob-detroit-notes.md"
    path.touch()
    embed_calls.clear()
    assert run_ingest(paths=[corpus], settings=settings).unchanged == 3
    assert embed_calls == []


def test_deleted_posts_are_pruned_only_from_a_directory_run(corpus, settings):
    run_ingest(paths=[corpus], settings=settings)
    (corpus / "carol-paris-2024.md").unlink()

    kept = run_ingest(paths=[corpus], settings=settings, prune=False)
    assert (kept.deleted, kept.unchanged) == (0, 2)
    single = run_ingest(paths=[corpus / "bob-detroit-notes.md"], settings=settings)
    assert (single.deleted, single.unchanged, single.pruned) == (0, 1, False)
    assert any(m["doc_id"] == "carol-paris-2024" for _, m, _ in snapshot(settings).values())

    pruned = run_ingest(paths=[corpus], settings=settings)
    assert (pruned.deleted, pruned.unchanged, pruned.changes["deleted"]) == (1, 2, ["carol-paris-2024"])
    assert not any(m["doc_id"] == "carol-paris-2024" for _, m, _ in snapshot(settings).values())


def test_pruning_never_touches_posts_from_other_directories(corpus, settings, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "dave-other.md").write_text("# Dave\n\nKubeCon Amsterdam 2023 was sunny.\n")
    run_ingest(paths=[corpus, other], settings=settings)
    (other / "dave-other.md").unlink()
    summary = run_ingest(paths=[corpus], settings=settings)
    assert summary.deleted == 0
    assert any(m["doc_id"] == "dave-other" for _, m, _ in snapshot(settings).values())


def test_a_moved_post_updates_its_path_without_re_embedding(corpus, settings, embed_calls, tmp_path):
    run_ingest(paths=[corpus], settings=settings)
    moved_dir = tmp_path / "moved"
    corpus.rename(moved_dir)
    embed_calls.clear()
    summary = run_ingest(paths=[moved_dir], settings=settings)
    assert (summary.updated, summary.deleted, summary.chunks_written) == (3, 0, 0)
    assert embed_calls == []
    assert all(m["path"].startswith(str(moved_dir.resolve())) for _, m, _ in snapshot(settings).values())
    assert run_ingest(paths=[moved_dir], settings=settings).unchanged == 3


def test_bad_files_are_reported_and_skipped_and_keep_what_was_stored(corpus, settings):
    run_ingest(paths=[corpus], settings=settings)
    before = snapshot(settings)
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "binary.md").write_bytes(b"\x00\x01\x02PNG")
    (corpus / "latin1.txt").write_bytes("Caf\xe9".encode("latin-1"))
    (corpus / "broken-front-matter.md").write_text("---\ntitle: [oops\n---\nText\n")
    (corpus / "huge.md").write_text("# Huge\n\n" + "kubecon " * 200_000)
    (corpus / "dangling.md").symlink_to(corpus / "nowhere.md")
    # A post that was fine and is now broken: its stored chunks stay.
    (corpus / "bob-detroit-notes.md").write_bytes(b"---\ntitle: x\n")
    summary = run_ingest(paths=[corpus], settings=settings.model_copy(update={"max_file_bytes": 1_000_000}))
    reasons = {Path(f["path"]).name: f["reason"] for f in summary.failures}
    assert set(reasons) == {
        "empty.md", "binary.md", "latin1.txt", "broken-front-matter.md", "huge.md", "dangling.md", "bob-detroit-notes.md",
    }  # fmt: skip
    assert reasons["empty.md"] == "empty file"
    assert reasons["binary.md"].startswith("binary file")
    assert reasons["latin1.txt"].startswith("not valid UTF-8")
    assert reasons["broken-front-matter.md"].startswith("broken front matter: invalid YAML")
    assert "over the 1,000,000-byte limit" in reasons["huge.md"]
    assert reasons["dangling.md"].startswith("cannot read file")
    assert reasons["bob-detroit-notes.md"].startswith("broken front matter")
    assert (summary.unchanged, summary.added, summary.deleted, summary.exit_code) == (2, 0, 0, 1)
    assert same_records(before, snapshot(settings)), "nothing already stored is lost"


def test_duplicate_post_ids_are_reported(corpus, settings, tmp_path):
    other = tmp_path / "dup"
    other.mkdir()
    (other / "carol-paris-2024.txt").write_text("Another post with the same id.\n")
    summary = run_ingest(paths=[corpus, other], settings=settings)
    assert summary.added == 3
    assert (
        len(summary.failures) == 1 and "duplicate post id 'carol-paris-2024'" in summary.failures[0]["reason"]
    )


def test_missing_paths_and_bad_settings_are_usage_errors(settings, tmp_path):
    with pytest.raises(IngestUsageError, match="no such file or directory"):
        run_ingest(paths=[tmp_path / "nope"], settings=settings)
    with pytest.raises(IngestUsageError, match="chunk_overlap"):
        run_ingest(paths=[tmp_path], settings=settings.model_copy(update={"chunk_overlap": 40}))


def test_dry_run_reports_without_writing(corpus, settings, embed_calls):
    dry = run_ingest(paths=[corpus], settings=settings, dry_run=True)
    assert (dry.dry_run, dry.added, dry.chunks_written > 0) == (True, 3, True)
    assert embed_calls == [] and get_collection(settings).count() == 0
    run_ingest(paths=[corpus], settings=settings)
    (corpus / "carol-paris-2024.md").unlink()
    (corpus / "bob-detroit-notes.md").write_text("# Bob\n\nChanged.\n")
    before = snapshot(settings)
    dry = run_ingest(paths=[corpus], settings=settings, dry_run=True)
    assert (dry.updated, dry.deleted, dry.unchanged) == (1, 1, 1)
    assert same_records(before, snapshot(settings))


def test_reset_empties_the_collection_first(corpus, settings, tmp_path):
    run_ingest(paths=[corpus], settings=settings)
    only = tmp_path / "only"
    only.mkdir()
    (only / "erin-london-2025.md").write_text("# Erin\n\nKubeCon London 2025.\n")
    summary = run_ingest(paths=[only], settings=settings, reset=True)
    assert (summary.added, summary.reset) == (1, True)
    assert {m["doc_id"] for _, m, _ in snapshot(settings).values()} == {"erin-london-2025"}
    assert updated_at(settings)


def test_no_paths_ingests_the_data_dir(corpus, settings):
    summary = run_ingest(paths=None, settings=settings.model_copy(update={"data_dir": corpus}))
    assert summary.added == 3


def test_progress_reports_every_written_post(corpus, settings):
    reports: list[tuple[int, int, str]] = []
    run_ingest(paths=[corpus], settings=settings, progress=lambda *a: reports.append(a))
    assert reports[0][:2] == (0, 3)
    assert [r[0] for r in reports] == [0, 1, 2, 3] and all(r[1] == 3 for r in reports)
    assert {r[2] for r in reports[1:]} == set(POSTS)


def test_posts_are_chunked_and_written_a_group_at_a_time(corpus, settings, monkeypatch):
    """Memory holds one embedding group's records, not the corpus's: post 2 is chunked after post 1 is in."""
    import ingest.pipeline

    steps: list[str] = []
    real_build, real_upsert = ingest.pipeline.build_records, Collection.upsert

    def build(document, *args, **kwargs):
        steps.append(f"chunk {document.doc_id}")
        return real_build(document, *args, **kwargs)

    def upsert(self, ids, *args, **kwargs):
        steps.append(f"write {ids[0].split('::')[0]}")
        return real_upsert(self, ids, *args, **kwargs)

    monkeypatch.setattr(ingest.pipeline, "EMBED_GROUP_TEXTS", 1)  # every post is a group of its own
    monkeypatch.setattr(ingest.pipeline, "build_records", build)
    monkeypatch.setattr(Collection, "upsert", upsert)
    summary = run_ingest(paths=[corpus], settings=settings)
    assert summary.added == 3
    written = [step for step in dict.fromkeys(steps)]  # each post's writes in order, once
    assert written == [step for doc_id in sorted(POSTS) for step in (f"chunk {doc_id}", f"write {doc_id}")]


def test_progress_counts_a_post_that_cannot_be_parsed(corpus, settings):
    (corpus / "broken.md").write_text("---\ntitle: never closed\n\nBody text.\n")  # fails to parse
    reports: list[tuple[int, int, str]] = []
    summary = run_ingest(paths=[corpus], settings=settings, progress=lambda *a: reports.append(a))
    assert [f["path"] for f in summary.failures] == [str(corpus / "broken.md")]
    assert reports[-1][:2] == (4, 4) and ("skipped broken.md" in {r[2] for r in reports})
    assert summary.added == 3


# --- interruption -------------------------------------------------------------------------------


def clean_reference(corpus: Path, settings_factory, home: Path):
    reference = settings_factory(home, chunk_tokens=64, chunk_overlap=12)
    run_ingest(paths=[corpus], settings=reference)
    return snapshot(reference)


def test_interrupted_between_posts_the_next_run_finishes(
    corpus, settings, settings_factory, tmp_path, monkeypatch
):
    real_upsert = Collection.upsert
    calls = []

    def upsert_then_interrupt(self, *args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_upsert(self, *args, **kwargs)

    import ingest.pipeline

    monkeypatch.setattr(ingest.pipeline, "EMBED_GROUP_TEXTS", 1)  # each post a group: one write call each
    monkeypatch.setattr(Collection, "upsert", upsert_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(paths=[corpus], settings=settings)
    monkeypatch.setattr(Collection, "upsert", real_upsert)
    assert len({m["doc_id"] for _, m, _ in snapshot(settings).values()}) == 1

    summary = run_ingest(paths=[corpus], settings=settings)
    assert (summary.added, summary.unchanged) == (2, 1)
    assert same_records(snapshot(settings), clean_reference(corpus, settings_factory, tmp_path / "ref"))


def test_a_half_written_post_is_rewritten(corpus, settings, settings_factory, tmp_path, monkeypatch):
    run_ingest(paths=[corpus], settings=settings)
    (corpus / "alice-valencia-2022.md").write_text(
        POSTS["alice-valencia-2022"] + "\n## Closing\n\nSee you in Detroit.\n"
    )
    real_upsert = Collection.upsert

    def crash_half_way(self, ids, documents, metadatas, embeddings):
        half = max(1, len(ids) // 2)
        real_upsert(
            self,
            ids=ids[:half],
            documents=documents[:half],
            metadatas=metadatas[:half],
            embeddings=embeddings[:half],
        )
        raise RuntimeError("power cut")

    monkeypatch.setattr(Collection, "upsert", crash_half_way)
    before = snapshot(settings)
    with pytest.raises(RuntimeError, match="power cut"):
        run_ingest(paths=[corpus], settings=settings)
    monkeypatch.setattr(Collection, "upsert", real_upsert)
    during = snapshot(settings)
    assert before.keys() <= during.keys(), "old chunks stay until the new ones are all in"

    summary = run_ingest(paths=[corpus], settings=settings)
    assert (summary.updated, summary.unchanged) == (1, 2)
    assert same_records(snapshot(settings), clean_reference(corpus, settings_factory, tmp_path / "ref"))


def test_crash_before_stale_chunks_are_deleted_is_cleaned_up_without_re_embedding(
    corpus, settings, settings_factory, tmp_path, monkeypatch, embed_calls
):
    run_ingest(paths=[corpus], settings=settings)
    (corpus / "bob-detroit-notes.md").write_text(POSTS["bob-detroit-notes"].replace("Session 3", "Talk 3"))

    def crash(self, *args, **kwargs):
        raise RuntimeError("killed before delete")

    monkeypatch.setattr(Collection, "delete", crash)
    with pytest.raises(RuntimeError, match="killed before delete"):
        run_ingest(paths=[corpus], settings=settings)
    monkeypatch.undo()
    embedder = get_embedder_for(settings)
    real_embed = embedder.embed
    embed_calls.clear()
    monkeypatch.setattr(
        embedder, "embed", lambda texts, **kw: embed_calls.append(list(texts)) or real_embed(texts, **kw)
    )

    summary = run_ingest(paths=[corpus], settings=settings)
    assert (summary.updated, summary.unchanged, summary.chunks_written) == (1, 2, 0)
    assert summary.chunks_deleted > 0
    assert embed_calls == []
    assert same_records(snapshot(settings), clean_reference(corpus, settings_factory, tmp_path / "ref"))

"""The ingest job: files -> documents -> chunks -> embeddings -> Chroma, incrementally.

Why it is safe to run at any time, any number of times:

* Each record carries ``doc_hash`` (the file's bytes + :func:`pipeline_fingerprint`) and ``n_chunks``.
  A post is *unchanged* only when all ``n_chunks`` records with its current ``doc_hash`` are stored,
  so a post half-written by an interrupted run is simply written again by the next one.
* A changed post's new chunks are upserted **before** its old ones are deleted: whatever happens,
  the store never holds less of a post than before the run.
* Chunk ids are ``doc_id::index::content-hash`` (rag.schema.make_chunk_id): same input, same ids, so
  re-running over the same files leaves exactly the same collection and writes nothing.
* Files that cannot be read are reported and skipped; records already stored for them are kept.
* Pruning (deleting posts whose file is gone) never trusts a walk that may have missed files: nothing
  is pruned under a directory that could not be read or where nothing was found (a failed mount), and
  no run deletes more than ``settings.max_prune_share`` of the stored posts unless ``prune_force``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

from ingest.chunking import CHUNKER_VERSION, chunk_source
from ingest.cleaning import CLEANER_VERSION
from ingest.loaders import (
    UNREADABLE_DIRECTORY,
    Document,
    FoundFile,
    LoadError,
    discover,
    load_document,
    read_bytes,
)
from rag.components.store import get_client, get_collection, get_embedder_for
from rag.errors import KQAError
from rag.schema import UPDATED_AT_KEY, make_chunk_id
from rag.settings import Settings, get_settings
from rag.text import split_sentences

log = logging.getLogger(__name__)

# Bump when the records this module writes change shape or content for the same input.
PIPELINE_VERSION = "1"
# Texts per embedding call: large enough that sentence-transformers' length sorting keeps padding low
# (throughput close to one big encode call), small enough that progress and partial writes stay frequent.
EMBED_GROUP_TEXTS = 256
STATE_PAGE = 5000

ProgressCallback = Callable[[int, int, str], None]
KEPT_NOTE = "; the stored version is kept"


class IngestUsageError(KQAError):
    """The request itself is wrong (missing path, bad settings): the CLI exits with status 2."""


@dataclass
class IngestSummary:
    """What a run did (or, with ``dry_run``, would do). Counts are posts unless named ``chunks_*``."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    failures: list[dict] = field(default_factory=list)  # [{"path": str, "reason": str}]
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, plus "total"
    changes: dict[str, list[str]] = field(default_factory=lambda: {"added": [], "updated": [], "deleted": []})
    dry_run: bool = False
    reset: bool = False
    pruned: bool = False
    store: str = ""
    collection: str = ""
    posts_in_store: int = 0
    chunks_in_store: int = 0
    kept: list[str] = field(default_factory=list)  # posts whose file is gone, not pruned (see prune_held)
    prune_held: str = ""  # why pruning was held back ("" when nothing was)
    flagged: dict[str, int] = field(default_factory=dict)  # post -> sentences addressed to an AI (never evidence)

    @property
    def ingested(self) -> int:
        """Posts now correctly stored from this run's files (written or already up to date)."""
        return self.added + self.updated + self.unchanged

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted or self.chunks_deleted or self.reset)

    @property
    def exit_code(self) -> int:
        """0: at least one post ingested and nothing failed; 1: something failed (or nothing found)."""
        return 0 if self.ingested and not self.failures and not self.prune_held else 1

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ingested"] = self.ingested
        data["exit_code"] = self.exit_code
        return data

    def one_line(self) -> str:
        verb = "would write" if self.dry_run else "wrote"
        line = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.deleted} deleted; "
            f"{verb} {self.chunks_written} chunks"
        )
        if self.chunks_deleted:
            line += f", removed {self.chunks_deleted} old chunks"
        if self.failures:
            line += f"; {len(self.failures)} failed"
        if self.flagged:
            line += f"; {len(self.flagged)} posts hold sentences addressed to an AI (never used as evidence)"
        if self.kept:
            line += f"; kept {len(self.kept)} posts whose files are gone ({self.prune_held})"
        line += f" in {self.seconds.get('total', 0.0):.1f}s"
        if not self.dry_run:
            line += f" ({self.posts_in_store} posts / {self.chunks_in_store} chunks in {self.store})"
        return ("[dry run] " if self.dry_run else "") + line


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 4)


def _model_version(name: str) -> str:
    try:
        return f"{name}=={version(name)}"
    except (PackageNotFoundError, ValueError):
        return name


def pipeline_fingerprint(settings: Settings) -> str:
    """Everything besides the file's bytes that decides its records; part of every ``doc_hash``."""
    parts = {
        "pipeline": PIPELINE_VERSION,
        "chunker": CHUNKER_VERSION,
        "cleaner": CLEANER_VERSION,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap,
        "embedding_model": _model_version(settings.embedding_model),
        "embedding_text": EMBEDDING_TEXT_VERSION,
    }
    return json.dumps(parts, sort_keys=True)


def stored_path(path: Path) -> str:
    """The ``path`` metadata: absolute, so pruning and moves are judged the same from any directory;
    a symlink stays the link's path under the folder (not its target's), so it is pruned when it goes."""
    return os.path.abspath(path)


def doc_hash_of(data: bytes, fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode() + b"\0" + data).hexdigest()


# --- records ------------------------------------------------------------------------------------

EMBEDDING_TEXT_VERSION = "section-prefix-1"


def embedding_text(section: str, text: str) -> str:
    """What is embedded for a chunk: its heading path, then its text (the stored document is the text).

    The path ("Title > Heading") tells the model what a chunk deep inside a post is about; it costs a
    few tokens of MiniLM's 256-word-piece window.
    """
    return f"{section}\n\n{text}" if section else text


@dataclass
class _PostRecords:
    document: Document
    doc_hash: str
    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    embed_texts: list[str]
    stale_ids: list[str]
    action: str  # "added" | "updated"


def build_records(document: Document, doc_hash: str, settings: Settings) -> tuple[list, list, list, list]:
    """Chunk a post and lay each chunk out as rag.schema describes: (ids, documents, metadatas, embed texts)."""
    spans = chunk_source(
        document.source_text,
        document.body_start,
        document.headings,
        document.title,
        settings.chunk_tokens,
        settings.chunk_overlap,
    )
    ids, texts, metadatas, embed_texts = [], [], [], []
    for index, span in enumerate(spans):
        text = document.source_text[span.start : span.end]
        content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
        ids.append(make_chunk_id(document.doc_id, index, content_hash))
        texts.append(text)
        embed_texts.append(embedding_text(span.section, text))
        metadatas.append(
            {
                "doc_id": document.doc_id,
                "title": document.title,
                "event": document.event,
                "year": int(document.year or 0),
                "city": document.city,
                "region": document.region,
                "date": document.date,
                "author": document.author,
                "url": document.url,
                "path": stored_path(document.path),
                "section": span.section,
                "chunk_index": index,
                "n_chunks": len(spans),
                "start": span.start,
                "end": span.end,
                "content_hash": content_hash,
                "doc_hash": doc_hash,
            }
        )
    return ids, texts, metadatas, embed_texts


# --- what is stored -----------------------------------------------------------------------------


class _StoredRecord(NamedTuple):
    """What planning needs of one stored record (not its whole metadata: 155,000 of those at 100x)."""

    chunk_index: int
    n_chunks: int
    path: str


@dataclass
class _StoredPost:
    """The records one post has in the collection, grouped by the ``doc_hash`` that wrote them."""

    by_hash: dict[str, dict[str, _StoredRecord]] = field(default_factory=dict)  # doc_hash -> {id: record}

    @property
    def ids(self) -> set[str]:
        return {i for records in self.by_hash.values() for i in records}

    def complete(self, doc_hash: str) -> bool:
        records = self.by_hash.get(doc_hash, {})
        if not records:
            return False
        counts = {r.n_chunks for r in records.values()}
        indexes = sorted(r.chunk_index for r in records.values())
        return len(counts) == 1 and indexes == list(range(counts.pop()))


def _read_store_state(collection) -> dict[str, _StoredPost]:
    """Every record, grouped by post (paged so a server never returns one huge response)."""
    posts: dict[str, _StoredPost] = {}
    offset = 0
    while True:
        page = collection.get(include=["metadatas"], limit=STATE_PAGE, offset=offset)
        ids = page["ids"]
        for record_id, metadata in zip(ids, page["metadatas"] or [{}] * len(ids), strict=True):
            metadata = metadata or {}
            doc_id = str(metadata.get("doc_id") or record_id.split("::")[0])
            post = posts.setdefault(doc_id, _StoredPost())
            record = _StoredRecord(
                int(metadata.get("chunk_index", -1)),
                int(metadata.get("n_chunks", -1)),
                sys.intern(str(metadata.get("path", ""))),
            )
            post.by_hash.setdefault(sys.intern(str(metadata.get("doc_hash", ""))), {})[record_id] = record
        if len(ids) < STATE_PAGE:
            return posts
        offset += len(ids)


def _is_under(path: Path, root: Path) -> bool:
    """Is ``path`` (a stored path) under ``root``, spelt as given or with its symlinks resolved?"""
    path = Path(os.path.abspath(path))
    try:
        roots = {Path(os.path.abspath(root)), root.resolve()}
    except OSError:
        roots = {Path(os.path.abspath(root))}
    return any(path.is_relative_to(r) for r in roots)


# --- the run ------------------------------------------------------------------------------------


def _check_request(paths: list[Path], settings: Settings) -> None:
    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise IngestUsageError(f"no such file or directory: {', '.join(missing)}")
    if settings.chunk_overlap * 2 > settings.chunk_tokens:
        raise IngestUsageError(
            f"chunk_overlap ({settings.chunk_overlap}) must be at most half of chunk_tokens ({settings.chunk_tokens})"
        )


def _batches(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


def run_ingest(
    paths: list[Path] | None = None,
    settings: Settings | None = None,
    prune: bool | None = None,
    reset: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    prune_force: bool = False,
    follow_symlinks: bool = False,
) -> IngestSummary:
    """Bring the collection in line with ``paths`` (default: ``settings.data_dir``).

    ``prune`` (default: on when a directory is given) deletes stored posts whose file lay under a given
    directory and is gone, unless the walk could have missed them (see the module doc); ``prune_force``
    lifts the share limit, never the other two. ``reset`` empties the collection first. ``dry_run``
    reads and plans only. ``follow_symlinks`` ingests symlinks to files outside the directories given.
    ``progress(done, total, message)`` is called as posts are written (total = posts to write).
    """
    settings = settings or get_settings()
    paths = [Path(p) for p in (paths or [settings.data_dir])]
    _check_request(paths, settings)
    prune_roots = [p for p in paths if p.is_dir()] if prune is not False else []  # only under directories given
    summary = IngestSummary(
        dry_run=dry_run,
        reset=reset,
        pruned=bool(prune_roots),
        store=settings.describe_store(),
        collection=settings.collection,
    )
    run = _Run(settings, summary)

    scan = _scan(run, paths, follow_symlinks)
    store = _open_store(run, scan, reset, dry_run)
    plan = _build_plan(run, scan, store.stored, prune_roots, prune_force)
    if dry_run:
        _report_dry_run(run, plan)
        return run.finish()
    _apply(run, plan, store, progress)
    _finalise_store(run, plan, store)
    run.finish()
    log.info("ingest: %s", summary.one_line())
    return summary


@dataclass
class _Run:
    """One run's settings, its report so far and its stage timer."""

    settings: Settings
    summary: IngestSummary
    timer: _Timer = field(default_factory=_Timer)
    started: float = field(default_factory=time.perf_counter)
    failed_posts: dict[str, dict] = field(default_factory=dict)  # doc_id -> its failure ("kept" once stored)

    def fail(self, path: Path, reason: str, doc_id: str = "") -> None:
        log.info("skipped %s: %s", path, reason)
        self.summary.failures.append({"path": str(path), "reason": reason})
        if doc_id:
            self.failed_posts[doc_id] = self.summary.failures[-1]

    def finish(self) -> IngestSummary:
        self.summary.seconds = {**self.timer.seconds, "total": round(time.perf_counter() - self.started, 4)}
        return self.summary


@dataclass
class _Scan:
    """What the walk found: files, their problems, and each post's file, bytes and ``doc_hash``."""

    found: list[FoundFile]
    problems: list[tuple[Path, str]]
    candidates: dict[str, tuple[FoundFile, bytes, str]] = field(default_factory=dict)  # doc_id -> ...
    seen_ids: set[str] = field(default_factory=set)


class _Store(NamedTuple):
    collection: object
    batch_limit: int
    stored: dict[str, _StoredPost]  # what the collection held before this run (empty after a reset)


class _Repair(NamedTuple):
    """A post stored complete but with stale records beside it or a file that moved."""

    doc_id: str
    post: _StoredPost
    doc_hash: str
    path: str


@dataclass
class _Plan:
    """What a run is to do, decided before anything is written."""

    stored: dict[str, _StoredPost]
    to_write: list[tuple[FoundFile, bytes, str]] = field(default_factory=list)  # added or updated
    repairs: list[_Repair] = field(default_factory=list)
    pruned_ids: list[str] = field(default_factory=list)


def _scan(run: _Run, paths: list[Path], follow_symlinks: bool) -> _Scan:
    """Walk the paths, then read and hash every file; parsing waits until we know the post changed
    (keeps no-op runs cheap)."""
    with run.timer.stage("scan"):
        found, problems = discover(paths, follow_symlinks=follow_symlinks)
        for path, reason in problems:
            run.fail(path, reason)
    scan = _Scan(found, problems)
    fingerprint = pipeline_fingerprint(run.settings)
    with run.timer.stage("read"):
        for item in found:
            doc_id = item.path.stem
            if doc_id in scan.seen_ids:
                other = scan.candidates[doc_id][0].path if doc_id in scan.candidates else "another file"
                run.fail(
                    item.path,
                    f"duplicate post id {doc_id!r} (also {other}); post ids are file names without extension",
                )
                continue
            scan.seen_ids.add(doc_id)
            try:
                data = read_bytes(item.path, run.settings.max_file_bytes)
            except LoadError as exc:
                run.fail(item.path, str(exc), doc_id)
                continue
            scan.candidates[doc_id] = (item, data, doc_hash_of(data, fingerprint))
    return scan


def _open_store(run: _Run, scan: _Scan, reset: bool, dry_run: bool) -> _Store:
    """Open the collection (emptied first by a real ``reset``) and read what it holds."""
    settings, summary = run.settings, run.summary
    with run.timer.stage("store"):
        if reset and not dry_run:
            client = get_client(settings)
            if settings.collection in {getattr(c, "name", c) for c in client.list_collections()}:
                client.delete_collection(settings.collection)
        collection = get_collection(settings)
        batch_limit = int(get_client(settings).get_max_batch_size())
        stored = {} if reset and not dry_run else _read_store_state(collection)
        for doc_id in run.failed_posts.keys() & stored.keys():
            run.failed_posts[doc_id]["reason"] += KEPT_NOTE
        if reset and dry_run:
            summary.deleted = len(set(stored) - set(scan.candidates))
            summary.changes["deleted"] = sorted(set(stored) - set(scan.candidates))
            stored = {}
    return _Store(collection, batch_limit, stored)


def _build_plan(
    run: _Run,
    scan: _Scan,
    stored: dict[str, _StoredPost],
    prune_roots: list[Path],
    prune_force: bool,
) -> _Plan:
    """Sort the posts found into unchanged / repair (complete, but stale records or a moved file) /
    write, and the stored posts whose file is gone into pruned or kept (``summary.kept``, ``prune_held``)."""
    plan = _Plan(stored)
    with run.timer.stage("plan"):
        for doc_id, (item, data, doc_hash) in scan.candidates.items():
            post = stored.get(doc_id)
            if post is None or not post.complete(doc_hash):
                plan.to_write.append((item, data, doc_hash))
                continue
            current = post.by_hash[doc_hash]
            moved = any(r.path != stored_path(item.path) for r in current.values())
            if moved or len(post.by_hash) > 1:
                plan.repairs.append(_Repair(doc_id, post, doc_hash, stored_path(item.path)))
            else:
                run.summary.unchanged += 1
    if prune_roots:
        summary = run.summary
        plan.pruned_ids, summary.kept, summary.prune_held = _plan_prune(
            stored, scan.seen_ids, prune_roots, scan.found, scan.problems, run.settings.max_prune_share, prune_force
        )
        for doc_id in summary.kept:
            log.warning("kept %s although its file is gone: %s", doc_id, summary.prune_held)
    return plan


def _post_records(
    run: _Run, stored: dict[str, _StoredPost], item: FoundFile, data: bytes, doc_hash: str
) -> _PostRecords | None:
    """Parse and chunk one post to write (None, reported, when it cannot be parsed)."""
    with run.timer.stage("chunk"):
        try:
            document = load_document(item.path, data)
        except LoadError as exc:
            run.fail(item.path, str(exc) + (KEPT_NOTE if item.path.stem in stored else ""))
            return None
        ids, texts, metadatas, embed_texts = build_records(document, doc_hash, run.settings)
        injected = instruction_sentences(document)
        if injected:
            run.summary.flagged[document.doc_id] = len(injected)
            log.warning("%s: %d sentences addressed to an AI, e.g. %r", document.doc_id, len(injected), injected[0][:120])
    post = stored.get(document.doc_id)
    old_ids = post.ids if post else set()
    return _PostRecords(
        document,
        doc_hash,
        ids,
        texts,
        metadatas,
        embed_texts,
        stale_ids=sorted(old_ids - set(ids)),
        action="updated" if post else "added",
    )


def _count_post(summary: IngestSummary, action: str, doc_id: str) -> None:
    """One more post ``action`` ("added" | "updated" | "deleted"), named in ``changes``."""
    setattr(summary, action, getattr(summary, action) + 1)
    summary.changes[action].append(doc_id)


def _report_dry_run(run: _Run, plan: _Plan) -> None:
    """Count what applying ``plan`` would do (posts are parsed and chunked; nothing is embedded or written)."""
    summary = run.summary
    for task in plan.to_write:
        post = _post_records(run, plan.stored, *task)
        if post is None:
            continue
        _count_post(summary, post.action, post.document.doc_id)
        summary.chunks_written += len(post.ids)
    for repair in plan.repairs:
        _count_post(summary, "updated", repair.doc_id)
    for doc_id in plan.pruned_ids:
        _count_post(summary, "deleted", doc_id)
    summary.posts_in_store = len(plan.stored)
    summary.chunks_in_store = sum(len(p.ids) for p in plan.stored.values())


def _apply(run: _Run, plan: _Plan, store: _Store, progress: ProgressCallback | None) -> None:
    """Write, then repair, then prune. Posts are parsed, chunked, embedded and written a group at a time,
    so memory holds one group's records, not the whole corpus's (155,000 chunks at 100x)."""
    posts = ((task[0], _post_records(run, plan.stored, *task)) for task in plan.to_write)
    _write_posts(run, store, posts, len(plan.to_write), progress)
    with run.timer.stage("write"):
        for repair in plan.repairs:
            _repair_post(run.summary, store.collection, repair)
    with run.timer.stage("prune"):
        for doc_id in plan.pruned_ids:
            ids = sorted(plan.stored[doc_id].ids)
            for part in _batches(len(ids), store.batch_limit):
                store.collection.delete(ids=ids[part])
            _count_post(run.summary, "deleted", doc_id)
            run.summary.chunks_deleted += len(ids)


def _repair_post(summary: IngestSummary, collection, repair: _Repair) -> None:
    """Point a complete post's records at its file's new path and delete its stale records."""
    current = repair.post.by_hash[repair.doc_hash]
    moved = [i for i, r in current.items() if r.path != repair.path]
    if moved:  # rare: re-read these records' whole metadata to rewrite only their path
        full = collection.get(ids=moved, include=["metadatas"])
        collection.update(ids=full["ids"], metadatas=[{**(m or {}), "path": repair.path} for m in full["metadatas"]])
    stale = sorted(repair.post.ids - set(current))
    if stale:
        collection.delete(ids=stale)
        summary.chunks_deleted += len(stale)
    _count_post(summary, "updated", repair.doc_id)


def _finalise_store(run: _Run, plan: _Plan, store: _Store) -> None:
    """Stamp a changed collection's ``updated_at`` and count what it now holds."""
    summary, collection = run.summary, store.collection
    with run.timer.stage("store"):
        if summary.changed:
            metadata = {k: v for k, v in (collection.metadata or {}).items() if not k.startswith("hnsw:")}
            metadata[UPDATED_AT_KEY] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            collection.modify(metadata=metadata)
        summary.chunks_in_store = collection.count()
        summary.posts_in_store = (len(plan.stored) - len(plan.pruned_ids)) + summary.added


def instruction_sentences(document: Document) -> list[str]:
    """The post's sentences written to steer an AI ("ignore previous instructions…"): reported at ingest;
    the read path never packs them as evidence (rag.prompts.looks_like_instruction)."""
    # Lazy on purpose: rag.prompts pulls in langchain_core (~1.1 s of the 1.5 s `import ingest.cli`),
    # which `python -m ingest --help`, usage errors and no-op runs never need.
    from rag.prompts import looks_like_instruction

    body = document.source_text[document.body_start :]
    return [s.text for line in body.splitlines() for s in split_sentences(line) if looks_like_instruction(s.text)]


def _plan_prune(
    stored: dict[str, _StoredPost],
    seen_ids: set[str],
    roots: list[Path],
    found: list[FoundFile],
    problems: list[tuple[Path, str]],
    max_share: float,
    force: bool,
) -> tuple[list[str], list[str], str]:
    """Which stored posts whose file is gone to delete, which to keep, and why they are kept.

    A walk that may have missed files proves nothing about them: posts under a directory that could
    not be read, or under a directory argument where nothing was found, are kept. Deleting more than
    ``max_share`` of the stored posts (more than one) needs ``force``.
    """
    unreadable = [path for path, reason in problems if reason.startswith(UNREADABLE_DIRECTORY)]
    empty_roots = [root for root in roots if not any(f.root == root for f in found)]
    gone: list[str] = []
    kept: list[str] = []
    reasons: list[str] = []
    for doc_id, post in stored.items():
        if doc_id in seen_ids:
            continue
        paths = [Path(r.path) for records in post.by_hash.values() for r in records.values() if r.path]
        if not any(_is_under(p, root) for p in paths for root in roots):
            continue
        if blind := [d for d in unreadable if any(_is_under(p, d) for p in paths)]:
            kept.append(doc_id)
            reasons.append(f"{blind[0]} could not be read")
        elif empty := [r for r in empty_roots if any(_is_under(p, r) for p in paths)]:
            kept.append(doc_id)
            reasons.append(f"no supported files found in {empty[0]}")
        else:
            gone.append(doc_id)
    if len(gone) > 1 and len(gone) > max_share * len(stored) and not force:
        reasons.append(
            f"{len(gone)} of {len(stored)} stored posts would be deleted, over the {max_share:.0%} limit "
            "(KQA_MAX_PRUNE_SHARE); check the folder, then run with --prune-force to delete them"
        )
        kept, gone = kept + gone, []
    return gone, kept, "; ".join(dict.fromkeys(reasons))


FAULT_ENV = "KQA_FAULT_KILL_AT"  # "group-written:N": SIGKILL this process after the N-th group is written


def _fault_point(name: str, _counts: dict[str, int] = {}) -> None:  # noqa: B006 - per-process counter
    """Fault injection for the kill tests: a known point to die at, instead of a moment read off a
    progress bar. Off unless ``KQA_FAULT_KILL_AT=<name>:<n>`` is set (tests only)."""
    wanted = os.environ.get(FAULT_ENV, "")
    if not wanted.startswith(f"{name}:"):
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(wanted.split(":", 1)[1]):
        os.kill(os.getpid(), signal.SIGKILL)


def _write_posts(
    run: _Run,
    store: _Store,
    posts: Iterator[tuple[FoundFile, _PostRecords | None]],
    total: int,
    progress: ProgressCallback | None,
) -> None:
    """Embed posts' chunks in groups of ~EMBED_GROUP_TEXTS, then write the group (new chunks first, then
    the stale ones deleted), in as few store calls as the batch limit allows.

    ``posts`` yields ``total`` (file, records) pairs; records are None for a post that could not be
    parsed (already reported as a failure), which still counts towards the progress total.
    """
    if not total:
        return
    settings, summary, timer = run.settings, run.summary, run.timer
    collection, batch_limit = store.collection, store.batch_limit
    if progress:
        progress(0, total, f"embedding the chunks of {total} posts")
    done = 0
    group: list[_PostRecords] = []

    def write_group() -> None:
        nonlocal done
        with timer.stage("embed"):  # the model loads with the first group (it is cached per process)
            vectors = get_embedder_for(settings).embed([text for p in group for text in p.embed_texts])
        with timer.stage("write"):  # one upsert per batch of the group, not one per post
            ids = [i for p in group for i in p.ids]
            texts = [t for p in group for t in p.texts]
            metadatas = [m for p in group for m in p.metadatas]
            for part in _batches(len(ids), batch_limit):
                collection.upsert(
                    ids=ids[part], documents=texts[part], metadatas=metadatas[part], embeddings=vectors[part]
                )
            stale = [i for p in group for i in p.stale_ids]
            for part in _batches(len(stale), batch_limit):  # only after the new chunks are in
                collection.delete(ids=stale[part])
        for item in group:
            summary.chunks_written += len(item.ids)
            summary.chunks_deleted += len(item.stale_ids)
            _count_post(summary, item.action, item.document.doc_id)
            done += 1
            if progress:
                progress(done, total, item.document.doc_id)
        group.clear()
        _fault_point("group-written")

    for item, post in posts:
        if post is None:
            done += 1
            if progress:
                progress(done, total, f"skipped {item.path.name}")
            continue
        group.append(post)
        if sum(len(p.ids) for p in group) >= EMBED_GROUP_TEXTS:
            write_group()
    if group:
        write_group()

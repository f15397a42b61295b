"""The contract between the write path (ingest) and the read path (rag): what each Chroma record holds.

Record id: ``{doc_id}::{chunk_index:04d}::{content_hash[:12]}`` (stable: same input, same id).
Document: the chunk's exact source text, ``source_text[start:end]``.
Metadata (Chroma allows only str/int/float/bool, so "unknown" is "" or 0):

=============  ======  ===============================================================
doc_id         str     the post id: its file stem (slug)
title          str     front matter title, else the first heading, else the stem
event          str     "KubeCon + CloudNativeCon Europe 2022 (Valencia)"
year           int     event year (0 if unknown)
city           str     "Valencia" ("" if unknown)
region         str     EU / NA / China / India / Japan / Virtual ("" if unknown)
date           str     publication date, ISO (YYYY-MM-DD) when known
author         str
url            str     the post's public URL when known
path           str     the file path the post was read from
section        str     heading path, "Title > Heading > Subheading"
chunk_index    int     0-based position within the post
n_chunks       int     chunks the post was split into (a post is complete when all are present)
start, end     int     character offsets of the chunk in the post's source text
content_hash   str     sha256 of the chunk text
doc_hash       str     sha256 of the post's bytes + the pipeline fingerprint
=============  ======  ===============================================================

Collection metadata ``kqa_updated_at`` holds the ISO time of the last ingest that changed anything.
"""

from __future__ import annotations

import sys

from rag.types import Chunk

UPDATED_AT_KEY = "kqa_updated_at"


def make_chunk_id(doc_id: str, chunk_index: int, content_hash: str) -> str:
    return f"{doc_id}::{chunk_index:04d}::{content_hash[:12]}"


def chunk_from_record(chunk_id: str, document: str, metadata: dict) -> Chunk:
    """Rebuild a :class:`Chunk` from what Chroma returns.

    The post-level fields repeat in every chunk of a post; interning them keeps one copy per post in a
    reader's snapshot instead of one per chunk.
    """
    meta = metadata or {}
    year = int(meta.get("year") or 0) or None

    def shared(name: str) -> str:
        return sys.intern(str(meta.get(name, "")))

    return Chunk(
        chunk_id=chunk_id,
        doc_id=sys.intern(str(meta.get("doc_id", chunk_id.split("::")[0]))),
        text=document or "",
        title=shared("title"),
        event=shared("event"),
        year=year,
        city=shared("city"),
        region=shared("region"),
        date=shared("date"),
        url=shared("url"),
        path=shared("path"),
        section=shared("section"),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        author=shared("author"),
    )

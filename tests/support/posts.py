"""The text chunk and citation offsets index: a post as ingest read it (front matter, then the clean body)."""

from __future__ import annotations

from pathlib import Path


def source_text(path: str | Path) -> str:
    """What ``ingest.loaders.load_document`` makes of the file at ``path`` (its ``source_text``)."""
    from ingest.loaders import load_document

    path = Path(path)
    return load_document(path, path.read_bytes()).source_text


def post_as_one_chunk(path: str | Path):
    """(chunk, PostText) of a post read whole, as one chunk: for evidence tests on a real post without an
    index."""
    from rag.retrieval import PostText
    from rag.types import Chunk

    path = Path(path)
    text = source_text(path)
    chunk = Chunk(chunk_id=f"{path.stem}::0000::x", doc_id=path.stem, text=text, start=0, end=len(text), title=path.stem)
    return chunk, PostText([chunk])

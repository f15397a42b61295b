"""The text chunk and citation offsets index: a post as ingest read it (front matter, then the clean body)."""

from __future__ import annotations

from pathlib import Path


def source_text(path: str | Path) -> str:
    """What ``ingest.loaders.load_document`` makes of the file at ``path`` (its ``source_text``)."""
    from ingest.loaders import load_document

    path = Path(path)
    return load_document(path, path.read_bytes()).source_text

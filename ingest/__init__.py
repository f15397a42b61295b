"""The write path: recap files -> clean text + metadata -> token-aware chunks -> embeddings -> Chroma.

    from ingest.pipeline import run_ingest
    summary = run_ingest(paths=[Path("data")], settings=settings)   # -> IngestSummary

``python -m ingest --help`` for the command line.
"""

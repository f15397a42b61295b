"""Measurement: gold questions, retrieval/citation/grounding/correctness metrics, reports.

    python -m eval validate eval/gold.jsonl
    python -m eval run --gold eval/gold.jsonl --out eval/results/<name> [--baseline] [--retrieval-only]

Modules: ``gold`` (the gold set), ``metrics`` (pure scoring functions), ``grounding`` (deterministic
sentence-support scorer, calibrated on hand labels), ``runner`` (ingest, ask, score), ``baseline`` (LangChain's
tutorial RAG for comparison), ``judge`` (optional LLM judge), ``report`` (JSON, Markdown, charts).
"""

"""Measurement: gold questions, retrieval/citation/grounding/correctness metrics, reports.

    python -m eval validate eval/gold.jsonl --corpus ../shared/corpus/articles
    python -m eval run --gold eval/gold.jsonl --corpus ../shared/corpus/articles --out eval/results/<name>

Modules: ``gold`` (the gold set and its one ``GoldItem``), ``contracts`` (what a system under evaluation
returns: ``SystemOutput``, ``CitedEvidence``), ``metrics`` (pure scoring functions), ``grounding``
(deterministic sentence-support scorer, calibrated on hand labels), ``scoring`` (one answer's record, the
aggregates, targets and the report dict), ``runner`` (ingest, ask, score), ``baseline`` (LangChain's
tutorial RAG for comparison), ``judge`` (optional LLM judge), ``report`` (JSON, Markdown, charts),
``labels`` (answers read against the posts), ``feedback`` (users' ratings as candidate gold items),
``split`` (the fixed tune/test split), ``jsonl`` (reading JSON Lines files).
"""

"""Thumbs up/down (+ reasons and a comment) on answers, appended to a JSONL file that can feed the gold set.

Each line is self-contained: the question (and the condensed standalone question for follow-ups), the
conversation before it, the answer text, its citations with quotes, what was retrieved, the filters, and
the settings that produced it, so a reviewer can turn a line into a gold item without the chat.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rag.redaction import safe_url
from rag.settings import Settings

Rating = Literal["up", "down"]

# Settings that decide an answer (never secrets such as the API key).
ANSWER_SETTINGS = (
    "llm_backend", "llm_model", "openai_model", "openai_base_url", "embedding_model", "chunk_tokens",
    "chunk_overlap", "top_k", "fetch_k", "rrf_k", "max_chunks_per_post", "min_relevance", "context_tokens",
    "llm_max_tokens", "llm_temperature", "unsupported_sentences", "collection",
)  # fmt: skip

_WRITE_LOCK = threading.Lock()


def settings_snapshot(settings: Settings) -> dict[str, Any]:
    snapshot = {name: getattr(settings, name) for name in ANSWER_SETTINGS if hasattr(settings, name)}
    if "openai_base_url" in snapshot:
        snapshot["openai_base_url"] = safe_url(snapshot["openai_base_url"])
    snapshot["store"] = settings.describe_store()
    return snapshot


def _answer_dict(answer: Any) -> dict[str, Any]:
    if answer is None:
        return {}
    if isinstance(answer, dict):
        return answer
    if is_dataclass(answer):
        return asdict(answer)
    raise TypeError(f"cannot record an answer of type {type(answer).__name__}")


def build_record(
    *,
    rating: Rating,
    comment: str,
    answer: Any,
    history: list[dict[str, str]],
    filters: dict[str, Any],
    settings: Settings,
    reasons: list[str] | None = None,
) -> dict[str, Any]:
    """One feedback line. ``answer`` is an :class:`rag.types.Answer` or its ``asdict`` form.

    ``reasons`` are codes (``wrong_citation``, ``incomplete``, ``should_abstain``); ``comment`` stays the
    user's own words, which ``python -m eval feedback`` keeps as the reason."""
    if rating not in ("up", "down"):
        raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
    data = _answer_dict(answer)
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "rating": rating,
        "reasons": list(reasons or []),
        "comment": (comment or "").strip(),
        "question": data.get("question", ""),
        "standalone_question": data.get("standalone_question", ""),
        "history": history,
        "answer": data.get("text", ""),
        "abstained": data.get("abstained", False),
        "citations": [
            {
                key: c.get(key)
                for key in ("n", "source_id", "title", "event", "url_or_path", "quote", "start", "end")
            }
            for c in data.get("citations", [])
        ],
        "sources": [
            {key: s.get(key) for key in ("source_id", "title", "event", "url_or_path", "score", "cited")}
            for s in data.get("sources", [])
        ],
        "backend": data.get("backend", ""),
        "fallback_reason": data.get("fallback_reason", ""),
        "filters": filters,
        "settings": settings_snapshot(settings),
    }


def append_feedback(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line; the lock keeps lines whole when several sessions rate at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=str)
    with _WRITE_LOCK, path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")

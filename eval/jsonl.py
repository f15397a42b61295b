"""Reading JSON Lines files (gold items, labels, feedback): one value a line, blank lines skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def jsonl_lines(text: str) -> Iterator[tuple[int, Any, json.JSONDecodeError | None]]:
    """``(line number, value, None)`` for each non-blank line, or ``(line number, None, error)`` where a
    line is not JSON; each caller words its own message."""
    for line_no, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield line_no, json.loads(raw), None
        except json.JSONDecodeError as exc:
            yield line_no, None, exc

"""The ``[n]`` citation grammar of answer text, in one place: finding, reading and rewriting markers.

Two dialects of the same grammar:

* **Answer markers** (:data:`MARKER_RE`): what a finished answer carries and the front ends link or show:
  ``[1]``, ``[1, 2]``, ``[1][2]``. A bracketed number that is no citation (``[2022]``) matches too; the
  callers decide by the numbers (:func:`sub_markers` keeps a marker whose replacement is ``None``).
* **Model markers** (:data:`MODEL_MARKER_RE`): what a language model writes and the verifier reads, more
  lenient: spaces inside the brackets, ``;`` between numbers, full-width ``【1】``, and the whitespace
  before the marker (so removing it leaves no gap).

:data:`ESCAPED_MARKER_RE` is the answer marker after Markdown escaping (``\\[1\\]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NUMBERS = r"(\d+(?:\s*,\s*\d+)*)"
# "[1]" / "[1, 2]" / "[1][2]" citation markers in answer text.
MARKER_RE = re.compile(r"\[" + _NUMBERS + r"\]")
# The same marker once Markdown-escaped ("\[1\]"), as in escaped answer text.
ESCAPED_MARKER_RE = re.compile(r"\\\[" + _NUMBERS + r"\\\]")
# What a model writes: "[1]", "[ 1; 2 ]", "【1】", with the whitespace before it.
# What eval scores as a marker in final answers: square brackets only, spaces allowed ("[ 1 ; 2 ]").
BRACKET_MARKER_RE = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
MODEL_MARKER_RE = re.compile(r"\s*(?:\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]|【\s*(\d+)\s*】)")
# Markers after a sentence's full stop ("Claim. [1]"): group 1 the stop, group 2 the markers.
MARKERS_AFTER_STOP_RE = re.compile(r"([.!?])((?:\s*(?:\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]|【\s*\d+\s*】))+)")


def marker_numbers(match: re.Match[str]) -> list[int]:
    """The numbers of one :data:`MARKER_RE`, :data:`ESCAPED_MARKER_RE` or :data:`MODEL_MARKER_RE` match, as written."""
    numbers = next(group for group in match.groups() if group is not None)
    return [int(part) for part in re.split(r"[,;]", numbers)]


def cited_numbers(text: str, pattern: re.Pattern[str] = MODEL_MARKER_RE) -> list[int]:
    """The citation numbers in ``text``, in order of first appearance, without repeats."""
    found = [n for match in pattern.finditer(text) for n in marker_numbers(match)]
    return list(dict.fromkeys(found))


def strip_markers(text: str) -> str:
    """The text without its ``[n]`` citation markers (whose numbers are not claims)."""
    return MODEL_MARKER_RE.sub("", text)


def sub_markers(
    text: str, replace: Callable[[list[int]], str | None], pattern: re.Pattern[str] = MARKER_RE
) -> str:
    """``text`` with each marker replaced by ``replace(numbers)``; a ``None`` keeps the marker as written."""

    def one(match: re.Match[str]) -> str:
        replacement = replace(marker_numbers(match))
        return match.group(0) if replacement is None else replacement

    return pattern.sub(one, text)

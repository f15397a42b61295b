"""The ``extractive`` backend: answers with the recaps' own best sentences, each cited. No LLM.

Used when ``llm_backend="extractive"`` (fast tests, machines without the model) and as the fallback
when the configured LLM is down, fails or times out. The sentences come from the packed evidence,
best first, so they are exactly what an LLM would have been shown; near-duplicates (overlapping chunks,
repeated phrasing) are skipped. Sentences are picked by relevance only, so on-topic questions the posts
don't answer can still get an on-topic quote: abstention there relies on the "how many" rule below
and on the LLM backends. The answer then goes through the same citation verification as an LLM
answer, so the two paths produce the same kind of :class:`~rag.types.Answer`.
"""

from __future__ import annotations

import re

from rag.packing import Evidence
from rag.text import content_terms, flat, numbers

MAX_SENTENCES = 3
MAX_PER_POST = 2
DUPLICATE_OVERLAP = 0.7  # a sentence sharing this share of its words with an earlier pick adds nothing
MIN_WORDS = 5
RELATIVE_FLOOR = 0.75  # only sentences this close to the best one are quoted (an answer, not a tour)
_QUANTITY_RE = re.compile(
    r"\b(?:how (?:many|much|large|big|long)|what (?:percentage|share|number|fraction))\b", re.I
)


def _answer_numbers(text: str, question: str) -> set[str]:
    """Numbers that could answer a "how many": not years, not numbers the question itself contains."""
    return {n for n in numbers(text) - numbers(question) if not re.fullmatch(r"(?:19|20)\d\d", n)}


def extractive_answer(evidence: Evidence, question: str = "") -> str:
    """Up to three of the most relevant packed sentences, ``[n]``-cited, best first.

    Candidates are the packed sentences scoring at least ``RELATIVE_FLOOR`` x the best one. A sentence
    that only sets up the answer (it ends with "?" or ":", or has no number for a "how many" question)
    gives its place to the sentence right after it in the post. A "how many / how much" question with
    no number anywhere in that evidence gets no answer, so the assistant abstains: the posts don't say.
    """
    wants_number = bool(_QUANTITY_RE.search(question))
    if not evidence.posts:
        return ""
    number_of = {p.doc_id: p.n for p in evidence.posts}
    in_post_order = {p.doc_id: p.sentences for p in evidence.posts}
    packed = {s.key for p in evidence.posts for s in p.sentences}
    floor = evidence.ranked[0].score * RELATIVE_FLOOR if evidence.ranked else 0.0
    picked: list[tuple[str, int]] = []
    picked_terms: list[set[str]] = []
    per_post: dict[int, int] = {}
    for seed in evidence.ranked:
        if seed.score < floor:
            break
        if seed.key not in packed:
            continue
        sentence = seed
        siblings = in_post_order[seed.doc_id]
        position = next(i for i, s in enumerate(siblings) if s.key == seed.key)
        for following in siblings[position + 1 : position + 3]:
            sets_up = sentence.text.rstrip().endswith(("?", ":"))
            lacks_number = wants_number and not _answer_numbers(sentence.text, question)
            if not (sets_up or lacks_number):
                break
            sentence = following
        if wants_number and not _answer_numbers(sentence.text, question):
            continue
        if len(sentence.text.split()) < MIN_WORDS or sentence.text.rstrip().endswith("?"):
            continue
        n = number_of[sentence.doc_id]
        if per_post.get(n, 0) >= MAX_PER_POST:
            continue
        terms = set(content_terms(sentence.text))
        if not terms or any(len(terms & t) / len(terms) >= DUPLICATE_OVERLAP for t in picked_terms):
            continue
        text = flat(sentence.text).rstrip(":;,")
        if not text:
            continue
        if text[-1] not in ".!?":
            text += "."
        picked.append((text, n))
        picked_terms.append(terms)
        per_post[n] = per_post.get(n, 0) + 1
        if len(picked) >= MAX_SENTENCES:
            break
    return " ".join(f"{text[:-1]} [{n}]{text[-1]}" for text, n in picked)

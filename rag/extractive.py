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

from collections.abc import Sequence

from rag.packing import Evidence
from rag.text import answer_numbers, asks_for_quantity, content_terms, flat

MAX_SENTENCES = 3
MAX_PER_POST = 2
DUPLICATE_OVERLAP = 0.7  # a sentence sharing this share of its words with an earlier pick adds nothing
MIN_WORDS = 5
RELATIVE_FLOOR = 0.75  # only sentences this close to the best one are quoted (an answer, not a tour)

def extractive_answer(
    evidence: Evidence,
    question: str = "",
    *,
    exclude: Sequence[str] = (),
    limit: int = MAX_SENTENCES,
    on_topic: str = "",
) -> str:
    """Up to ``limit`` (3) of the most relevant packed sentences, ``[n]``-cited, best first.

    ``exclude``: sentences already said (a model's verified answer that these quotes complement); a
    candidate repeating one of them is skipped like a near-duplicate. ``on_topic``: when given, only
    sentences sharing a content word with it are quoted (quotes that complement an answer must be about
    what was asked, not merely near it).

    Candidates are the packed sentences scoring at least ``RELATIVE_FLOOR`` x the best one. A sentence
    that only sets up the answer (it ends with "?" or ":", or has no number for a "how many" question)
    gives its place to the sentence right after it in the post. A "how many / how much" question with
    no number anywhere in that evidence gets no answer, so the assistant abstains: the posts don't say.
    """
    wants_number = asks_for_quantity(question)
    if not evidence.posts:
        return ""
    number_of = {p.doc_id: p.n for p in evidence.posts}
    in_post_order = {p.doc_id: p.sentences for p in evidence.posts}
    packed = {s.key for p in evidence.posts for s in p.sentences}
    floor = evidence.ranked[0].score * RELATIVE_FLOOR if evidence.ranked else 0.0
    picked: list[tuple[str, int]] = []
    picked_terms: list[set[str]] = []
    said_terms = [terms for text in exclude if (terms := set(content_terms(text)))]
    topic_terms = set(content_terms(on_topic))
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
            lacks_number = wants_number and not answer_numbers(sentence.text, question)
            if not (sets_up or lacks_number):
                break
            sentence = following
        if wants_number and not answer_numbers(sentence.text, question):
            continue
        if len(sentence.text.split()) < MIN_WORDS or sentence.text.rstrip().endswith("?"):
            continue
        n = number_of[sentence.doc_id]
        if per_post.get(n, 0) >= MAX_PER_POST:
            continue
        terms = set(content_terms(sentence.text))
        if not terms or any(len(terms & t) / len(terms) >= DUPLICATE_OVERLAP for t in picked_terms):
            continue
        if topic_terms and not terms & topic_terms:
            continue
        # what was said already, in either direction: a quote that contains it, or that it contains
        if any(len(terms & t) / min(len(terms), len(t)) >= DUPLICATE_OVERLAP for t in said_terms):
            continue
        text = flat(sentence.text).rstrip(":;,")
        if not text:
            continue
        if text[-1] not in ".!?":
            text += "."
        picked.append((text, n))
        picked_terms.append(terms)
        per_post[n] = per_post.get(n, 0) + 1
        if len(picked) >= limit:
            break
    return " ".join(f"{text[:-1]} [{n}]{text[-1]}" for text, n in picked)

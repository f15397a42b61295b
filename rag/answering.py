"""Answering: the model writes from the passages, or the passages answer in their own words (no LLM).

* :func:`generate` streams the chat model's answer to the prompt of :mod:`rag.prompts` (the numbered
  passages and the standalone question) through LangChain: ``answer_prompt() | model | StrOutputParser()``.
* :func:`extractive_answer` is the ``extractive`` backend, the fallback when the LLM is down, and the
  answer when the model refuses although a passage holds the answer (:mod:`rag.abstention`). It says
  what the best passages say, verbatim: for a list question the outline's entries; otherwise the best
  sentence that holds the kind of thing asked for and is about the question (and, for a question spread
  over posts, the best such sentence of a second post). It never pads: a sentence is added only when it
  passes the same test as the first.

Either way the text then goes through :mod:`rag.verify`, so both produce the same kind of answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from contextlib import closing
from dataclasses import replace

from rag.abstention import context_of, coverage, focus_terms, holds_kind
from rag.evidence import Evidence
from rag.prompts import answer_prompt
from rag.question import Question
from rag.settings import Settings
from rag.verify import dangles

MAX_SENTENCES = 2
_NUMBERING_RE = re.compile(r"^\d+[.)]\s+")


def generate(model, evidence: Evidence, question: str, callbacks=None) -> Iterator[str]:
    """The model's answer, token by token (``callbacks``: the LangChain run it is a child of, if any).

    The model's own stream, not a ``prompt | model | parser`` chain's: closing a LangChain sequence's
    stream drains the model to its last token (its tracing reads the rest of the input), so a reader who
    stops an answer would leave the LLM writing. Closing this generator closes the model's stream."""
    messages = answer_prompt().format_messages(evidence=evidence.render(), question=question)
    config = {"callbacks": callbacks} if callbacks is not None else None
    with closing(model.stream(messages, config=config)) as chunks:
        for chunk in chunks:
            content = chunk.content  # a string, or a list of content blocks
            text = content if isinstance(content, str) else "".join(
                b if isinstance(b, str) else str(b.get("text", "")) for b in content
            )  # fmt: skip
            if text:
                yield text


TRANSLATE_PROMPT = "Translate the user's text into English. Reply with the translation only."


def translate(model, text: str, callbacks=None) -> str:
    """The model's English translation of one passage (for answers quoting a French or Chinese post)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    config = {"callbacks": callbacks} if callbacks is not None else None
    reply = model.invoke([SystemMessage(TRANSLATE_PROMPT), HumanMessage(text)], config=config, max_tokens=160)
    return str(reply.content).strip()


def extractive_answer(
    evidence: Evidence,
    question: Question,
    idf,
    settings: Settings,
    skip_posts: Collection[str] = (),
    only: Collection[int] = (),
) -> str:
    """The passages' own best sentences, ``[n]``-cited (see the module doc); "" when none answers.

    ``skip_posts``: posts already cited (the best sentence of another post is wanted). ``only``: the
    passage numbers to answer from (those a model pointed at); all when empty.
    """
    if only:
        evidence = replace(evidence, passages=[p for p in evidence.passages if p.n in only])
    if evidence.is_empty:
        return ""
    if question.kind == "list" and not skip_posts:
        outline = next((p for p in evidence.passages if p.outline), None)
        if outline is not None:  # the list itself, one entry a line ("1. " numbering dropped)
            return "\n".join(f"- {_NUMBERING_RE.sub('', s.display)} [{outline.n}]" for s in outline.sentences)
    focus = focus_terms(question.topic, idf)
    passage_of = {s.key: p for p in evidence.passages if not p.outline for s in p.sentences}
    ranked = [s for s in evidence.ranked if s.key in passage_of]
    # sentences the scorer did not rank (context pulled into a passage) come after, in passage order
    ranked += [s for p in evidence.passages if not p.outline for s in p.sentences if s not in ranked]
    picked: list[tuple[str, int, str]] = []
    for sentence in ranked:
        passage = passage_of[sentence.key]
        if sentence.text.rstrip().endswith("?") or passage.doc_id in skip_posts:
            continue
        text = sentence.display
        if sentence.text.rstrip().endswith(":") or dangles(sentence.text):  # an intro answers only with its list
            items = [s.display for s in passage.sentences if s.kind == "item" and s.start > sentence.start]
            if len(items) < 2:
                continue
            text = "\n".join([text, *(f"- {item}" for item in items)])
        if not holds_kind(question.kind, text, question.standalone, _entries(text), focus, passage.heading):
            continue
        share = coverage(focus, [text, *(s.display for s in passage.sentences), context_of(passage)], idf)
        if share < settings.answer_min_coverage:
            continue
        if any(doc_id == passage.doc_id for _, _, doc_id in picked) and question.spread:
            continue
        picked.append((text, passage.n, passage.doc_id))
        if len(picked) >= (MAX_SENTENCES if question.spread and not skip_posts else 1):
            break
    return "\n".join(_cite(text, n) for text, n, _ in picked)


def _cite(text: str, n: int) -> str:
    """``text`` with ``[n]`` before its full stop; each line of a list its own citation."""
    if "\n" in text:
        return "\n".join(_cite(line, n) if not line.startswith("- ") else f"{line} [{n}]" for line in text.split("\n"))
    text = text.rstrip(" :;,")
    if text and text[-1] in ".!?":
        return f"{text[:-1]} [{n}]{text[-1]}"
    return f"{text} [{n}]."


def _entries(text: str) -> int:
    return text.count(";") + text.count(",") + 1

"""The library API: ``Assistant.ask`` / ``Assistant.stream`` / ``Assistant.index_status``.

One question goes through these steps (every front end and the eval harness use exactly this path):

1. condense a follow-up with the conversation history into a standalone question (:mod:`rag.query`);
2. find the events it names, restrict retrieval to them, or abstain when no post covers them;
3. hybrid retrieval (:mod:`rag.retrieval`); abstain *without calling the LLM* when the best dense cosine
   similarity is below ``settings.min_relevance``;
4. pack the most relevant sentences into ``settings.context_tokens`` (:mod:`rag.packing`), numbered [n];
5. answer: a LangChain chain ``answer_prompt() | chat model | StrOutputParser()`` streamed token by
   token, or the extractive backend; any LLM failure or timeout falls back to the extractive answer and
   ``Answer.fallback_reason`` says why (the text says so too);
   Before the LLM is called, a question resting on a multi-word name that no retrieved post mentions
   abstains (:func:`rag.verify.names_not_in`); an empty model answer ("", "[1]") counts as a failure;
6. verify every sentence against the evidence it cites (:mod:`rag.verify`), re-point or drop citations,
   put the posts' own words in place of loose paraphrases, remove unsupported sentences, abstain if
   nothing supported remains (or a "how many" answer has no number);
7. after a model answer that holds, add up to ``settings.answer_supporting_quotes`` of the posts' best
   sentences it did not say (verified like the rest).

``stream`` yields ``status`` events, the raw ``token`` events as the model writes them, then one final
``answer`` event whose ``Answer.text`` is the *verified* text: front ends replace the streamed text
with it (it may have lost a sentence or had its citation numbers changed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

from rag.errors import EmptyIndexError, InvalidQuestionError, LLMEmptyAnswerError
from rag.settings import Settings, get_settings
from rag.types import Answer, Source, StreamEvent

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
ABSTAIN_LEAD = "I couldn't find an answer to that in the KubeCon recaps."
CLOSEST_POSTS = 3
SENTENCE_RELEVANCE_MARGIN = 0.05  # see _run: a single sentence needs min_relevance + this


@dataclass(frozen=True)
class IndexStatus:
    """What is indexed, and where answers come from (for status pages and ``/kqa status``)."""

    posts: int
    chunks: int
    events: list[str] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    backend: str = ""
    store: str = ""
    updated_at: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Assistant:
    """Grounded question answering over the indexed recaps. Thread-safe; one per process is enough.

    >>> qa = Assistant()                       # KQA_* environment / defaults
    >>> ans = qa.ask("What did the Datadog recap say about platform engineering at KubeCon EU 2022?")
    >>> ans.text, ans.citations[0].quote
    """

    def __init__(self, settings: Settings | None = None):
        from rag.packing import SentenceEmbeddingCache
        from rag.retrieval import HybridRetriever

        self.settings = settings or get_settings()
        self.retriever = HybridRetriever(self.settings)
        self._sentence_cache = SentenceEmbeddingCache()

    # --- public API ---------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Answer:
        """Answer ``question`` (with optional chat ``history`` and ``event``/``year`` restrictions)."""
        answer = None
        for item in self._run(question, history, event, year):
            if item.kind == "answer":
                answer = item.answer
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Iterator[StreamEvent]:
        """``status`` events, ``token`` events as the model writes, then the final verified ``answer``."""
        yield from self._run(question, history, event, year)

    def retrieve(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
        *,
        mode: str = "hybrid",
    ):
        """Only steps 1-3: the :class:`~rag.retrieval.RetrievalResult` for a question (eval, benchmarks)."""
        _, _, retrieval = self._retrieve(question, history, event, year, mode=mode)
        return retrieval

    def rank_sources(
        self,
        question: str,
        k: int = 10,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> list[str]:
        """Post ids in retrieval order (best first), at most ``k``: what recall@k is measured on."""
        return [s.source_id for s in self.retrieve(question, history, event, year).sources(limit=k)]

    def index_status(self) -> IndexStatus:
        """Posts, chunks, events and years in the index; an index not built yet reports zeros."""
        try:
            snapshot = self.retriever.snapshot()
        except EmptyIndexError:
            return IndexStatus(0, 0, [], [], self.settings.llm_backend, self.settings.describe_store(), None)
        events = sorted({p.event for p in snapshot.posts.values() if p.event}, key=_event_sort_key)
        return IndexStatus(
            posts=len(snapshot.posts),
            chunks=len(snapshot.chunks),
            events=events,
            years=snapshot.years,
            backend=self.settings.llm_backend,
            store=self.settings.describe_store(),
            updated_at=snapshot.signature[1] or None,
        )

    # --- the pipeline ---------------------------------------------------------------------------
    def _retrieve(self, question, history, event, year, *, mode: str = "hybrid"):
        from rag.query import condense, detect_events, restrict_year, strip_event_mentions
        from rag.text import content_terms

        question = _validate(question, history, event, year)
        history = _clean_history(history)
        snapshot = self.retriever.snapshot()
        reference_year = snapshot.reference_year
        standalone = condense(question, history, reference_year)
        events = detect_events(standalone, reference_year)
        if event is not None and event.strip():
            events = detect_events(event, reference_year)
            if events.is_empty:
                raise InvalidQuestionError(
                    f"Unrecognised event {event!r}: name a city, region or year, e.g. 'KubeCon EU 2022', "
                    "'Detroit' or 'Paris 2024'."
                )
        if year is not None:
            events = restrict_year(events, year)
        # Once the event restricts retrieval, its words ("KubeCon EU 2019") only blur the topic.
        topic = strip_event_mentions(standalone, detect_events(standalone, reference_year))
        topic = topic if content_terms(topic) else standalone
        retrieval = self.retriever.retrieve(standalone, events, mode=mode, topic=topic, snapshot=snapshot)
        return standalone, topic, retrieval

    def _run(self, question, history, event, year) -> Iterator[StreamEvent]:
        from rag.extractive import extractive_answer
        from rag.packing import pack_evidence, score_sentences
        from rag.text import answer_numbers, asks_for_quantity
        from rag.verify import SUPPORTED, has_claim, names_not_in, strip_markers

        started = time.perf_counter()
        yield StreamEvent("status", "Searching the recaps…")
        standalone, topic, retrieval = self._retrieve(question, history, event, year)
        timings = {"retrieve": retrieval.timings.get("retrieve", 0.0)}
        base = Answer(
            question=question.strip(),
            text="",
            sources=retrieval.sources(),
            standalone_question=standalone,
            backend=self.settings.llm_backend,
            timings=timings,
        )
        if not retrieval.chunks:
            yield self._final(self._abstain(base, retrieval), started)
            return

        t = time.perf_counter()
        topic_embedding = (
            retrieval.query_embedding if topic == standalone else self._embedder.embed_query(topic)
        )
        ranked = score_sentences(
            retrieval.chunks, topic, topic_embedding, self._embedder, self._sentence_cache, retrieval.snapshot
        )
        timings["pack"] = time.perf_counter() - t
        # Relevance: the best chunk, or the best single sentence (a short specific question can match one
        # sentence of a chunk well and the chunk as a whole poorly); a sentence must clear a slightly
        # higher bar, since one short line matches by chance more easily than 200 tokens do ("best pizza
        # recipe" meets "Lunch time: Tacos" at 0.36). Below the threshold: abstain, no LLM call.
        # A name the embedding model doesn't know ("Backstage" scores 0.37) still counts when every
        # content word of the question is in one of the top chunks.
        best_sentence = max((s.similarity for s in ranked), default=0.0) - SENTENCE_RELEVANCE_MARGIN
        relevance = max(retrieval.best_similarity, best_sentence)
        if relevance < self.settings.min_relevance and not _all_terms_found(topic, retrieval.chunks[:3]):
            yield self._final(self._abstain(base, retrieval), started)
            return
        evidence = pack_evidence(
            ranked, self.settings, lambda sentences: self._sentence_cache.embed(self._embedder, sentences)
        )
        timings["pack"] = time.perf_counter() - t
        if evidence.is_empty:
            yield self._final(self._abstain(base, retrieval), started)
            return
        missing = names_not_in(topic, retrieval.chunks)
        if missing:  # the question rests on a name no retrieved post mentions: nothing to ground an answer on
            reason = f"None of the recaps I found mentions {_join(missing)}."
            yield self._final(self._abstain(base, retrieval, reason), started)
            return
        base.prompt_tokens = self._prompt_tokens(evidence, standalone)

        text = ""
        empty_answer = False
        if self.settings.llm_backend == "extractive":
            text = extractive_answer(evidence, standalone)
        else:
            yield StreamEvent("status", "Writing the answer…")
            t = time.perf_counter()
            pieces: list[str] = []
            try:
                for piece in self._generate(evidence, standalone):
                    if not pieces:
                        timings["first_token"] = time.perf_counter() - t
                    pieces.append(piece)
                    yield StreamEvent("token", piece)
                text = "".join(pieces)
                if not has_claim(text):  # "", "[1]": nothing to verify, and not an "I don't know" either
                    raise LLMEmptyAnswerError("the language model returned no answer")
            except Exception as exc:  # any LLM failure: answer from the recaps directly (see module doc)
                log.warning(
                    "LLM backend %s failed, falling back to extractive: %s", self.settings.llm_backend, exc
                )
                base.fallback_reason = _reason(exc)
                empty_answer = isinstance(exc, LLMEmptyAnswerError)
                if not empty_answer:
                    yield StreamEvent("status", "The language model is unavailable; quoting the recaps instead…")
                text = extractive_answer(evidence, standalone)
            timings["generate"] = time.perf_counter() - t

        t = time.perf_counter()
        verification = self._verifier.verify(text, evidence, standalone)
        quotes = self.settings.answer_supporting_quotes
        if not verification.abstained and quotes and "generate" in timings and not base.fallback_reason:
            # The model's grounded answer, then the posts' own best sentences it did not already say: a
            # small model answers in one sentence and leaves out facts the evidence holds. Never after an
            # answer that does not hold: the quotes would look like one. For "how many" they must share a
            # word with the question, or any count in the posts would pass for the one asked about.
            said = [s.text for s in verification.sentences if s.status in SUPPORTED]
            on_topic = topic if asks_for_quantity(standalone) else ""
            extra = extractive_answer(evidence, standalone, exclude=said, limit=quotes, on_topic=on_topic)
            if extra:
                verification = self._verifier.verify(f"{text}\n\n{extra}", evidence, standalone)
        timings["verify"] = time.perf_counter() - t
        base.removed_sentences = verification.removed
        if verification.abstained:
            yield self._final(self._abstain(base, retrieval), started)
            return
        if asks_for_quantity(standalone) and not answer_numbers(strip_markers(verification.text), standalone):
            # "How much did a ticket cost?" answered with "prices rose over time" is on topic, not an answer
            reason = "The recaps I found don't give that number."
            yield self._final(self._abstain(base, retrieval, reason), started)
            return
        base.text = verification.text
        if base.fallback_reason:
            base.backend = "extractive"
            what = "gave no answer" if empty_answer else "was unavailable"
            base.text += (
                f"\n\n(The {self.settings.llm_backend} language model {what}, so this answer quotes "
                "the recaps directly.)"
            )
        if retrieval.uncovered:
            base.text += (
                f"\n\n(No recap in the index covers {_join(m.label() for m in retrieval.uncovered)}.)"
            )
        base.citations = verification.citations
        base.sources = _mark_cited(base.sources, verification.cited_posts)
        yield self._final(base, started)

    def _generate(self, evidence, question: str) -> Iterator[str]:
        from langchain_core.output_parsers import StrOutputParser

        from rag.components.llm import get_chat_model
        from rag.prompts import answer_prompt

        model = get_chat_model(self.settings)
        chain = answer_prompt() | model | StrOutputParser()
        yield from chain.stream({"evidence": evidence.render(), "question": question})

    def _prompt_tokens(self, evidence, question: str) -> int:
        from rag.components.tokens import count_tokens
        from rag.prompts import answer_prompt

        messages = answer_prompt().format_messages(evidence=evidence.render(), question=question)
        return sum(count_tokens(str(m.content)) + 4 for m in messages)  # +4: chat-template framing per turn

    def _abstain(self, answer: Answer, retrieval, reason: str = "") -> Answer:
        """Say so (and why, when known), and point at the closest posts (or at the events the index covers)."""
        answer.abstained = True
        answer.citations = []
        if retrieval.uncovered and retrieval.events.is_empty:
            snapshot = self.retriever.snapshot()
            covered = sorted({p.event for p in snapshot.posts.values() if p.event}, key=_event_sort_key)
            answer.text = (
                f"No recap in the index covers {_join(m.label() for m in retrieval.uncovered)}, so I can't answer "
                f"that from the recaps. The index covers: {'; '.join(covered)}."
            )
            answer.sources = []
            return answer
        closest = answer.sources[:CLOSEST_POSTS]
        lines = [f"{ABSTAIN_LEAD} {reason}" if reason else ABSTAIN_LEAD]
        if closest:
            lines.append("The closest posts are:")
            lines.extend(f"- {s.title} ({s.event})" if s.event else f"- {s.title}" for s in closest)
        answer.text = "\n".join(lines)
        return answer

    def _final(self, answer: Answer, started: float) -> StreamEvent:
        answer.timings["total"] = time.perf_counter() - started
        return StreamEvent("answer", answer.text, answer)

    @property
    def _embedder(self):
        from rag.components.store import get_embedder_for

        return get_embedder_for(self.settings)

    @property
    def _verifier(self):
        from rag.verify import Verifier

        return Verifier(self.settings, self._embedder)


def _validate(question, history, event, year) -> str:
    if not isinstance(question, str):
        raise InvalidQuestionError(f"The question must be a string, not {type(question).__name__}.")
    if not question.strip():
        raise InvalidQuestionError("The question is empty: ask something about the KubeCon recaps.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(
            f"The question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}."
        )
    if history is not None:
        if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
            raise InvalidQuestionError("history must be a list of {'role': ..., 'content': ...} messages.")
        for message in history:
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
                raise InvalidQuestionError(
                    "Each history message must be a dict with role 'user' or 'assistant' and a 'content' string, "
                    f"got {message!r:.80}."
                )
    if event is not None and not isinstance(event, str):
        raise InvalidQuestionError(
            f"event must be a string such as 'KubeCon EU 2022', not {type(event).__name__}."
        )
    if year is not None and (isinstance(year, bool) or not isinstance(year, int) or not 2014 <= year <= 2100):
        raise InvalidQuestionError(f"year must be an int such as 2022, not {year!r}.")
    return _encodable(question.strip())


def _encodable(text: str) -> str:
    """``text`` with lone surrogates replaced: JSON from the web or Slack can carry "\\ud800", which is not
    UTF-8 and makes the embedding tokenizer raise a TypeError."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _clean_history(history):
    if history is None:
        return None
    return [
        {**message, "content": _encodable(message["content"])}
        if isinstance(message.get("content"), str)
        else message
        for message in history
    ]


def _all_terms_found(question: str, chunks) -> bool:
    from rag.text import content_terms

    terms = set(content_terms(question))
    return bool(terms) and any(
        terms <= set(content_terms(f"{c.chunk.title} {c.chunk.section} {c.chunk.text}")) for c in chunks
    )


def _reason(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message if len(message) <= 300 else message[:297] + "..."


def _join(labels) -> str:
    labels = list(dict.fromkeys(labels))
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def _event_sort_key(event: str) -> tuple:
    from rag.events import parse_event

    info = parse_event(event)
    return (info.year or 0, event)


def _mark_cited(sources: list[Source], cited_posts: dict[int, str]) -> list[Source]:
    from dataclasses import replace

    numbers_by_post: dict[str, list[int]] = {}
    for n, doc_id in sorted(cited_posts.items()):
        numbers_by_post.setdefault(doc_id, []).append(n)
    out = [
        replace(
            s,
            cited=s.source_id in numbers_by_post,
            citation_numbers=tuple(numbers_by_post.get(s.source_id, ())),
        )
        for s in sources
    ]
    return out

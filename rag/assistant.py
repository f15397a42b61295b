"""The library API: ``Assistant.ask`` / ``Assistant.stream`` / ``Assistant.index_status``.

One question goes through six named steps, each in its own module (every front end and the eval harness
use exactly this path):

1. **understand** (:mod:`rag.question`): condense a follow-up with the history, find the events it names,
   classify the kind of answer wanted (a number, a reason, a list, a name, a date, a place);
2. **retrieve** (:mod:`rag.retrieval`): hybrid dense + BM25 within those events;
3. **evidence** (:mod:`rag.evidence`): a few numbered passages with their heading paths (and, for a list
   question, the post's outline);
4. **abstain early** (:mod:`rag.abstention`): nothing relevant, a name no retrieved post mentions, or no
   passage that holds the kind of answer asked for: say so without calling the model;
5. **answer** (:mod:`rag.answering`): the LLM streamed token by token, or the extractive backend; any LLM
   failure or timeout falls back to the extractive answer and ``Answer.fallback_reason`` says why;
6. **verify** (:mod:`rag.verify`) every sentence against one passage, then **abstain late**
   (:mod:`rag.abstention`) when the verified sentences do not hold the answer; when the model refused
   while a passage plainly holds the answer, the passage's words answer instead.

``stream`` yields ``status`` events, the raw ``token`` events as the model writes them, then one final
``answer`` event whose ``Answer.text`` is the *verified* text: front ends replace the streamed text
with it (it may have lost a sentence or had its citation numbers changed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace

from rag import abstention, crosslingual, tracing
from rag.aio import iterate_in_thread
from rag.answerer import Answerer
from rag.answering import extractive_answer, generate, translate
from rag.components import llm
from rag.components.embedding import get_embedder_for
from rag.components.tokens import count_tokens
from rag.errors import EmptyIndexError, InvalidQuestionError, KQAError, LLMEmptyAnswerError
from rag.events import parse_event
from rag.evidence import Evidence, SentenceEmbeddingCache, build_evidence, score_sentences
from rag.prompts import answer_prompt
from rag.question import Question, understand
from rag.redaction import redact, url_secrets
from rag.retrieval import HybridRetriever, RetrievalResult, ScoredChunk
from rag.settings import Settings, get_settings
from rag.types import Answer, IndexStatus, Source, StreamEvent  # IndexStatus: re-exported, it lived here
from rag.verify import Verification, Verifier, cited_numbers, has_claim

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
ABSTAIN_LEAD = "I couldn't find an answer to that in the KubeCon recaps."
CLOSEST_POSTS = 3


class Assistant(Answerer):
    """Grounded question answering over the indexed recaps. Thread-safe; one per process is enough.

    >>> qa = Assistant()                       # KQA_* environment / defaults
    >>> ans = qa.ask("What did the Datadog recap say about platform engineering at KubeCon EU 2022?")
    >>> ans.text, ans.citations[0].quote
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.retriever = HybridRetriever(self.settings)
        self._sentence_cache = SentenceEmbeddingCache()
        self._post_languages = crosslingual.PostLanguages()
        self._translations = crosslingual.Translations()

    # --- public API (``ask``, the final answer of ``stream``, comes from Answerer) -----------------
    def stream(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Iterator[StreamEvent]:
        """``status`` events, ``token`` events as the model writes, then the final verified ``answer``."""
        yield from self._run(question, history, event, year)

    async def aask(
        self, question: str, history=None, event: str | None = None, year: int | None = None
    ) -> Answer:
        """:meth:`ask` for asyncio code (the pipeline runs on a worker thread; cancelling stops it)."""
        answer = None
        async for item in self.astream(question, history, event, year):
            if item.kind == "answer":
                answer = item.answer
        assert answer is not None
        return answer

    async def astream(
        self, question: str, history=None, event: str | None = None, year: int | None = None
    ) -> AsyncIterator[StreamEvent]:
        """:meth:`stream` for asyncio code. Closing the iterator (or cancelling its task) stops generation
        at the model's next token."""
        events = iterate_in_thread(lambda: self._run(question, history, event, year))
        try:
            async for item in events:
                yield item
        finally:
            await events.aclose()

    def as_retriever(self, k: int | None = None, event: str | None = None, year: int | None = None):
        """A LangChain ``BaseRetriever`` over the same hybrid retrieval (see :mod:`rag.lc`)."""
        from rag.lc import RecapRetriever  # lazy: langchain-core is an optional extra

        return RecapRetriever(assistant=self, k=k or self.settings.top_k, event=event, year=year)

    def as_runnable(self):
        """The whole grounded pipeline as a LangChain ``Runnable`` (question or dict in, ``Answer`` out)."""
        from rag.lc import AssistantRunnable  # lazy: langchain-core is an optional extra

        return AssistantRunnable(self)

    def retrieve(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
        *,
        mode: str = "hybrid",
    ) -> RetrievalResult:
        """Only steps 1-2: the :class:`~rag.retrieval.RetrievalResult` for a question (eval, benchmarks)."""
        return self._retrieve(self._understand(question, history, event, year), mode=mode)

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
    def _run(self, asked, history, event, year, observers=()) -> Iterator[StreamEvent]:
        """The pipeline, each stage seen by ``observers`` (LangChain runs) and OpenTelemetry when it is on."""
        trace = tracing.Trace(
            [*observers, tracing.OTelObserver.maybe(self._trace_attributes(asked, history))]
        )
        try:
            yield from self._stages(trace, asked, history, event, year)
        except BaseException as exc:  # GeneratorExit included: the caller closed the stream
            trace.finish(error=exc)
            raise

    def _trace_attributes(self, asked, history) -> dict:
        values = {"backend": self.settings.llm_backend, "question_chars": len(asked) if isinstance(asked, str) else 0,
                  "history_turns": len(history) if isinstance(history, Sequence) else 0}  # fmt: skip
        if self.settings.trace_questions:
            values["question"] = asked
        return values

    def _stages(self, trace: tracing.Trace, asked, history, event, year) -> Iterator[StreamEvent]:
        started = time.perf_counter()
        yield StreamEvent("status", "Searching the recaps…")
        snapshot = self.retriever.snapshot()
        with trace.stage("understand", event_filter=event is not None, year_filter=year is not None) as stage:
            question = self._understand(asked, history, event, year, snapshot)
            stage.outputs.update(_describe_question(question), result=question)
        with trace.stage("retrieve") as stage:
            retrieval = self._retrieve(question, snapshot=snapshot)
            languages = self._foreign_languages(retrieval)
            if languages:
                yield StreamEvent("status", f"Reading the posts in {_join(languages)}…")
                retrieval = self._in_post_languages(question, retrieval, stage.callbacks)
            stage.outputs.update(chunks=len(retrieval.chunks), best_similarity=round(retrieval.best_similarity, 4),
                                 result=retrieval)  # fmt: skip
        idf = snapshot.idf
        answer = Answer(
            question=question.asked,
            text="",
            sources=retrieval.sources(),
            standalone_question=question.standalone,
            backend=self.settings.llm_backend,
            timings={"retrieve": retrieval.timings.get("retrieve", 0.0)},
        )
        with trace.stage("pack") as stage:
            evidence = self._evidence(question, retrieval, answer.timings) if retrieval.chunks else None
            evidence, reason = self._abstain_early(question, retrieval, evidence, answer.timings)
            stage.outputs.update(passages=len(evidence.passages) if evidence else 0, abstained=reason is not None,
                                 result=evidence)  # fmt: skip
        if reason is not None:
            yield self._final(self._abstain(answer, retrieval, reason), started, trace)
            return
        answer.prompt_tokens = self._prompt_tokens(evidence, question.standalone)
        with trace.stage("generate", prompt_tokens=answer.prompt_tokens) as stage:
            text = yield from self._answer(question, evidence, answer, idf, stage.callbacks)
            stage.outputs.update(
                backend=self.settings.llm_backend, fallback=bool(answer.fallback_reason), result=text
            )
        t = time.perf_counter()
        with trace.stage("verify") as stage:
            verification = self._verify(text, evidence, question)
            verification, reason = self._abstain_late(question, evidence, verification, answer, idf)
            answer.timings["verify"] = time.perf_counter() - t
            answer.removed_sentences = verification.removed
            if reason is None:
                verification = self._in_english(verification, answer, stage.callbacks)
            stage.outputs.update(removed=len(verification.removed), abstained=reason is not None,
                                 citations=0 if reason is not None else len(verification.citations),
                                 result=verification)  # fmt: skip
        if reason is not None:
            yield self._final(self._abstain(answer, retrieval, reason), started, trace)
            return
        yield self._final(self._finish(answer, verification, retrieval), started, trace)

    def _understand(self, asked, history, event, year, snapshot=None) -> Question:
        history = _history_dicts(history)
        asked = _validate(asked, history, event, year)
        snapshot = snapshot if snapshot is not None else self.retriever.snapshot()
        try:
            return understand(asked, _clean_history(history), snapshot.reference_year, event, year)
        except ValueError as exc:
            raise InvalidQuestionError(str(exc)) from exc

    def _retrieve(self, question: Question, *, mode: str = "hybrid", snapshot=None) -> RetrievalResult:
        return self.retriever.retrieve(
            question.standalone, question.events, mode=mode, topic=question.topic, snapshot=snapshot
        )

    def _foreign_languages(self, retrieval: RetrievalResult) -> list[str]:
        """The languages other than English that retrieved posts are written in, when the model can
        translate the question into them (``translate_questions``)."""
        if not retrieval.chunks or not self.settings.translate_questions or self.settings.llm_backend == "extractive":
            return []
        posts = (c.chunk.doc_id for c in retrieval.chunks)
        return list(dict.fromkeys(self._post_languages.of(retrieval.snapshot, posts).values()))

    def _in_post_languages(self, question: Question, retrieval: RetrievalResult, callbacks=None) -> RetrievalResult:
        """The retrieved posts written in another language, searched again with the question in theirs
        (:mod:`rag.crosslingual`): their best chunks join the retrieved ones, and the translated question
        scores their sentences as evidence too. A model that fails here is left to the answer step."""
        t = time.perf_counter()
        foreign = self._post_languages.of(retrieval.snapshot, (c.chunk.doc_id for c in retrieval.chunks))
        chunks, queries = list(retrieval.chunks), []
        for language in dict.fromkeys(foreign.values()):
            posts = {doc_id for doc_id, found in foreign.items() if found == language}
            try:
                model = llm.get_chat_model(self.settings)
                text = self._translations.translate(model, question.topic, language, callbacks)
            except Exception as exc:  # the answer step falls back and says why
                log.warning("Translating the question into %s failed: %s", language,
                            redact(f"{type(exc).__name__}: {exc}", self._secrets()))  # fmt: skip
                break
            if not text:
                continue
            found = self.retriever.retrieve(text, question.events, topic=text, snapshot=retrieval.snapshot, posts=posts)
            chunks = crosslingual.with_post_language_chunks(chunks, found.chunks, posts)
            queries.append(crosslingual.query_in(language, text, posts, found.query_embedding))
        timings = {**retrieval.timings, "translate": time.perf_counter() - t}
        return replace(retrieval, chunks=chunks, post_language_queries=tuple(queries), timings=timings)

    def _evidence(self, question: Question, retrieval: RetrievalResult, timings: dict) -> Evidence:
        t = time.perf_counter()
        embedder = self._embedder
        if question.topic == question.standalone:
            topic_embedding = retrieval.query_embedding
        else:
            topic_embedding = embedder.embed_query(question.topic)
        ranked = score_sentences(
            retrieval.chunks,
            question.topic,
            topic_embedding,
            embedder,
            self._sentence_cache,
            retrieval.snapshot,
            abstention.kind_test(question),
            retrieval.post_language_queries,
        )
        evidence = build_evidence(
            ranked,
            self.settings,
            lambda sentences: self._sentence_cache.embed(embedder, sentences),
            spread=question.spread,
            outline_for=question.topic if question.kind == "list" else None,
        )
        evidence.translations = {post: q.text for q in retrieval.post_language_queries for post in q.posts}
        timings["pack"] = time.perf_counter() - t
        return evidence

    def _abstain_early(
        self, question: Question, retrieval: RetrievalResult, evidence: Evidence | None, timings: dict
    ) -> tuple[Evidence | None, str | None]:
        """The evidence to answer from, and why the recaps cannot answer before any model is called
        (``None``: go on; "": no reason given)."""
        if evidence is None or evidence.is_empty or not self._relevant(question, retrieval, evidence):
            return evidence, ""
        snapshot = retrieval.snapshot
        posts = [(snapshot.post_text(d).text, _post_context(snapshot, d)) for d in dict.fromkeys(
            c.chunk.doc_id for c in retrieval.chunks)]  # fmt: skip
        foreign = self._post_languages.of(snapshot, (c.chunk.doc_id for c in retrieval.chunks))
        missing = abstention.names_not_in(question.topic, posts) if not foreign else []
        if missing:  # the question rests on a name no retrieved post mentions: nothing to ground an answer on
            return evidence, f"None of the recaps I found mentions {_join(missing)}."
        verdict = self._holds_answer(question, evidence, snapshot.idf)
        if not verdict.ok and abstention.kind_test(question) is not None:
            wider = self._read_whole_posts(question, retrieval, timings)
            if wider is not None and self._holds_answer(question, wider, snapshot.idf).ok:
                return wider, None
        return evidence, None if verdict.ok else verdict.reason

    def _holds_answer(self, question: Question, evidence: Evidence, idf) -> abstention.Answerability:
        """Does one passage of ``evidence`` hold the kind of answer asked for, about what was asked?"""
        return abstention.judge_passages(
            question.kind, question.topic, question.standalone, evidence.passages, idf, self.settings,
            evidence.translations,
        )

    def _read_whole_posts(self, question: Question, retrieval: RetrievalResult, timings: dict) -> Evidence | None:
        """Evidence from every chunk of the top posts: the second look before refusing a who / when / where /
        how-many question.

        Retrieval keeps a few chunks per post, and the one holding the number or the name can rank below
        them ("For 67% of attendees, it is their first KubeCon" in a post about a first KubeCon). The same
        answerability test then decides on the whole posts; the refusal stands when they do not hold it.
        """
        snapshot = retrieval.snapshot
        posts = list(dict.fromkeys(c.chunk.doc_id for c in retrieval.chunks))[: self.settings.second_look_posts]
        chunks = [chunk for doc_id in posts for chunk in snapshot.chunks_of(doc_id)]
        if not chunks:
            return None
        similarity = snapshot.embeddings[[snapshot.position[c.chunk_id] for c in chunks]] @ retrieval.query_embedding
        holds = abstention.kind_test(question)
        # Chunks holding the kind of thing asked for are read first: only so many sentences are scored,
        # and three whole posts hold more ("They have released Kubeflow 0.1." sits in a chunk that
        # matches the question less than the keynote's opening lines do).
        scored = sorted(
            (ScoredChunk(c, score=max(float(s), 1e-6), dense_similarity=float(s)) for c, s in zip(chunks, similarity, strict=True)),
            key=lambda c: (holds is not None and not holds(c.chunk.text), -c.score),
        )
        return self._evidence(question, replace(retrieval, chunks=scored), timings)

    def _relevant(self, question: Question, retrieval: RetrievalResult, evidence: Evidence) -> bool:
        """The best chunk, or the best single sentence, is similar enough to the question; or every term
        of the question is in one of the top posts' retrieved chunks.

        A short specific question can match one sentence of a chunk well and the chunk as a whole poorly;
        a sentence must clear a slightly higher bar, since one short line matches by chance more easily
        than 200 tokens do ("best pizza recipe" meets "Lunch time: Tacos" at 0.36). A name the embedding
        model does not know ("Backstage" scores 0.3) still counts when a top post has all the words, its
        author among them ("What did Matteo Bianchi explain to his grandma…": "explaining Kubernetes to
        my grandma" in one chunk of his post, "Rejekts" in another).
        """
        best_sentence = max((s.similarity for s in evidence.ranked), default=0.0) - self.settings.sentence_relevance_margin
        if max(retrieval.best_similarity, best_sentence) >= self.settings.min_relevance:
            return True
        focus = abstention.focus_terms(question.topic)
        texts: dict[str, list[str]] = {}  # each retrieved post's chunks, title, sections and author, best first
        for c in retrieval.chunks:
            texts.setdefault(c.chunk.doc_id, []).extend([c.chunk.text, c.chunk.title, c.chunk.section, c.chunk.author])
        return bool(focus) and any(
            abstention.coverage(focus, post, lambda _: 1.0) == 1.0 for post in list(texts.values())[:3]
        )

    def _answer(self, question: Question, evidence: Evidence, answer: Answer, idf, callbacks=None):
        """The answer text (model or extractive), streaming ``token`` events; sets the fallback fields.
        ``callbacks``: LangChain callbacks for the model call (the ``generate`` stage's child runs)."""
        if self.settings.llm_backend == "extractive":
            return extractive_answer(evidence, question, idf, self.settings)
        yield StreamEvent("status", "Writing the answer…")
        t = time.perf_counter()
        pieces: list[str] = []
        try:
            for piece in generate(
                llm.get_chat_model(self.settings), evidence, question.standalone, callbacks
            ):
                if not pieces:
                    answer.timings["first_token"] = time.perf_counter() - t
                pieces.append(piece)
                yield StreamEvent("token", piece)
            text = "".join(pieces)
            if not has_claim(text):  # "", "[1]": nothing to verify, and not an "I don't know" either
                pointed = [n for n in cited_numbers(text) if evidence.passage(n) is not None]
                if not pointed:
                    raise LLMEmptyAnswerError("the language model returned no answer")
                # A small model sometimes answers with the number of the passage alone ("[2]"): that
                # passage's own best sentence is its answer.
                text = extractive_answer(evidence, question, idf, self.settings, only=pointed)
        except Exception as exc:  # any LLM failure: answer from the recaps directly (see module doc)
            log.warning(
                "LLM backend %s failed, falling back to extractive: %s",
                self.settings.llm_backend,
                redact(f"{type(exc).__name__}: {exc}", self._secrets()),
            )
            answer.fallback_reason = redact(_reason(exc), self._secrets())
            if not isinstance(exc, LLMEmptyAnswerError):
                yield StreamEvent("status", "The language model is unavailable; quoting the recaps instead…")
            text = extractive_answer(evidence, question, idf, self.settings)
        answer.timings["generate"] = time.perf_counter() - t
        return text

    def _secrets(self) -> list[str]:
        return [self.settings.openai_api_key.get_secret_value(), *url_secrets(self.settings.openai_base_url)]

    def _verify(self, text: str, evidence: Evidence, question: Question) -> Verification:
        return self._verifier.verify(text, evidence, question.standalone, abstention.answer_test(question))

    def _judge(
        self, question: Question, verification: Verification, idf, evidence: Evidence | None = None
    ) -> abstention.Answerability:
        return abstention.judge_answer(
            question.kind,
            question.topic,
            question.standalone,
            verification.windows,
            idf,
            self.settings,
            [s.text for s in verification.supported],
            evidence,
        )

    def _abstain_late(
        self, question: Question, evidence: Evidence, verification: Verification, answer: Answer, idf
    ) -> tuple[Verification, str | None]:
        """The verified answer, or why it is no answer (see :mod:`rag.abstention`)."""
        verdict = self._judge(question, verification, idf, evidence)
        if verdict.ok and not verification.abstained:
            return self._cover_posts(question, evidence, verification, idf), None
        # The model refused, or wrote what no passage holds, while a passage holds the answer.
        if (
            self.settings.override_refusals
            and self.settings.llm_backend != "extractive"
            and not answer.fallback_reason
            and self._holds_answer(question, evidence, idf).ok
        ):
            text = extractive_answer(evidence, question, idf, self.settings)
            rescued = self._verify(text, evidence, question) if text else None
            if (
                rescued is not None
                and not rescued.abstained
                and self._judge(question, rescued, idf, evidence).ok
            ):
                return rescued, None
        return verification, verdict.reason

    def _cover_posts(
        self, question: Question, evidence: Evidence, verification: Verification, idf
    ) -> Verification:
        """A question spread over posts ("How did attendance grow from 2023 to 2025?") answered from one
        post only gets the best answering sentence of another post too, verified like the rest."""
        cited = set(verification.cited_posts.values())
        if not question.spread or len(cited) != 1 or len(evidence.doc_ids) < 2:
            return verification
        extra = extractive_answer(evidence, question, idf, self.settings, skip_posts=cited)
        if not extra:
            return verification
        combined = self._verify(f"{verification.text}\n\n{extra}", evidence, question)
        return (
            combined
            if not combined.abstained and len(set(combined.cited_posts.values())) > 1
            else verification
        )

    def _in_english(self, verification: Verification, answer: Answer, callbacks=None) -> Verification:
        """Passage words quoted from a post in another language, translated by the model when it is up."""
        if self.settings.llm_backend == "extractive" or answer.fallback_reason:
            return verification
        model = llm.get_chat_model(self.settings)
        return self._verifier.in_english(verification, lambda text: translate(model, text, callbacks))

    def _finish(self, answer: Answer, verification: Verification, retrieval: RetrievalResult) -> Answer:
        answer.text = verification.text
        if answer.fallback_reason:
            answer.backend = "extractive"
            if "no answer" not in answer.fallback_reason:  # an empty model answer needs no apology
                answer.text += (
                    f"\n\n(The {self.settings.llm_backend} language model was unavailable, so this answer quotes "
                    "the recaps directly.)"
                )
        if retrieval.uncovered:
            answer.text += (
                f"\n\n(No recap in the index covers {_join(m.label() for m in retrieval.uncovered)}.)"
            )
        answer.citations = verification.citations
        answer.sources = _mark_cited(answer.sources, verification.cited_posts)
        return answer

    def _prompt_tokens(self, evidence: Evidence, question: str) -> int:
        messages = answer_prompt().format_messages(evidence=evidence.render(), question=question)
        return sum(count_tokens(str(m.content)) + 4 for m in messages)  # +4: chat-template framing per turn

    def _abstain(self, answer: Answer, retrieval: RetrievalResult, reason: str = "") -> Answer:
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

    def _final(self, answer: Answer, started: float, trace: tracing.Trace) -> StreamEvent:
        answer.timings["total"] = time.perf_counter() - started
        trace.finish({"abstained": answer.abstained, "citations": len(answer.citations), "backend": answer.backend,
                      "fallback": bool(answer.fallback_reason)})  # fmt: skip
        return StreamEvent("answer", answer.text, answer)

    @property
    def _embedder(self):
        return get_embedder_for(self.settings)

    @property
    def _verifier(self) -> Verifier:
        return Verifier(self.settings, self._embedder)


def _post_context(snapshot, doc_id: str) -> str:
    """What a post is known by besides its text: title, event, author (from any of its chunks)."""
    post = snapshot.posts.get(doc_id)
    author = next((c.author for c in snapshot.chunks_of(doc_id)[:1]), "")
    return f"{post.title} {post.event} {author} {doc_id}" if post else ""


def _describe_question(question: Question) -> dict:
    """What a trace may say about an understood question: its kind and shape, none of its words."""
    return {"kind": question.kind, "condensed": question.standalone != question.asked,
            "events": len(question.events.mentions), "spread": question.spread}  # fmt: skip


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
            raise InvalidQuestionError(
                "history must be a list of {'role': ..., 'content': ...} messages or LangChain messages."
            )
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


def _history_dicts(history):
    """LangChain messages (``HumanMessage``/``AIMessage``/``SystemMessage``) as the role dicts the rest reads."""
    if history is None or isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        return history
    if all(isinstance(message, dict) for message in history):
        return history
    # lazy: only reached with LangChain messages, and langchain-core is an optional extra
    from langchain_core.messages import BaseMessage

    roles = {"human": "user", "ai": "assistant", "system": "system"}
    out = []
    for message in history:
        if isinstance(message, BaseMessage):
            if message.type not in roles:
                raise InvalidQuestionError(
                    f"history may hold human, AI and system messages, not a {type(message).__name__}."
                )
            message = {"role": roles[message.type], "content": str(message.text)}
        out.append(message)
    return out


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


def _reason(exc: BaseException) -> str:
    """What failed, for the user: our own errors and the system's (connection reset) say it, without
    credentials; any other exception is named by its type only, since its message may carry what a
    server sent back (a key echoed in an error body)."""
    message = (str(exc).strip() if isinstance(exc, KQAError | OSError) else "") or type(exc).__name__
    return message if len(message) <= 300 else message[:297] + "..."


def _join(labels) -> str:
    labels = list(dict.fromkeys(labels))
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def _event_sort_key(event: str) -> tuple:
    info = parse_event(event)
    return (info.year or 0, event)


def _mark_cited(sources: list[Source], cited_posts: dict[int, str]) -> list[Source]:
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

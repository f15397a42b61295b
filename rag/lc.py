"""LangChain adapters: the recaps as a ``BaseRetriever``, the grounded pipeline as a ``Runnable``, and the
index's embedding model as ``Embeddings``.

Named ``lc`` so it never shadows the ``langchain`` package. Reached through the assistant::

    retriever = qa.as_retriever(k=4, event="KubeCon EU 2022")   # Documents with source_id, offsets, scores
    runnable = qa.as_runnable()                                  # invoke/batch/ainvoke/astream/astream_events

The Runnable's stages (understand, retrieve, pack, generate, verify; :data:`rag.tracing.STAGES`) are child
runs of its own run, so a tracer (LangSmith, ``langchain_core.tracers``) sees where an answer's time went
and what each stage produced; the model call is a child of ``generate``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field

from rag.answerer import final_answer
from rag.errors import InvalidQuestionError
from rag.types import Answer, StreamEvent

INPUT_KEYS = ("question", "history", "event", "year")


# --------------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------------


def documents_from(retrieval, k: int, max_per_post: int) -> list[Document]:
    """The best ``k`` chunks of a :class:`~rag.retrieval.RetrievalResult` as Documents (at most
    ``max_per_post`` per post, the retrieval's own diversity rule), best first."""
    per_post: dict[str, int] = defaultdict(int)
    documents: list[Document] = []
    for item in retrieval.candidates:
        if len(documents) >= k:
            break
        chunk = item.chunk
        if per_post[chunk.doc_id] >= max_per_post:
            continue
        per_post[chunk.doc_id] += 1
        metadata = {
            "source_id": chunk.doc_id,
            "chunk_id": chunk.chunk_id,
            "title": chunk.title or chunk.doc_id,
            "event": chunk.event,
            "year": chunk.year,
            "url": chunk.url,
            "path": chunk.path,
            "url_or_path": chunk.url_or_path,
            "section": chunk.section,
            "author": chunk.author,
            "start": chunk.start,  # char offsets of page_content in the post's ingested text
            "end": chunk.end,
            "score": round(item.score, 6),  # fused reciprocal-rank score (higher is better)
            "dense_similarity": round(item.dense_similarity, 4),  # cosine to the question
            "dense_rank": item.dense_rank,
            "lexical_rank": item.lexical_rank,
        }
        documents.append(Document(page_content=chunk.text, metadata=metadata, id=chunk.chunk_id))
    return documents


class RecapRetriever(BaseRetriever):
    """Hybrid (dense + BM25) retrieval over the recaps, within ``event``/``year`` and the events the query
    names ("... at KubeCon Detroit"); a named event that no post covers returns no documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Any = Field(description="The rag.assistant.Assistant whose index is searched.")
    k: int = Field(8, ge=1, description="Documents returned (at most max_chunks_per_post per post).")
    event: str | None = Field(None, description="Restrict to an event: 'KubeCon EU 2022', 'Detroit'.")
    year: int | None = Field(None, description="Restrict to an event year.")

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> list[Document]:
        qa = self.assistant
        limit = self.k if k is None else k
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= qa.settings.fetch_k:
            raise InvalidQuestionError(
                f"k must be an int from 1 to KQA_FETCH_K ({qa.settings.fetch_k}), not {limit!r}."
            )
        result = qa.retrieve(query, event=event or self.event, year=year or self.year)
        return documents_from(result, limit, qa.settings.max_chunks_per_post)


# --------------------------------------------------------------------------------------------------------
# The pipeline as a Runnable
# --------------------------------------------------------------------------------------------------------


def parse_input(value) -> tuple[str, Any, str | None, int | None]:
    """A question string, or ``{"question", "history", "event", "year"}`` -> the four arguments."""
    if isinstance(value, str):
        return value, None, None, None
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(INPUT_KEYS))
        if unknown or "question" not in value:
            raise InvalidQuestionError(
                "The input must be a question string or a dict with 'question' and optionally 'history', "
                f"'event', 'year'; got keys {sorted(value)}."
            )
        return value["question"], value.get("history"), value.get("event"), value.get("year")
    raise InvalidQuestionError(
        f"The input must be a question string or a dict with a 'question' key, not {type(value).__name__}."
    )


class LangChainObserver:
    """The pipeline's stages as child runs of a LangChain run (see :mod:`rag.tracing`)."""

    def __init__(self, run_manager, question: str, k: int, max_per_post: int):
        self.parent = run_manager  # a sync CallbackManagerForChainRun
        self.question = question
        self.standalone = question
        self.k = k
        self.max_per_post = max_per_post

    def start(self, stage: str, inputs: dict[str, Any]):
        manager = self.parent.get_child()
        if stage == "retrieve":
            return manager.on_retriever_start({"name": stage}, self.standalone, name=stage)
        asked = self.question if stage == "understand" else self.standalone
        return manager.on_chain_start({"name": stage}, {"question": asked, **inputs}, name=stage)

    @staticmethod
    def child_callbacks(handle):
        return handle.get_child()

    def end(self, handle, stage: str, outputs: dict[str, Any], error: BaseException | None) -> None:
        if error is not None:
            if stage == "retrieve":
                handle.on_retriever_error(error)
            else:
                handle.on_chain_error(error)
            return
        result = outputs.get("result")
        plain = {k: v for k, v in outputs.items() if k != "result"}
        if stage == "retrieve":
            handle.on_retriever_end(documents_from(result, self.k, self.max_per_post) if result else [])
            return
        if stage == "understand" and result is not None:
            self.standalone = result.standalone
            plain |= {"standalone": result.standalone, "topic": result.topic}
        elif stage == "pack" and result is not None:
            plain |= {"evidence": result.render()}
        elif stage == "generate":
            plain |= {"text": result or ""}
        elif stage == "verify" and result is not None:
            plain |= {"text": result.text, "removed_sentences": list(result.removed)}
        handle.on_chain_end(plain)

    def finish(self, outputs: dict[str, Any], error: BaseException | None) -> None:
        """The Runnable's own run ends itself (with the Answer)."""


class AssistantRunnable(Runnable[Any, Answer]):
    """``Assistant`` as a Runnable: a question (or a dict with history/event/year) in, an ``Answer`` out.

    ``stream``/``astream`` yield the :class:`~rag.types.StreamEvent`s (status, token, then the answer);
    closing an ``astream`` stops generation. Every stage is a child run (see the module doc).
    """

    name = "kubecon-qa"

    def __init__(self, assistant):
        self.assistant = assistant

    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        return str | dict

    @property
    def OutputType(self) -> Any:  # noqa: N802
        return Answer

    def _events(self, value, run_manager) -> Iterator[StreamEvent]:
        question, history, event, year = parse_input(value)
        settings = self.assistant.settings
        observer = LangChainObserver(run_manager, question, settings.top_k, settings.max_chunks_per_post)
        return self.assistant._run(question, history, event, year, observers=[observer])

    def _invoke(self, value, run_manager) -> Answer:
        return final_answer(self._events(value, run_manager))

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:  # noqa: A002
        return self._call_with_config(self._invoke, input, config, run_type="chain")

    async def _ainvoke(self, value, run_manager) -> Answer:
        from rag.aio import iterate_in_thread

        sync_manager = run_manager.get_sync()
        answer = None
        async for item in iterate_in_thread(lambda: self._events(value, sync_manager)):
            if item.kind == "answer":
                answer = item.answer
        assert answer is not None
        return answer

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:  # noqa: A002
        return await self._acall_with_config(self._ainvoke, input, config, run_type="chain")

    def _transform(self, values: Iterator[Any], run_manager) -> Iterator[StreamEvent]:
        for value in values:
            yield from self._events(value, run_manager)

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[StreamEvent]:  # noqa: A002
        yield from self._transform_stream_with_config(iter([input]), self._transform, config)

    async def _atransform(self, values: AsyncIterator[Any], run_manager) -> AsyncIterator[StreamEvent]:
        from rag.aio import iterate_in_thread

        sync_manager = run_manager.get_sync()
        async for value in values:
            events = iterate_in_thread(lambda value=value: self._events(value, sync_manager))
            try:
                async for item in events:
                    yield item
            finally:
                await events.aclose()  # stops generation when our consumer stopped early

    async def astream(
        self,
        input: Any,  # noqa: A002
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamEvent]:
        async def single():
            yield input

        stream = self._atransform_stream_with_config(single(), self._atransform, config)
        try:
            async for item in stream:
                yield item
        finally:
            await stream.aclose()


# --------------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------------


class RecapEmbeddings(Embeddings):
    """The index's own embedding model (normalised MiniLM vectors) as LangChain ``Embeddings``: open the
    same Chroma collection with ``langchain_chroma.Chroma`` and its queries land where ours do."""

    def __init__(self, embedder):
        self.embedder = embedder

    @classmethod
    def from_settings(cls, settings=None) -> RecapEmbeddings:
        from rag.components.embedding import get_embedder_for
        from rag.settings import get_settings

        return cls(get_embedder_for(settings or get_settings()))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()

"""The peer we measure against: LangChain's own tutorial RAG, run on the same gold set in the same run.

As in the LangChain RAG tutorial: load the files, ``RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200)``, a ``langchain_chroma.Chroma`` vector store, similarity search top-4, and a "stuff"
prompt (every retrieved chunk pasted into one prompt), here asking the model to cite sources as [n].
It uses the same MiniLM embeddings and the same LLM as our assistant (``get_chat_model(settings)``), so
the comparison isolates what our pipeline adds: hybrid event-aware retrieval, evidence packing and
citation verification.

With ``llm_backend="extractive"`` there is no LLM; the baseline then quotes the three sentences of its
four chunks most similar to the question (MiniLM), each chunk numbered [1..4]. No evidence selection, no
verification, no abstention: that is what the tutorial chain lacks.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.messages import HumanMessage

from eval.contracts import CitedEvidence, SystemOutput
from eval.metrics import citation_numbers, distinct_in_order
from rag.components.store import get_client, get_embedder_for
from rag.components.tokens import count_tokens
from rag.lc import RecapEmbeddings
from rag.settings import Settings

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4
RANK_DEPTH = 40  # chunks searched to rank posts for recall@10 (the answer still sees the top 4 only)
ADD_BATCH = 256
INDEX_VERSION = "1"
EXTRACTIVE_SENTENCES = 3

# The tutorial's prompt (LangChain hub "rlm/rag-prompt"), plus the request for numbered sources.
STUFF_PROMPT = """You are an assistant for question-answering tasks. Use the following pieces of retrieved \
context to answer the question. If you don't know the answer, just say that you don't know. Use three \
sentences maximum and keep the answer concise. Cite the context pieces you used by their numbers in square \
brackets, like [1].
Question: {question}
Context:
{context}
Answer:"""


def load_documents(corpus_dir: Path) -> list[Document]:
    """The corpus as LangChain documents, one per file with its raw text, as the tutorial loads its page
    (what langchain-community's TextLoader gives, without that package)."""
    return [
        Document(
            page_content=path.read_text(encoding="utf-8"), metadata={"source": str(path), "slug": path.stem}
        )
        for path in sorted(corpus_dir.glob("*.md"))
    ]


def split_documents(docs: list[Document]) -> list[Document]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
    )
    return splitter.split_documents(docs)


def format_context(chunks: list[Document]) -> str:
    return "\n\n".join(
        f"[{i}] (source: {c.metadata['slug']})\n{c.page_content}" for i, c in enumerate(chunks, 1)
    )


def attach_slug_mentions(text: str, chunks: list[Document]) -> str:
    """Turn "source: some-post-slug" style mentions into [n] markers so they count as citations."""
    for number, chunk in enumerate(chunks, start=1):
        slug = chunk.metadata["slug"]
        text = re.sub(rf"\(?(?:source:\s*)?{re.escape(slug)}(?:\.md)?\)?", f"[{number}]", text)
    return text


def cited_evidence(text: str, chunks: list[Document]) -> list[CitedEvidence]:
    """The chunks the answer cites by [n] (numbers that point at nothing are ignored)."""
    return [
        CitedEvidence(n, chunks[n - 1].metadata["slug"], chunks[n - 1].page_content)
        for n in citation_numbers(text)
        if 1 <= n <= len(chunks)
    ]


class TutorialRAG:
    """The baseline system over its own collection in the eval store."""

    name = "baseline"

    def __init__(self, settings: Settings, corpus_dir: Path):
        self.settings = settings
        self.corpus_dir = corpus_dir
        self.embeddings = RecapEmbeddings(get_embedder_for(settings))
        self._chat = None
        self.store = None

    def _collection_name(self, docs: list[Document]) -> str:
        digest = hashlib.sha1()
        for part in (INDEX_VERSION, self.settings.embedding_model, str(CHUNK_SIZE), str(CHUNK_OVERLAP)):
            digest.update(part.encode())
        for doc in docs:
            digest.update(doc.metadata["slug"].encode())
            digest.update(hashlib.sha1(doc.page_content.encode()).digest())
        return f"kqa_baseline_{digest.hexdigest()[:12]}"

    def build_index(self, log: Callable[[str], None] = print) -> dict:
        """Split and embed the corpus, reusing the collection when the corpus and settings are unchanged."""
        from langchain_chroma import Chroma

        started = time.perf_counter()
        docs = load_documents(self.corpus_dir)
        chunks = split_documents(docs)
        name = self._collection_name(docs)
        client = get_client(self.settings)
        for stale in client.list_collections():  # older baseline indexes of this eval store
            stale_name = getattr(stale, "name", stale)
            if stale_name.startswith("kqa_baseline_") and stale_name != name:
                client.delete_collection(stale_name)
        self.store = Chroma(collection_name=name, embedding_function=self.embeddings, client=client)
        stored = self.store._collection.count()
        reused = stored == len(chunks)
        if not reused:
            log(f"Baseline: embedding {len(chunks)} chunks of {len(docs)} posts into {name}")
            ids = [f"{c.metadata['slug']}::{c.metadata['start_index']}" for c in chunks]
            for start in range(0, len(chunks), ADD_BATCH):
                self.store.add_documents(
                    chunks[start : start + ADD_BATCH], ids=ids[start : start + ADD_BATCH]
                )
        return {
            "collection": name,
            "posts": len(docs),
            "chunks": len(chunks),
            "reused": reused,
            "seconds": round(time.perf_counter() - started, 2),
        }

    @property
    def chat(self):
        if self._chat is None:
            from rag.components.llm import get_chat_model

            self._chat = get_chat_model(self.settings)
        return self._chat

    def rank_posts(self, question: str) -> list[str]:
        hits = self.store.similarity_search(question, k=RANK_DEPTH)
        return distinct_in_order(h.metadata["slug"] for h in hits)

    def retrieve(self, question: str) -> SystemOutput:
        started = time.perf_counter()
        ranked = self.rank_posts(question)
        return SystemOutput(ranked_sources=ranked, timings={"retrieve": time.perf_counter() - started})

    def answer(self, question: str) -> SystemOutput:
        t0 = time.perf_counter()
        chunks = self.store.similarity_search(question, k=TOP_K)
        t1 = time.perf_counter()
        prompt = STUFF_PROMPT.format(question=question, context=format_context(chunks))
        if self.settings.llm_backend == "extractive":
            text = self._extractive_reader(question, chunks)
        else:
            reply = self.chat.invoke([HumanMessage(content=prompt)])
            text = attach_slug_mentions(str(getattr(reply, "content", reply)).strip(), chunks)
        t2 = time.perf_counter()
        ranked = distinct_in_order([c.metadata["slug"] for c in chunks] + self.rank_posts(question))
        return SystemOutput(
            answer=text,
            ranked_sources=ranked,
            citations=cited_evidence(text, chunks),
            abstained=False,  # the tutorial has no abstention flag; its wording is checked by the scorer
            timings={"retrieve": t1 - t0, "generate": t2 - t1, "total": t2 - t0},
            prompt_tokens=count_tokens(prompt),
            backend=self.settings.llm_backend,
        )

    def _extractive_reader(self, question: str, chunks: list[Document]) -> str:
        """Without an LLM the tutorial chain has no reader: quote the ``EXTRACTIVE_SENTENCES`` sentences of
        its four chunks most similar to the question (MiniLM), each cited by its chunk's number."""
        from rag.text import split_sentences

        sentences = [
            (n, " ".join(s.text.split()))
            for n, doc in enumerate(chunks, start=1)
            for s in split_sentences(doc.page_content)
            if len(s.text.split()) >= 4
        ]
        if not sentences:
            return ""
        vectors = self.embeddings.embedder.embed([text for _, text in sentences])
        similarity = vectors @ self.embeddings.embedder.embed_query(question)
        best = sorted(range(len(sentences)), key=lambda i: -similarity[i])[:EXTRACTIVE_SENTENCES]
        return " ".join(f"{sentences[i][1]} [{sentences[i][0]}]" for i in best)

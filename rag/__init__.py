"""KubeCon Recap QA: the read path and the library API.

    from rag import Assistant
    qa = Assistant()
    ans = qa.ask("What did people say about platform engineering at KubeCon Detroit 2022?")
    print(ans.text)
    for c in ans.citations:
        print(c.n, c.title, c.url_or_path, c.quote)

Heavy dependencies (torch, chromadb, llama.cpp) load lazily, on first use.

The package has two parts:

* **Shared core**: what ingest/ (the write path) and the front ends (webchat/, slackbot/, apiserver/)
  may import. :mod:`rag.settings` (configuration), :mod:`rag.environment` (start-up environment),
  :mod:`rag.types` (Chunk, Answer, Citation, Source, StreamEvent, IndexStatus), :mod:`rag.errors`,
  :mod:`rag.events` (event names and aliases), :mod:`rag.schema` (stored chunk metadata),
  :mod:`rag.text` and :mod:`rag.stopwords` (tokenising), :mod:`rag.prompts` (ingest's
  ``looks_like_instruction`` screen), :mod:`rag.redaction`, :mod:`rag.feedback`,
  :mod:`rag.tracing`, :mod:`rag.version`, :mod:`rag.answerer` (the ask/stream/index_status surface
  the front ends are written against), and the components :mod:`rag.components.store`,
  :mod:`rag.components.embedding`, :mod:`rag.components.tokens`, :mod:`rag.components.gguf` and
  :mod:`rag.components.llm`.
* **Read path** (answering a question; front ends reach it only through :class:`Assistant`,
  :func:`rag.remote.answer_service` and :mod:`rag.lc`): :mod:`rag.assistant` and the steps it runs,
  :mod:`rag.question`, :mod:`rag.retrieval`, :mod:`rag.evidence`, :mod:`rag.abstention`,
  :mod:`rag.answering`, :mod:`rag.verify`, plus :mod:`rag.aio` and
  :mod:`rag.remote` (the same surface over HTTP).
"""

from rag.settings import Settings, get_settings
from rag.types import Answer, Chunk, Citation, IndexStatus, Source, StreamEvent

__all__ = [
    "Answer",
    "Assistant",
    "Chunk",
    "Citation",
    "IndexStatus",
    "Settings",
    "Source",
    "StreamEvent",
    "get_settings",
]


def __getattr__(name: str):
    if name == "Assistant":  # lazy: rag.assistant is light, but keeps `import rag` instant
        import rag.assistant

        return getattr(rag.assistant, name)
    raise AttributeError(name)

"""KubeCon Recap QA: the read path and the library API.

    from rag import Assistant
    qa = Assistant()
    ans = qa.ask("What did people say about platform engineering at KubeCon Detroit 2022?")
    print(ans.text)
    for c in ans.citations:
        print(c.n, c.title, c.url_or_path, c.quote)

Heavy dependencies (torch, chromadb, llama.cpp) load lazily, on first use.
"""

from rag.settings import Settings, get_settings
from rag.types import Answer, Chunk, Citation, Source, StreamEvent

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
    if name in ("Assistant", "IndexStatus"):  # lazy: rag.assistant is light, but keeps `import rag` instant
        import rag.assistant

        return getattr(rag.assistant, name)
    raise AttributeError(name)

"""The Chroma collection every part of the product reads and writes.

Two deployments, chosen by settings:

* embedded (``KQA_CHROMA_PATH``, default ``.kqa/chroma``): a ``PersistentClient`` for one process.
  Chroma's embedded store is not safe across processes, so the first process to open it takes an
  exclusive lock; a second one gets :class:`StoreLockedError` telling it to use a Chroma server.
* server (``KQA_CHROMA_URL``): an ``HttpClient`` against ``chroma run --path DIR``; any number of
  processes (web chat, Slack bot, ingest, library callers) share one index this way.

Our embedding function is always passed, so Chroma never downloads its ONNX default, and
telemetry is always off.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

from rag.components.embedding import ChromaEmbeddingFunction, Embedder, get_embedder
from rag.errors import StoreLockedError, StoreUnavailableError
from rag.settings import Settings

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

_LOCK = threading.Lock()
_CLIENTS: dict[str, object] = {}
_LOCK_FILES: dict[str, object] = {}


def _acquire_embedded_lock(path: Path) -> None:
    """Hold an exclusive lock on the embedded store for this process's lifetime."""
    key = str(path.resolve())
    if key in _LOCK_FILES:
        return
    path.mkdir(parents=True, exist_ok=True)
    handle = open(path / ".kqa.lock", "a+")  # noqa: SIM115 - kept open for the process lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StoreLockedError(
            f"The embedded Chroma store at {path} is in use by {holder}. Chroma's embedded store is "
            "single-process: stop that process, or run a Chroma server (chroma run --path DIR) and set "
            "KQA_CHROMA_URL for every process."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    _LOCK_FILES[key] = handle


def get_client(settings: Settings):
    """A cached Chroma client for the configured location (embedded directory or server URL)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    key = settings.chroma_url or str(settings.chroma_dir.resolve())
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is not None:
            return client
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            if not url.hostname:
                raise StoreUnavailableError(f"KQA_CHROMA_URL={settings.chroma_url!r} is not a URL")
            try:
                client = chromadb.HttpClient(
                    host=url.hostname,
                    port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
                client.heartbeat()
            except Exception as exc:
                raise StoreUnavailableError(
                    f"Cannot reach the Chroma server at {settings.chroma_url}: {exc}. "
                    "Is `chroma run` running there?"
                ) from exc
        else:
            _acquire_embedded_lock(settings.chroma_dir)
            try:
                client = chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
            except Exception as exc:
                raise StoreUnavailableError(
                    f"Cannot open the embedded Chroma store at {settings.chroma_dir}: {exc}"
                ) from exc
        _CLIENTS[key] = client
        return client


def forget_client(settings: Settings) -> None:
    """Drop a cached client (after the server went away), so the next call reconnects."""
    key = settings.chroma_url or str(settings.chroma_dir.resolve())
    with _LOCK:
        _CLIENTS.pop(key, None)


def get_embedder_for(settings: Settings) -> Embedder:
    return get_embedder(settings.embedding_model, settings.embedding_batch_size, settings.embedding_dtype)


def get_collection(settings: Settings, *, create: bool = True):
    """The recap collection, always with our embedding function and cosine distance."""
    client = get_client(settings)
    embedding_function = ChromaEmbeddingFunction(
        settings.embedding_model, settings.embedding_batch_size, settings.embedding_dtype
    )
    try:
        if create:
            return client.get_or_create_collection(
                settings.collection,
                embedding_function=embedding_function,
                metadata={"hnsw:space": "cosine"},
            )
        return client.get_collection(settings.collection, embedding_function=embedding_function)
    except Exception as exc:
        if not create and "does not exist" in str(exc).lower():
            return None
        hint = " Is `chroma run` running there?" if settings.chroma_url else ""
        raise StoreUnavailableError(
            f"Cannot open collection {settings.collection!r} at {settings.describe_store()}: {exc}.{hint}"
        ) from exc

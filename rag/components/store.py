"""The Chroma collection every part of the product reads and writes.

Two deployments, chosen by settings:

* embedded (``KQA_CHROMA_PATH``, default ``.kqa/chroma``): a ``PersistentClient`` for one process.
  Chroma's embedded store is not safe across processes, so the first process to open it takes an
  exclusive lock; a second one gets :class:`StoreLockedError` telling it to use a Chroma server.
* server (``KQA_CHROMA_URL``): an ``HttpClient`` against ``chroma run --path DIR``; any number of
  processes (web chat, Slack bot, ingest, library callers) share one index this way. ``chroma run``
  (Chroma 1.x) checks no credentials itself; behind an authenticating proxy, ``KQA_CHROMA_TOKEN`` is sent
  with every request the way Chroma's token auth sends it (``Authorization: Bearer`` or ``X-Chroma-Token``).

Our embedding function is always passed, so Chroma never downloads its ONNX default, and
telemetry is always off.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import urlparse

# get_embedder_for is re-exported: ingest, eval, apiserver, webchat and bench import it from here.
from rag.components.embedding import ChromaEmbeddingFunction, get_embedder_for  # noqa: F401
from rag.environment import configure_environment
from rag.errors import StoreLockedError, StoreUnavailableError
from rag.redaction import redact, safe_url
from rag.settings import Settings

_LOCK = threading.Lock()
_CLIENTS: dict[str, object] = {}
_LOCK_FILES: dict[str, object] = {}


def _acquire_embedded_lock(path: Path) -> None:
    """Hold an exclusive lock on the embedded store for this process's lifetime.

    ``filelock`` (flock on POSIX, msvcrt on Windows) so ``rag`` imports everywhere. The holder's pid goes
    in a file beside the lock: a contender's failed attempt truncates the lock file itself."""
    from filelock import FileLock, Timeout

    key = str(path.resolve())
    if key in _LOCK_FILES:
        return
    path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path / ".kqa.lock", thread_local=False)
    owner = path / ".kqa.lock.owner"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = owner.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            holder = "another process"
        raise StoreLockedError(
            f"The embedded Chroma store at {path} is in use by {holder}. Chroma's embedded store is "
            "single-process: stop that process, or run a Chroma server (chroma run --path DIR) and set "
            "KQA_CHROMA_URL for every process."
        ) from None
    owner.write_text(f"pid {os.getpid()}", encoding="utf-8")
    _LOCK_FILES[key] = lock  # kept (and held) for the process lifetime


def get_client(settings: Settings):
    """A cached Chroma client for the configured location (embedded directory or server URL)."""
    configure_environment()  # ANONYMIZED_TELEMETRY=False before chromadb is imported
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    key = settings.chroma_url or str(settings.chroma_dir.resolve())
    if settings.chroma_url and settings.chroma_token:
        key += f" {settings.chroma_token_header} {hash(settings.chroma_token.get_secret_value())}"
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
                    headers=credential_headers(settings),
                    settings=chroma_settings,
                )
                client.heartbeat()
            except Exception as exc:
                raise _unreachable(settings, exc) from exc
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


def credential_headers(settings: Settings) -> dict[str, str]:
    """The header that carries ``KQA_CHROMA_TOKEN`` (none without a token)."""
    if not settings.chroma_token:
        return {}
    token = settings.chroma_token.get_secret_value()
    if settings.chroma_token_header == "Authorization":
        return {"Authorization": f"Bearer {token}"}
    return {"X-Chroma-Token": token}


def _unreachable(settings: Settings, exc: Exception) -> StoreUnavailableError:
    """What failed, naming the server without credentials and quoting no response body."""
    where = safe_url(settings.chroma_url or "")
    text = str(exc)
    secrets = [settings.chroma_token.get_secret_value()] if settings.chroma_token else []
    if any(code in text for code in ("401", "403", "Unauthorized", "Forbidden")):
        told = "a wrong KQA_CHROMA_TOKEN" if settings.chroma_token else "no KQA_CHROMA_TOKEN"
        return StoreUnavailableError(
            f"The Chroma server at {where} refused the request ({told}): set KQA_CHROMA_TOKEN "
            f"(sent as {settings.chroma_token_header}) to the token its proxy expects."
        )
    return StoreUnavailableError(
        f"Cannot reach the Chroma server at {where}: {redact(text[:200], secrets)}. Is `chroma run` running there?"
    )


def forget_client(settings: Settings) -> None:
    """Drop a cached client (after the server went away), so the next call reconnects."""
    key = settings.chroma_url or str(settings.chroma_dir.resolve())
    with _LOCK:
        _CLIENTS.pop(key, None)


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

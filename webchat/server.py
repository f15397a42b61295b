"""Start the web chat: one Assistant for the process, ingest ``data/`` if the index is empty, serve.

A store or LLM problem at start-up does not stop the server: the page comes up and shows the error in
the status line and in the chat, so the fix (start Chroma, set KQA_CHROMA_URL, ingest) can be made
without restarting anything but the broken part.
"""

from __future__ import annotations

import logging
from typing import Any

from rag.environment import configure_environment
from rag.errors import EmptyIndexError, KQAError
from rag.redaction import safe_url
from rag.remote import answer_service
from rag.settings import Settings, get_settings
from rag.surface import AssistantSurface
from webchat.access import Access
from webchat.chat import ChatService
from webchat.ingest_job import run_ingest_job

log = logging.getLogger("kqa.web")


def index_is_empty(assistant: AssistantSurface) -> bool:
    """True when the collection holds no chunks (the library may say so by value or by EmptyIndexError)."""
    try:
        return int(getattr(assistant.index_status(), "chunks", 0) or 0) == 0
    except EmptyIndexError:
        return True


def ingest_if_empty(assistant: AssistantSurface, settings: Settings) -> None:
    """First start: fill the index from ``settings.data_dir`` so the chat has something to answer from."""
    try:
        empty = index_is_empty(assistant)
    except KQAError as exc:
        log.error("cannot read the index (%s); the web chat starts anyway and shows this error", exc)
        return
    if not empty:
        return
    if not settings.data_dir.is_dir():
        log.warning("the index is empty and %s does not exist; nothing to ingest", settings.data_dir)
        return
    log.info("the index is empty: ingesting %s first", settings.data_dir)
    try:
        for line, _fraction, _summary in run_ingest_job(settings, [settings.data_dir]):
            log.info("ingest: %s", line)
    except KQAError as exc:
        log.error("the start-up ingest failed: %s", exc)


def warm_up(settings: Settings) -> None:
    """Load the embedding model and the LLM now, once for the process, not on the first user's question."""
    from rag.components.llm import get_chat_model
    from rag.components.store import get_embedder_for

    try:
        get_embedder_for(settings).embed(["KubeCon"])
        get_chat_model(settings)
    except KQAError as exc:
        log.error("the answer backend is not ready (%s); answers will say so", exc)


def serve(host: str, port: int, settings: Settings | None = None, **launch_kwargs: Any) -> None:
    """Check the access settings for ``host`` (before anything loads), build the one Assistant, ingest if
    needed, and serve the page until interrupted. Raises :class:`webchat.access.AccessError`."""
    configure_environment()  # GRADIO_ANALYTICS_ENABLED=False before webchat.ui imports gradio
    from webchat.ui import build_demo, launch

    settings = settings or get_settings()
    access = Access(settings, host)
    assistant = answer_service(settings)  # KQA_ANSWER_URL: a RemoteAssistant; no index or LLM in this process
    if not settings.answer_url:
        ingest_if_empty(assistant, settings)
        warm_up(settings)
    demo = build_demo(ChatService(assistant, settings), settings, access)
    log.info(
        "web chat on http://%s:%d (access %s, answers from %s, %d concurrent answers)",
        host, port, access.mode, _answers_from(settings), settings.web_concurrency,
    )  # fmt: skip
    launch(demo, host, port, access, **launch_kwargs)


def _answers_from(settings: Settings) -> str:
    if settings.answer_url:
        return f"the answer service at {safe_url(settings.answer_url)}"
    return f"backend {settings.llm_backend}, {settings.describe_store()}"

"""The Gradio page: chat with streaming answers and sources, filters, feedback, status and re-ingest.

The chat is Gradio's own: a "thought" message shows the status with a spinner, sources are a collapsible
message, Stop cancels the answer (closing its generator, so the LLM stops), the chatbot's retry, undo and
edit rewind the conversation, and its feedback menu is the one rating control (👍, 👎, or a reason).

Concurrency: Gradio's queue answers at most ``settings.web_concurrency`` chat requests at once (default 4,
``KQA_WEB_CONCURRENCY``); up to ``KQA_WEB_QUEUE_SIZE`` (100) more wait in line and the rest are told the server is busy.
Every session shares the process's one Assistant, so the embedding model and the LLM load once. The
re-ingest button runs one job at a time across all sessions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.http_guard import MAX_BODY_BYTES
from rag.settings import Settings
from webchat.access import Access, RequestLimits
from webchat.chat import ALL_EVENTS, ANY_YEAR, REASONS, ChatService
from webchat.handlers import REMOTE_INGEST_NOTE, PageHandlers, busy, idle

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = [
    "What were the big takeaways from KubeCon North America 2022 in Detroit?",
    "What did people say about platform engineering?",
    "What was said about software supply chain security at KubeCon Europe 2022?",
    "What did the Istio project announce at KubeCon Europe 2025?",
]

CSS = """
.kqa-sources { margin-top: .6em; padding-top: .4em; border-top: 1px solid var(--border-color-primary); font-size: .92em; }
.kqa-sources ul { margin: .2em 0 .6em 0; padding-left: 1.1em; }
.kqa-sources li { margin-bottom: .45em; }
.kqa-sources details { margin: .15em 0 .15em .4em; }
.kqa-sources summary { cursor: pointer; }
.kqa-sources blockquote { margin: .3em 0 .3em .4em; padding-left: .6em; border-left: 3px solid var(--color-accent); }
.kqa-cite-numbers { font-weight: 600; color: var(--color-accent); }
.kqa-event { color: var(--body-text-color-subdued); }
.kqa-notice { color: var(--body-text-color-subdued); font-style: italic; }
.kqa-status { color: var(--body-text-color-subdued); }
.kqa-freshness { color: var(--body-text-color-subdued); font-size: .85em; margin-top: .4em; }
.kqa-date { color: var(--body-text-color-subdued); }
.kqa-error { color: var(--error-text-color, #b91c1c); }
"""


def build_demo(service: ChatService, settings: Settings, access: Access | None = None) -> gr.Blocks:
    """Lay out the page and wire its events to :class:`~webchat.handlers.PageHandlers`. Call :func:`launch`
    to serve it.

    ``access`` (default: open, on loopback) decides who is admin and how often a client may ask and rate."""
    handlers = PageHandlers(service, settings, access or Access(settings, "127.0.0.1"))
    with gr.Blocks(title="KubeCon Recap QA", analytics_enabled=False) as demo:
        _wire(demo, _layout(settings), handlers)
    demo.queue(default_concurrency_limit=settings.web_concurrency, max_size=settings.web_queue_size)
    return demo


@dataclass
class _Page:
    """The components the events read and write."""

    status_line: gr.Markdown
    turns: gr.State
    event_filter: gr.Dropdown
    year_filter: gr.Dropdown
    new_chat: gr.Button
    chatbot: gr.Chatbot
    question: gr.Textbox
    ask: gr.Button
    stop_button: gr.Button
    comment: gr.Textbox
    feedback_note: gr.Markdown
    api_rating: gr.Textbox
    api_reasons: gr.Textbox
    api_rate: gr.Button
    answer_json: gr.JSON
    status_view: gr.Markdown
    refresh: gr.Button
    reingest_button: gr.Button
    ingest_log: gr.Textbox


def _layout(settings: Settings) -> _Page:
    """The page's components, inside the current ``gr.Blocks``: the chat tab and the status tab."""
    gr.Markdown(
        "# KubeCon Recap QA\nAnswers about KubeCon + CloudNativeCon from recap posts. Every claim cites "
        "its post with `[n]`; open a citation to read the exact quote."
    )
    status_line = gr.Markdown(elem_id="kqa-status-line")
    turns = gr.State([])
    with gr.Tabs():
        with gr.Tab("Chat", id="chat"):
            with gr.Row():
                event_filter = gr.Dropdown(
                    [ALL_EVENTS],
                    value=ALL_EVENTS,
                    label="Restrict to event",
                    scale=3,
                    elem_id="kqa-event",
                )
                year_filter = gr.Dropdown(
                    [ANY_YEAR], value=ANY_YEAR, label="Restrict to year", scale=1, elem_id="kqa-year"
                )
                new_chat = gr.Button("New conversation", scale=1, size="sm", elem_id="kqa-new")
            chatbot = gr.Chatbot(
                label="Conversation",
                elem_id="kqa-chat",
                height=640,
                examples=[{"text": q, "display_text": q} for q in EXAMPLE_QUESTIONS],
                placeholder="**Ask about KubeCon recaps.** Try one of these:",
                latex_delimiters=[],
                sanitize_html=True,
                allow_tags=False,
                feedback_options=("Like", "Dislike", *REASONS),
                editable="user",
                buttons=["copy"],
            )
            with gr.Row(equal_height=True):
                question = gr.Textbox(
                    placeholder="Ask a question, or a follow-up about the last answer…",
                    show_label=False,
                    scale=8,
                    lines=1,
                    max_lines=4,
                    elem_id="kqa-question",
                )
                ask = gr.Button("Ask", variant="primary", scale=1, elem_id="kqa-ask")
                stop_button = gr.Button("Stop", variant="stop", scale=1, visible=False, elem_id="kqa-stop")
            with gr.Row(equal_height=True):
                comment = gr.Textbox(
                    label="Comment (optional): sent with your rating (the thumbs or the flag's reasons under an answer)",
                    placeholder="What was wrong or missing?",
                    scale=6,
                    elem_id="kqa-comment",
                )
                feedback_note = gr.Markdown(elem_id="kqa-feedback-note")
            with gr.Row(visible=False):  # the /feedback API endpoint (gradio_client); no control of its own
                api_rating = gr.Textbox(label="rating")
                api_reasons = gr.Textbox(label="reasons")
                api_rate = gr.Button("rate")
            with gr.Accordion("Answer details (JSON)", open=False):
                answer_json = gr.JSON(elem_id="kqa-answer-json")
        with gr.Tab("Status", id="status"):
            status_view = gr.Markdown(elem_id="kqa-status")
            with gr.Row():
                refresh = gr.Button("Refresh", elem_id="kqa-refresh")
                reingest_button = gr.Button(
                    f"Re-run ingest of {settings.data_dir.name}/",
                    variant="secondary",
                    elem_id="kqa-reingest",
                    visible=not settings.answer_url,
                )
            if settings.answer_url:
                gr.Markdown(REMOTE_INGEST_NOTE, elem_id="kqa-remote-note")
            ingest_log = gr.Textbox(
                label="Ingest progress", lines=10, interactive=False, elem_id="kqa-ingest-log"
            )
    return _Page(
        status_line=status_line, turns=turns, event_filter=event_filter, year_filter=year_filter,
        new_chat=new_chat, chatbot=chatbot, question=question, ask=ask, stop_button=stop_button,
        comment=comment, feedback_note=feedback_note, api_rating=api_rating, api_reasons=api_reasons,
        api_rate=api_rate, answer_json=answer_json, status_view=status_view, refresh=refresh,
        reingest_button=reingest_button, ingest_log=ingest_log,
    )


def _wire(demo: gr.Blocks, page: _Page, handlers: PageHandlers) -> None:
    """Connect the components' events to ``handlers`` (inside the current ``gr.Blocks``)."""
    status_outputs = [page.status_line, page.status_view, page.event_filter, page.year_filter]
    chat_inputs = [page.question, page.chatbot, page.turns, page.event_filter, page.year_filter]
    chat_outputs = [page.question, page.chatbot, page.turns, page.answer_json]

    demo.load(handlers.refresh_status, None, status_outputs, api_visibility="private", queue=False)
    page.refresh.click(handlers.refresh_status, [page.event_filter, page.year_filter], status_outputs, api_visibility="private")

    # Every way of starting an answer shows Stop instead of Ask while it runs; Stop cancels them all.
    # A page.chatbot event's data (which message) reaches only the first step, so that step keeps it.
    clicked = gr.State(None)
    busy_step = (busy, None, [clicked, page.ask, page.stop_button])
    idle_step = (idle, None, [page.ask, page.stop_button])
    quiet = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
    answering = {"show_progress": "hidden"}
    private = {"api_visibility": "private", **answering}
    starts = [
        page.question.submit(*busy_step, **quiet).then(handlers.chat, chat_inputs, chat_outputs, api_name="chat", **answering),
        page.ask.click(*busy_step, **quiet).then(handlers.chat, chat_inputs, chat_outputs, **private),
        page.chatbot.example_select(*busy_step, **quiet).then(handlers.chat_example, [clicked, *chat_inputs[1:]], chat_outputs,
                                                    **private),
        page.chatbot.retry(*busy_step, **quiet).then(handlers.retry, [clicked, *chat_inputs[1:]], chat_outputs, **private),
        page.chatbot.edit(*busy_step, **quiet).then(handlers.edit, [clicked, *chat_inputs[1:]], chat_outputs, **private),
    ]  # fmt: skip
    for started in starts:
        started.then(*idle_step, **quiet)
    page.stop_button.click(handlers.stop, [page.chatbot, page.turns], [page.chatbot, page.turns, page.ask, page.stop_button], cancels=starts,
                      api_visibility="private", show_progress="hidden")  # fmt: skip
    page.chatbot.undo(handlers.undo, [page.chatbot, page.turns], chat_outputs, **quiet)
    page.new_chat.click(lambda: ("", [], [], None, ""), None, [*chat_outputs, page.feedback_note], **quiet)
    # the page.chatbot's own trash button clears the page; the conversation state must follow it
    page.chatbot.clear(lambda: ([], None, ""), None, [page.turns, page.answer_json, page.feedback_note], **quiet)
    page.chatbot.like(handlers.rate_message, [page.chatbot, page.turns, page.comment], [page.feedback_note, page.comment], api_visibility="private")
    page.api_rate.click(handlers.rate_api, [page.api_rating, page.api_reasons, page.comment, page.turns], [page.feedback_note, page.comment],
                   api_name="feedback")  # fmt: skip
    page.reingest_button.click(
        handlers.reingest,
        [page.event_filter, page.year_filter],
        [page.ingest_log, *status_outputs],
        concurrency_limit=1,
        concurrency_id="ingest",
        api_visibility="private",  # the public API is asking and rating; re-ingest is an admin's button
    )


def _healthz() -> dict[str, str]:
    """For load balancers and probes: up, without sign-in (it says nothing about the index)."""
    return {"status": "ok"}


def launch(demo: gr.Blocks, host: str, port: int, access: Access | None = None, **kwargs: Any):
    """Serve the page with ``access``'s sign-in, request limits and no upload route; errors inside
    handlers never reach the browser as tracebacks (show_error=False)."""
    from gradio.routes import App

    app = App()
    app.add_middleware(RequestLimits, max_body=MAX_BODY_BYTES)
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    return demo.launch(
        server_name=host,
        server_port=port,
        show_error=False,
        _app=app,
        max_file_size=MAX_BODY_BYTES,
        **(access.launch_kwargs() if access else {}),
        css=CSS,
        theme=gr.themes.Soft(),
        footer_links=["api"],
        **kwargs,
    )

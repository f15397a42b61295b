"""The Gradio page: chat with streaming answers and sources, filters, feedback, status and re-ingest.

The chat is Gradio's own: a "thought" message shows the status with a spinner, sources are a collapsible
message, Stop cancels the answer (closing its generator, so the LLM stops), the chatbot's retry, undo and
edit rewind the conversation, and its feedback menu is the one rating control (👍, 👎, or a reason).

Concurrency: Gradio's queue answers at most ``settings.web_concurrency`` chat requests at once (default 4,
``KQA_WEB_CONCURRENCY``); up to ``QUEUE_SIZE`` more wait in line and the rest are told the server is busy.
Every session shares the process's one Assistant, so the embedding model and the LLM load once. The
re-ingest button runs one job at a time across all sessions.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import gradio as gr

from rag.errors import KQAError
from rag.http_guard import MAX_BODY_BYTES
from rag.settings import Settings
from webchat import render
from webchat.access import Access, RequestLimits
from webchat.chat import ALL_EVENTS, ANY_YEAR, REASONS, ChatService, turn_index_for_message
from webchat.ingest_job import run_ingest_job

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
SAME_RATING_S = 5.0
STOP_WAIT_S = 30.0  # Stop waits at most this long for the cancelled answer to end (one token, normally)
REMOTE_INGEST_NOTE = (
    "Answers come from the answer service (KQA_ANSWER_URL); this page holds no index, so re-ingest on the "
    "service's host: `python -m ingest` against its store."
)
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


def _filter_choices(status: Any) -> tuple[list[str], list[str]]:
    events = [ALL_EVENTS] + [str(e) for e in (getattr(status, "events", None) or [])]
    years = [ANY_YEAR] + [str(y) for y in sorted(getattr(status, "years", None) or [], reverse=True)]
    return events, years


def build_demo(service: ChatService, settings: Settings, access: Access | None = None) -> gr.Blocks:
    """Lay out the page and wire its events. Call :func:`launch` to serve it.

    ``access`` (default: open, on loopback) decides who is admin and how often a client may ask and rate."""
    access = access or Access(settings, "127.0.0.1")

    def refresh_status(event: str | None = None, year: str | None = None, request: gr.Request = None):
        status, error = service.status()
        if status is None:
            message = render.render_error(error)
            return message, message, gr.update(), gr.update()
        events, years = _filter_choices(status)
        return (
            render.render_status_line(status),
            render.render_status(status, details=access.is_admin(request)),
            gr.update(choices=events, value=event if event in events else ALL_EVENTS),
            gr.update(choices=years, value=year if year in years else ANY_YEAR),
        )

    answering: dict[str, threading.Event] = {}  # session -> set once its answer's generator has ended

    def chat(message: str, history: list, turns: list, event: str, year: str, request: gr.Request):
        def admit() -> None:
            access.allow("ask", request)

        session, ended = getattr(request, "session_hash", None) or "", threading.Event()
        answering[session] = ended
        try:
            for new_history, new_turns, answer in service.respond(message, history, turns, event, year, admit):
                yield "", new_history, new_turns, answer if answer is not None else gr.skip()
        finally:  # also when Stop closes this generator
            ended.set()
            if answering.get(session) is ended:
                del answering[session]

    def chat_example(selection: dict, history: list, turns: list, event: str, year: str, request: gr.Request):
        yield from chat(_text(selection.get("value")), history, turns, event, year, request)

    def retry(retried: dict, history: list, turns: list, event: str, year: str, request: gr.Request):
        """The chatbot's retry: the same question again, in place of its answer."""
        try:
            history, turns, question = service.rewind(history, turns, _index(retried.get("index")))
        except KQAError as exc:
            gr.Warning(str(exc))
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield from chat(question or render.unescape_user(_text(retried.get("value"))), history, turns, event,
                        year, request)  # fmt: skip

    def undo(undone: gr.UndoData, history: list, turns: list):
        """The chatbot's undo: the last question and its answer go; the question returns to the box."""
        try:
            history, turns, question = service.rewind(history, turns, _index(undone.index))
        except KQAError as exc:
            gr.Warning(str(exc))
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return question, history, turns, None

    def edit(edited: dict, history: list, turns: list, event: str, year: str, request: gr.Request):
        """The chatbot's edit of a question: the conversation from there is asked again with the new text."""
        try:
            history, turns, _ = service.rewind(history, turns, _index(edited.get("index")))
        except KQAError as exc:
            gr.Warning(str(exc))
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield from chat(render.unescape_user(_text(edited.get("value"))), history, turns, event, year, request)

    def stop(history: list, turns: list, request: gr.Request):
        """Stop: once the cancelled answer's generator has ended (so none of its updates can follow this
        one on the queue's stream), the unfinished turn is closed as stopped."""
        ended = answering.get(getattr(request, "session_hash", None) or "")
        if ended is not None:
            ended.wait(STOP_WAIT_S)
        history, turns = service.stopped(history, turns)
        return history, turns, gr.update(visible=True), gr.update(visible=False)

    def rate(turns: list, index: int | None, rating: str, reasons: list[str], comment: str, request):
        try:
            access.allow("rate", request)
            answered = [i for i, turn in enumerate(turns or []) if turn.get("answer")]
            if index is None:
                if not answered:
                    raise KQAError("Ask a question first; there is no answer to rate yet.")
                index = answered[-1]
            return service.record_feedback(turns, index, rating, comment, reasons), ""
        except KQAError as exc:
            return f"⚠️ {render.escape_text(str(exc))}", gr.skip()

    recent: dict[str, float] = {}  # session + answer + rating -> when it was recorded
    recent_lock = threading.Lock()

    def rate_message(like: gr.LikeData, history: list, turns: list, comment: str, request: gr.Request):
        """The chatbot's feedback menu on an answer: 👍, 👎, or one of :data:`REASONS` (a 👎 with why).

        Gradio's menu sends a reason twice per click, at the same moment: the same rating of the same
        answer from the same session within :data:`SAME_RATING_S` seconds is recorded once."""
        if like.liked is None or like.liked == "":
            return gr.skip(), gr.skip()  # a rating taken back
        if like.liked is True or like.liked == "Like":
            rating, reasons = "up", []
        elif like.liked is False or like.liked == "Dislike":
            rating, reasons = "down", []
        elif like.liked in REASONS:
            rating, reasons = "down", [REASONS[like.liked]]
        else:
            return f"⚠️ Unknown rating {render.escape_text(str(like.liked))}.", gr.skip()
        turn_index = turn_index_for_message(history or [], _index(like.index))
        answer = (turns or [])[turn_index].get("answer") if turn_index < len(turns or []) else None
        key = json.dumps([getattr(request, "session_hash", None), turn_index, (answer or {}).get("text"),
                          rating, reasons])  # fmt: skip
        now = time.monotonic()
        with recent_lock:
            for old in [k for k, at in recent.items() if now - at > SAME_RATING_S]:
                del recent[old]
            if key in recent:
                return gr.skip(), gr.skip()
            recent[key] = now
        return rate(turns, turn_index, rating, reasons, comment, request)

    def rate_api(rating: str, reasons: str, comment: str, turns: list, request: gr.Request):
        """``/feedback`` for API clients: rate this session's last answer ("up"/"down", reason codes
        separated by commas, a comment)."""
        if rating not in ("up", "down"):
            return "⚠️ rating must be 'up' or 'down'.", gr.skip()
        codes = [code.strip() for code in (reasons or "").split(",") if code.strip()]
        return rate(turns, None, rating, codes, comment, request)

    def reingest(event: str, year: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        lines: list[str] = []
        if settings.answer_url:  # the button is hidden then; a direct API call gets the same note
            yield REMOTE_INGEST_NOTE, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if not access.is_admin(request):
            yield (
                "Only an admin can re-run the ingest (sign in as one, or run `python -m ingest` on the server).",
                gr.skip(), gr.skip(), gr.skip(), gr.skip(),
            )  # fmt: skip
            return
        try:
            for line, fraction, _summary in run_ingest_job(settings, [settings.data_dir]):
                lines.append(line)
                if fraction is not None:
                    progress(fraction, desc=line)
                yield "\n".join(lines[-200:]), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        except KQAError as exc:
            lines.append(f"FAILED: {exc}")
            yield "\n".join(lines[-200:]), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield ("\n".join(lines[-200:]), *refresh_status(event, year))

    with gr.Blocks(title="KubeCon Recap QA", analytics_enabled=False) as demo:
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

        status_outputs = [status_line, status_view, event_filter, year_filter]
        chat_inputs = [question, chatbot, turns, event_filter, year_filter]
        chat_outputs = [question, chatbot, turns, answer_json]

        demo.load(refresh_status, None, status_outputs, api_visibility="private", queue=False)
        refresh.click(refresh_status, [event_filter, year_filter], status_outputs, api_visibility="private")

        # Every way of starting an answer shows Stop instead of Ask while it runs; Stop cancels them all.
        # A chatbot event's data (which message) reaches only the first step, so that step keeps it.
        clicked = gr.State(None)
        busy = (_busy, None, [clicked, ask, stop_button])
        idle = (lambda: (gr.update(visible=True), gr.update(visible=False)), None, [ask, stop_button])
        quiet = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
        answering = {"show_progress": "hidden"}
        private = {"api_visibility": "private", **answering}
        starts = [
            question.submit(*busy, **quiet).then(chat, chat_inputs, chat_outputs, api_name="chat", **answering),
            ask.click(*busy, **quiet).then(chat, chat_inputs, chat_outputs, **private),
            chatbot.example_select(*busy, **quiet).then(chat_example, [clicked, *chat_inputs[1:]], chat_outputs,
                                                        **private),
            chatbot.retry(*busy, **quiet).then(retry, [clicked, *chat_inputs[1:]], chat_outputs, **private),
            chatbot.edit(*busy, **quiet).then(edit, [clicked, *chat_inputs[1:]], chat_outputs, **private),
        ]  # fmt: skip
        for started in starts:
            started.then(*idle, **quiet)
        stop_button.click(stop, [chatbot, turns], [chatbot, turns, ask, stop_button], cancels=starts,
                          api_visibility="private", show_progress="hidden")  # fmt: skip
        chatbot.undo(undo, [chatbot, turns], chat_outputs, **quiet)
        new_chat.click(lambda: ("", [], [], None, ""), None, [*chat_outputs, feedback_note], **quiet)
        # the chatbot's own trash button clears the page; the conversation state must follow it
        chatbot.clear(lambda: ([], None, ""), None, [turns, answer_json, feedback_note], **quiet)
        chatbot.like(rate_message, [chatbot, turns, comment], [feedback_note, comment], api_visibility="private")
        api_rate.click(rate_api, [api_rating, api_reasons, comment, turns], [feedback_note, comment],
                       api_name="feedback")  # fmt: skip
        reingest_button.click(
            reingest,
            [event_filter, year_filter],
            [ingest_log, *status_outputs],
            concurrency_limit=1,
            concurrency_id="ingest",
            api_visibility="private",  # the public API is asking and rating; re-ingest is an admin's button
        )
    demo.queue(default_concurrency_limit=settings.web_concurrency, max_size=QUEUE_SIZE)
    return demo


def _busy(clicked: gr.EventData):
    """First step of every answer: keep the event's data (retry/edit/example), show Stop instead of Ask."""
    data = getattr(clicked, "_data", None)
    return (data if isinstance(data, dict) else None), gr.update(visible=False), gr.update(visible=True)


def _index(index: Any) -> int:
    """A chatbot event's message index (Gradio gives an int, or a tuple for a message part)."""
    return int(index[0] if isinstance(index, list | tuple) else index)


def _text(value: Any) -> str:
    """A chatbot event's message value as text (a string, a text part, or a list of parts)."""
    if isinstance(value, dict):
        return str(value.get("text", value.get("content", "")))
    if isinstance(value, list):
        return "\n".join(_text(part) for part in value)
    return "" if value is None else str(value)


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

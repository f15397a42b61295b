"""The Gradio page: chat with streaming answers and sources, filters, feedback, status and re-ingest.

Concurrency: Gradio's queue answers at most ``settings.web_concurrency`` chat requests at once (default 4,
``KQA_WEB_CONCURRENCY``); up to ``QUEUE_SIZE`` more wait in line and the rest are told the server is busy.
Every session shares the process's one Assistant, so the embedding model and the LLM load once. The
re-ingest button runs one job at a time across all sessions.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from rag.errors import KQAError
from rag.settings import Settings
from webchat import render
from webchat.access import MAX_BODY_BYTES, Access, RequestLimits
from webchat.chat import ALL_EVENTS, ANY_YEAR, ChatService, turn_index_for_message
from webchat.ingest_job import run_ingest_job

log = logging.getLogger(__name__)

QUEUE_SIZE = 100
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

    def chat(message: str, history: list, turns: list, event: str, year: str, request: gr.Request):
        def admit() -> None:
            access.allow("ask", request)

        for new_history, new_turns, answer in service.respond(message, history, turns, event, year, admit):
            yield "", new_history, new_turns, answer if answer is not None else gr.skip()

    def chat_example(
        selection: gr.SelectData, history: list, turns: list, event: str, year: str, request: gr.Request
    ):
        question = (
            selection.value.get("text", "") if isinstance(selection.value, dict) else str(selection.value)
        )
        yield from chat(question, history, turns, event, year, request)

    def rate_last(rating: str, turns: list, comment: str, request: gr.Request):
        answered = [i for i, turn in enumerate(turns or []) if turn.get("answer")]
        try:
            access.allow("rate", request)
            if not answered:
                raise KQAError("Ask a question first; there is no answer to rate yet.")
            return service.record_feedback(turns, answered[-1], rating, comment), ""
        except KQAError as exc:
            return f"⚠️ {render.escape_text(str(exc))}", gr.skip()

    def rate_up(turns: list, comment: str, request: gr.Request):
        return rate_last("up", turns, comment, request)

    def rate_down(turns: list, comment: str, request: gr.Request):
        return rate_last("down", turns, comment, request)

    def rate_message(like: gr.LikeData, history: list, turns: list, comment: str, request: gr.Request):
        index = like.index[0] if isinstance(like.index, list | tuple) else like.index
        rating = "up" if like.liked is True or like.liked == "Like" else "down"
        try:
            access.allow("rate", request)
            turn_index = turn_index_for_message(history or [], int(index))
            return service.record_feedback(turns, turn_index, rating, comment), ""
        except KQAError as exc:
            return f"⚠️ {render.escape_text(str(exc))}", gr.skip()

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
                    feedback_options=("Like", "Dislike"),
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
                with gr.Accordion("Rate the last answer", open=True):
                    with gr.Row(equal_height=True):
                        comment = gr.Textbox(
                            label="Comment (optional)",
                            placeholder="What was wrong or missing?",
                            scale=6,
                            elem_id="kqa-comment",
                        )
                        thumbs_up = gr.Button("👍 Helpful", scale=1, elem_id="kqa-up")
                        thumbs_down = gr.Button("👎 Not helpful", scale=1, elem_id="kqa-down")
                    feedback_note = gr.Markdown(elem_id="kqa-feedback-note")
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
        question.submit(chat, chat_inputs, chat_outputs, api_name="chat", show_progress="hidden")
        ask.click(chat, chat_inputs, chat_outputs, api_visibility="private", show_progress="hidden")
        chatbot.example_select(
            chat_example, chat_inputs[1:], chat_outputs, api_visibility="private", show_progress="hidden"
        )
        new_chat.click(lambda: ("", [], [], None, ""), None, [*chat_outputs, feedback_note], queue=False,
                       api_visibility="private")  # fmt: skip
        thumbs_up.click(rate_up, [turns, comment], [feedback_note, comment], api_name="feedback_up")
        thumbs_down.click(rate_down, [turns, comment], [feedback_note, comment], api_name="feedback_down")
        # the chatbot's own trash button clears the page; the conversation state must follow it
        chatbot.clear(
            lambda: ([], None, ""), None, [turns, answer_json, feedback_note], api_visibility="private"
        )
        chatbot.like(
            rate_message, [chatbot, turns, comment], [feedback_note, comment], api_visibility="private"
        )
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

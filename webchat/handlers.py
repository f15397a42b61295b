"""What the page's events do: ask (and retry, edit, undo, stop), rate, refresh the status, re-ingest.

:class:`PageHandlers` holds one page's state shared by all sessions (which answers are running, recent
ratings); :func:`webchat.ui.build_demo` lays out the components and wires them to its methods. Gradio
reads each handler's signature (``gr.Request``, ``gr.LikeData``, ``gr.Progress``...) as it would a
function's, so the methods take exactly the arguments the events send.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import gradio as gr

from rag.errors import KQAError
from rag.settings import Settings
from webchat import render
from webchat.access import Access
from webchat.chat import ALL_EVENTS, ANY_YEAR, REASONS, ChatService, turn_index_for_message
from webchat.ingest_job import run_ingest_job

SAME_RATING_S = 5.0
STOP_WAIT_S = 30.0  # Stop waits at most this long for the cancelled answer to end (one token, normally)
REMOTE_INGEST_NOTE = (
    "Answers come from the answer service (KQA_ANSWER_URL); this page holds no index, so re-ingest on the "
    "service's host: `python -m ingest` against its store."
)


class PageHandlers:
    """The event handlers of one page over ``service`` (see the module doc)."""

    def __init__(self, service: ChatService, settings: Settings, access: Access):
        self.service, self.settings, self.access = service, settings, access
        self.answering: dict[str, threading.Event] = {}  # session -> set once its answer's generator has ended
        self.recent: dict[str, float] = {}  # session + answer + rating -> when it was recorded
        self.recent_lock = threading.Lock()

    # --- status -----------------------------------------------------------------------------
    def refresh_status(self, event: str | None = None, year: str | None = None, request: gr.Request = None):
        status, error = self.service.status()
        if status is None:
            message = render.render_error(error)
            return message, message, gr.update(), gr.update()
        events, years = filter_choices(status)
        return (
            render.render_status_line(status),
            render.render_status(status, details=self.access.is_admin(request)),
            gr.update(choices=events, value=event if event in events else ALL_EVENTS),
            gr.update(choices=years, value=year if year in years else ANY_YEAR),
        )

    # --- asking -----------------------------------------------------------------------------
    def chat(self, message: str, history: list, turns: list, event: str, year: str, request: gr.Request):
        def admit() -> None:
            self.access.allow("ask", request)

        session, ended = getattr(request, "session_hash", None) or "", threading.Event()
        self.answering[session] = ended
        try:
            for new_history, new_turns, answer in self.service.respond(message, history, turns, event, year, admit):
                yield "", new_history, new_turns, answer if answer is not None else gr.skip()
        finally:  # also when Stop closes this generator
            ended.set()
            if self.answering.get(session) is ended:
                del self.answering[session]

    def chat_example(self, selection: dict, history: list, turns: list, event: str, year: str, request: gr.Request):
        yield from self.chat(message_text(selection.get("value")), history, turns, event, year, request)

    def _rewind(self, history: list, turns: list, index: Any) -> tuple[list, list, str | None] | None:
        """The conversation before message ``index`` (and that turn's question); None, with a warning on
        the page, when it cannot be rewound."""
        try:
            return self.service.rewind(history, turns, message_index(index))
        except KQAError as exc:
            gr.Warning(str(exc))
            return None

    def retry(self, retried: dict, history: list, turns: list, event: str, year: str, request: gr.Request):
        """The chatbot's retry: the same question again, in place of its answer."""
        rewound = self._rewind(history, turns, retried.get("index"))
        if rewound is None:
            yield _skip_chat()
            return
        history, turns, question = rewound
        yield from self.chat(question or render.unescape_user(message_text(retried.get("value"))), history, turns,
                             event, year, request)  # fmt: skip

    def undo(self, undone: gr.UndoData, history: list, turns: list):
        """The chatbot's undo: the last question and its answer go; the question returns to the box."""
        rewound = self._rewind(history, turns, undone.index)
        if rewound is None:
            return _skip_chat()
        history, turns, question = rewound
        return question, history, turns, None

    def edit(self, edited: dict, history: list, turns: list, event: str, year: str, request: gr.Request):
        """The chatbot's edit of a question: the conversation from there is asked again with the new text."""
        rewound = self._rewind(history, turns, edited.get("index"))
        if rewound is None:
            yield _skip_chat()
            return
        history, turns, _ = rewound
        yield from self.chat(render.unescape_user(message_text(edited.get("value"))), history, turns, event, year,
                             request)  # fmt: skip

    def stop(self, history: list, turns: list, request: gr.Request):
        """Stop: once the cancelled answer's generator has ended (so none of its updates can follow this
        one on the queue's stream), the unfinished turn is closed as stopped."""
        ended = self.answering.get(getattr(request, "session_hash", None) or "")
        if ended is not None:
            ended.wait(STOP_WAIT_S)
        history, turns = self.service.stopped(history, turns)
        return history, turns, gr.update(visible=True), gr.update(visible=False)

    # --- rating -----------------------------------------------------------------------------
    def rate(self, turns: list, index: int | None, rating: str, reasons: list[str], comment: str, request):
        try:
            self.access.allow("rate", request)
            answered = [i for i, turn in enumerate(turns or []) if turn.get("answer")]
            if index is None:
                if not answered:
                    raise KQAError("Ask a question first; there is no answer to rate yet.")
                index = answered[-1]
            return self.service.record_feedback(turns, index, rating, comment, reasons), ""
        except KQAError as exc:
            return f"⚠️ {render.escape_text(str(exc))}", gr.skip()

    def rate_message(self, like: gr.LikeData, history: list, turns: list, comment: str, request: gr.Request):
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
        turn_index = turn_index_for_message(history or [], message_index(like.index))
        answer = (turns or [])[turn_index].get("answer") if turn_index < len(turns or []) else None
        key = json.dumps([getattr(request, "session_hash", None), turn_index, (answer or {}).get("text"),
                          rating, reasons])  # fmt: skip
        if not self._first_rating(key):
            return gr.skip(), gr.skip()
        return self.rate(turns, turn_index, rating, reasons, comment, request)

    def _first_rating(self, key: str) -> bool:
        """Whether ``key`` was not rated within :data:`SAME_RATING_S` seconds (and note it now)."""
        now = time.monotonic()
        with self.recent_lock:
            for old in [k for k, at in self.recent.items() if now - at > SAME_RATING_S]:
                del self.recent[old]
            if key in self.recent:
                return False
            self.recent[key] = now
        return True

    def rate_api(self, rating: str, reasons: str, comment: str, turns: list, request: gr.Request):
        """``/feedback`` for API clients: rate this session's last answer ("up"/"down", reason codes
        separated by commas, a comment)."""
        if rating not in ("up", "down"):
            return "⚠️ rating must be 'up' or 'down'.", gr.skip()
        codes = [code.strip() for code in (reasons or "").split(",") if code.strip()]
        return self.rate(turns, None, rating, codes, comment, request)

    # --- re-ingest --------------------------------------------------------------------------
    def reingest(self, event: str, year: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        lines: list[str] = []
        if self.settings.answer_url:  # the button is hidden then; a direct API call gets the same note
            yield REMOTE_INGEST_NOTE, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if not self.access.is_admin(request):
            yield (
                "Only an admin can re-run the ingest (sign in as one, or run `python -m ingest` on the server).",
                gr.skip(), gr.skip(), gr.skip(), gr.skip(),
            )  # fmt: skip
            return
        try:
            for line, fraction, _summary in run_ingest_job(self.settings, [self.settings.data_dir]):
                lines.append(line)
                if fraction is not None:
                    progress(fraction, desc=line)
                yield "\n".join(lines[-200:]), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        except KQAError as exc:
            lines.append(f"FAILED: {exc}")
            yield "\n".join(lines[-200:]), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield ("\n".join(lines[-200:]), *self.refresh_status(event, year))


def filter_choices(status: Any) -> tuple[list[str], list[str]]:
    events = [ALL_EVENTS] + [str(e) for e in (getattr(status, "events", None) or [])]
    years = [ANY_YEAR] + [str(y) for y in sorted(getattr(status, "years", None) or [], reverse=True)]
    return events, years


def _skip_chat() -> tuple:
    """A chat event's outputs (question, chatbot, turns, answer JSON) all left as they are."""
    return gr.skip(), gr.skip(), gr.skip(), gr.skip()


def busy(clicked: gr.EventData):
    """First step of every answer: keep the event's data (retry/edit/example), show Stop instead of Ask."""
    data = getattr(clicked, "_data", None)
    return (data if isinstance(data, dict) else None), gr.update(visible=False), gr.update(visible=True)


def idle():
    """Last step of every answer: Ask again instead of Stop."""
    return gr.update(visible=True), gr.update(visible=False)


def message_index(index: Any) -> int:
    """A chatbot event's message index (Gradio gives an int, or a tuple for a message part)."""
    return int(index[0] if isinstance(index, list | tuple) else index)


def message_text(value: Any) -> str:
    """A chatbot event's message value as text (a string, a text part, or a list of parts)."""
    if isinstance(value, dict):
        return str(value.get("text", value.get("content", "")))
    if isinstance(value, list):
        return "\n".join(message_text(part) for part in value)
    return "" if value is None else str(value)

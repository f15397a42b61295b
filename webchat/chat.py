"""The web chat's conversation logic, kept apart from the Gradio layout so tests can drive it directly.

Per browser session we keep ``turns`` (a Gradio ``State``): the raw question, the filters and the finished
``Answer`` as a dict. The chatbot only holds *rendered* (escaped) Markdown, so follow-up history for the
Assistant and feedback records are built from ``turns``, never parsed back out of the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from rag.errors import KQAError
from rag.settings import Settings
from webchat import render
from webchat.feedback import Rating, append_feedback, build_record

log = logging.getLogger(__name__)

ALL_EVENTS = "All events"
ANY_YEAR = "Any year"
SEARCHING = "Searching the recaps…"

Turn = dict[str, Any]  # {"question", "filters", "answer" (dict) or None, "error"}
Message = dict[str, Any]


def parse_filters(event: str | None, year: str | int | None) -> dict[str, Any]:
    """Dropdown values -> keyword filters for ``Assistant.stream`` (``None`` = no restriction)."""
    chosen_event = event if event and event != ALL_EVENTS else None
    chosen_year: int | None = None
    if year not in (None, "", ANY_YEAR):
        try:
            chosen_year = int(year)
        except (TypeError, ValueError):
            raise KQAError(f"Year must be a number such as 2022, not {year!r}.") from None
    return {"event": chosen_event, "year": chosen_year}


def history_messages(turns: list[Turn]) -> list[dict[str, str]]:
    """OpenAI-style history for follow-ups: answered turns only (errors carry no conversation)."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        answer = turn.get("answer")
        if not answer:
            continue
        messages.append({"role": "user", "content": turn["question"]})
        messages.append({"role": "assistant", "content": answer.get("text", "")})
    return messages


class ChatService:
    """Answers chat messages with the process's one Assistant and records feedback."""

    def __init__(self, assistant: Any, settings: Settings):
        self.assistant = assistant
        self.settings = settings

    # --- answering --------------------------------------------------------------------------
    def respond(
        self,
        question: str,
        chat: list[Message] | None,
        turns: list[Turn] | None,
        event: str | None = None,
        year: str | int | None = None,
        admit: Callable[[], None] | None = None,
    ) -> Iterator[tuple[list[Message], list[Turn], dict[str, Any] | None]]:
        """Yield ``(chat, turns, answer_dict)`` as the answer streams; the last yield is final.

        ``admit()`` raises :class:`KQAError` to turn the question away (a rate limit); so does a
        conversation of ``settings.web_max_turns`` questions. The page keeps only the last
        ``2 * web_max_turns`` chat messages it is sent."""
        chat = list(chat or [])[-2 * self.settings.web_max_turns :]
        turns = list(turns or [])
        question = (question or "").strip()
        if not question:
            yield list(chat), list(turns), None
            return
        chat.append({"role": "user", "content": render.render_user(question)})
        chat.append({"role": "assistant", "content": render.render_partial("", SEARCHING)})
        yield list(chat), list(turns), None

        turn: Turn = {"question": question, "filters": {}, "answer": None, "error": ""}
        text, status = "", SEARCHING
        try:
            if admit is not None:
                admit()
            if len(turns) >= self.settings.web_max_turns:
                raise KQAError(
                    f"This conversation has {len(turns)} questions, the most one holds; "
                    "start a new conversation to ask more."
                )
            filters = parse_filters(event, year)
            turn["filters"] = filters
            answer = None
            for item in self.assistant.stream(question, history=history_messages(turns), **filters):
                if item.kind == "status":
                    status = item.text
                elif item.kind == "token":
                    text += item.text
                    status = ""
                elif item.kind == "answer":
                    answer = item.answer
                    continue
                chat[-1] = {"role": "assistant", "content": render.render_partial(text, status)}
                yield list(chat), list(turns), None
            if answer is None:
                raise KQAError("The assistant finished without an answer; please ask again.")
            answer = answer.for_readers(self.settings.data_dir.resolve())  # no server paths on the page
            answer_dict = asdict(answer)
            turn["answer"] = answer_dict
            chat[-1] = {"role": "assistant", "content": render.render_answer(answer)}
            turns.append(turn)
            yield list(chat), list(turns), answer_dict
        except KQAError as exc:
            turn["error"] = str(exc)
            turns.append(turn)
            chat[-1] = {"role": "assistant", "content": render.render_error(str(exc))}
            yield list(chat), list(turns), None
        except Exception as exc:  # noqa: BLE001 - the page must stay usable; details go to the log
            log.exception("unexpected error while answering %r", question)
            message = (
                f"An unexpected error occurred ({type(exc).__name__}). The details are in the server log; "
                "please try again."
            )
            turn["error"] = message
            turns.append(turn)
            chat[-1] = {"role": "assistant", "content": render.render_error(message)}
            yield list(chat), list(turns), None

    # --- feedback ---------------------------------------------------------------------------
    def record_feedback(self, turns: list[Turn] | None, turn_index: int, rating: Rating, comment: str) -> str:
        """Append one feedback line for ``turns[turn_index]``; returns a short confirmation."""
        turns = turns or []
        if not turns:
            raise KQAError("Ask a question first; there is no answer to rate yet.")
        if not -len(turns) <= turn_index < len(turns):
            raise KQAError("That answer is no longer in this conversation.")
        turn = turns[turn_index]
        if not turn.get("answer"):
            raise KQAError("That message was an error, not an answer; there is nothing to rate.")
        comment = comment or ""
        if len(comment) > self.settings.web_max_comment_chars:
            raise KQAError(
                f"The comment is {len(comment):,} characters long; the limit is "
                f"{self.settings.web_max_comment_chars:,}. Please shorten it."
            )
        position = turn_index % len(turns)
        record = build_record(
            rating=rating,
            comment=comment,
            answer=turn["answer"],
            history=history_messages(turns[:position]),
            filters=turn.get("filters", {}),
            settings=self.settings,
        )
        append_feedback(self.settings.feedback_file, record)
        return f"Thanks! Your {'👍' if rating == 'up' else '👎'} was saved to {self.settings.feedback_file.name}."

    # --- status -----------------------------------------------------------------------------
    def status(self) -> tuple[Any | None, str]:
        """``(IndexStatus or None, error message)``: the status view shows the error instead of failing."""
        try:
            return self.assistant.index_status(), ""
        except KQAError as exc:
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001
            log.exception("index_status failed")
            return None, f"Could not read the index status ({type(exc).__name__}); see the server log."


def turn_index_for_message(chat: list[Message], message_index: int) -> int:
    """Which turn a chatbot message belongs to: each turn adds one user and one assistant message."""
    assistants = sum(1 for m in chat[: message_index + 1] if m.get("role") == "assistant")
    return max(assistants - 1, 0)

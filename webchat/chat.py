"""The web chat's conversation logic, kept apart from the Gradio layout so tests can drive it directly.

Per browser session we keep ``turns`` (a Gradio ``State``): the raw question, the filters and the finished
``Answer`` as a dict. The chatbot only holds *rendered* (escaped) Markdown, so follow-up history for the
Assistant and feedback records are built from ``turns``, never parsed back out of the page.

One turn on the page is one user message and then assistant messages in Gradio's own idiom: a "thought"
(``metadata`` title and ``status`` pending -> done: the spinner while searching and writing), the answer
(with its posts' dates and the index's age), and a collapsible sources message. Every turn, answered,
failed or stopped, has exactly one user message and one entry in ``turns``, so a message index maps to its
turn by counting user messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict
from typing import Any

from rag.errors import KQAError
from rag.feedback import Rating, append_feedback, build_record
from rag.settings import Settings
from rag.surface import AssistantSurface
from webchat import render

log = logging.getLogger(__name__)

ALL_EVENTS = "All events"
ANY_YEAR = "Any year"
SEARCHING = "Searching the recaps…"
STOPPED = "Stopped before the answer was finished."
# The rating control's reasons (the chatbot's flag menu), and the codes feedback records carry.
REASONS = {
    "Wrong citation": "wrong_citation",
    "Incomplete": "incomplete",
    "Should have said I don't know": "should_abstain",
}

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

    def __init__(self, assistant: AssistantSurface, settings: Settings):
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
        ``web_max_turns`` turns it is sent. Closing this generator (the page's Stop) closes the
        Assistant's stream at once, so the LLM stops writing."""
        chat = trim_chat(chat, self.settings.web_max_turns)
        turns = list(turns or [])
        question = (question or "").strip()
        if not question:
            yield list(chat), list(turns), None
            return
        started = time.perf_counter()
        steps = [SEARCHING]
        chat.append({"role": "user", "content": render.render_user(question)})
        chat.append(render.thought(SEARCHING, steps, "pending"))
        yield list(chat), list(turns), None

        turn: Turn = {"question": question, "filters": {}, "answer": None, "error": ""}
        text = ""
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
            thought_at = len(chat) - 1
            with closing(self.assistant.stream(question, history=history_messages(turns), **filters)) as stream:
                for item in stream:
                    if item.kind == "status":
                        steps.append(item.text)
                        chat[thought_at] = render.thought(item.text, steps, "pending")
                    elif item.kind == "token":
                        text += item.text
                        if len(chat) == thought_at + 1:
                            chat.append({"role": "assistant", "content": ""})
                        chat[thought_at + 1] = {"role": "assistant", "content": render.render_partial(text)}
                    elif item.kind == "answer":
                        answer = item.answer
                        continue
                    yield list(chat), list(turns), None
            if answer is None:
                raise KQAError("The assistant finished without an answer; please ask again.")
            answer = answer.for_readers(self.settings.data_dir.resolve())  # no server paths on the page
            answer_dict = asdict(answer)
            turn["answer"] = answer_dict
            del chat[thought_at:]
            chat.extend(render.answer_messages(answer, steps, time.perf_counter() - started, self._index_age()))
            turns.append(turn)
            yield list(chat), list(turns), answer_dict
        except KQAError as exc:
            yield self._failed(chat, turns, turn, steps, str(exc), started)
        except Exception as exc:  # noqa: BLE001 - the page must stay usable; details go to the log
            log.exception("unexpected error while answering %r", question)
            message = (
                f"An unexpected error occurred ({type(exc).__name__}). The details are in the server log; "
                "please try again."
            )
            yield self._failed(chat, turns, turn, steps, message, started)

    @staticmethod
    def _failed(chat, turns, turn, steps, message, started):
        """The turn as an error message (kept in ``turns`` so every user message has its turn)."""
        turn["error"] = message
        turns.append(turn)
        at = last_user_index(chat) + 1
        chat[at:] = [
            render.thought("Could not answer", steps, "done", time.perf_counter() - started),
            {"role": "assistant", "content": render.render_error(message)},
        ]
        return list(chat), list(turns), None

    def _index_age(self) -> str | None:
        """When the index last changed (``IndexStatus.updated_at``); ``None`` when it cannot be read."""
        try:
            return getattr(self.assistant.index_status(), "updated_at", None)
        except Exception:  # noqa: BLE001 - freshness is a nicety; the answer stands without it
            return None

    def stopped(self, chat: list[Message] | None, turns: list[Turn] | None):
        """The page after Stop: the unfinished turn closed as stopped, its partial text kept and marked."""
        chat, turns = list(chat or []), list(turns or [])
        at = last_user_index(chat)
        if at < 0 or user_messages(chat) <= len(turns):
            return chat, turns  # nothing was in flight
        after = chat[at + 1 :]
        steps = [text_of(m) for m in after if (m.get("metadata") or {}).get("title")]
        partial = [text_of(m) for m in after if not (m.get("metadata") or {}).get("title")]
        chat[at + 1 :] = [
            {"role": "assistant", "content": "\n".join([*steps, "- Stopped."]).strip(),
             "metadata": {"title": "Stopped", "status": "done"}},
            {"role": "assistant", "content": "\n\n".join([*partial[-1:], render.render_notice(STOPPED)])},
        ]  # fmt: skip
        question = render.unescape_user(text_of(chat[at]))
        turns.append({"question": question, "filters": {}, "answer": None, "error": STOPPED})
        return chat, turns

    def rewind(self, chat: list[Message] | None, turns: list[Turn] | None, message_index: int):
        """The conversation before the turn holding ``message_index`` (retry, undo and edit start here),
        and that turn's question as asked."""
        chat, turns = list(chat or []), list(turns or [])
        turn_index = turn_index_for_message(chat, message_index)
        starts = [i for i, m in enumerate(chat) if m.get("role") == "user"]
        if not 0 <= message_index < len(chat) or turn_index >= len(starts):
            raise KQAError("That question is no longer in this conversation.")
        question = turns[turn_index]["question"] if turn_index < len(turns) else ""
        return chat[: starts[turn_index]], turns[:turn_index], question

    # --- feedback ---------------------------------------------------------------------------
    def record_feedback(
        self, turns: list[Turn] | None, turn_index: int, rating: Rating, comment: str, reasons: list[str] = ()
    ) -> str:
        """Append one feedback line for ``turns[turn_index]``; returns a short confirmation.

        ``reasons``: codes from :data:`REASONS` (what the user said was wrong)."""
        unknown = [r for r in reasons if r not in REASONS.values()]
        if unknown:
            raise KQAError(f"Unknown rating reason {unknown[0]!r}; use one of {', '.join(REASONS.values())}.")
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
            reasons=list(reasons),
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
    """Which turn a chatbot message belongs to: each turn starts with its one user message."""
    users = sum(1 for m in chat[: message_index + 1] if m.get("role") == "user")
    return max(users - 1, 0)


def text_of(message: Message) -> str:
    """A message's text, whether the page sent it as a string or as Gradio's list of parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def user_messages(chat: list[Message]) -> int:
    return sum(1 for m in chat if m.get("role") == "user")


def last_user_index(chat: list[Message]) -> int:
    return max((i for i, m in enumerate(chat) if m.get("role") == "user"), default=-1)


def trim_chat(chat: list[Message] | None, max_turns: int) -> list[Message]:
    """At most the last ``max_turns`` turns of what the page sent (a client may send anything)."""
    chat = list(chat or [])
    starts = [i for i, m in enumerate(chat) if m.get("role") == "user"]
    return chat[starts[-max_turns]:] if len(starts) > max_turns else chat[-4 * max_turns :]

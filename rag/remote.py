"""One answer service for every front end: ``RemoteAssistant`` asks ``python app.py api`` over HTTP.

With ``KQA_ANSWER_URL`` set, the web chat and the Slack bot answer through the API service instead of
loading the index, the embedding model and the LLM themselves, so one process per host holds them.
:func:`answer_service` picks the local :class:`~rag.assistant.Assistant` or the remote one; both have the
``ask`` / ``stream`` / ``index_status`` surface the front ends use. The wire format is the library's own:
``Answer.to_dict()`` from ``/v1/ask``, ``StreamEvent.to_dict()`` per server-sent event of
``/v1/ask/stream``, ``IndexStatus.to_dict()`` from ``/v1/status``.

Closing a :meth:`RemoteAssistant.stream` generator early closes its HTTP response, and the service then
stops generating (the server closes ``Assistant.stream`` when its client goes away).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from rag import errors
from rag.answerer import Answerer
from rag.errors import KQAError
from rag.redaction import safe_url
from rag.settings import Settings, get_settings
from rag.types import Answer, IndexStatus, StreamEvent

# The errors a service may name in its JSON error body ("code"), rebuilt as the same class here so a front
# end handles a remote empty index exactly like a local one. Anything else becomes AnswerServiceError.
_REMOTE_ERRORS = {
    cls.__name__: cls
    for cls in (
        errors.InvalidQuestionError, errors.EmptyIndexError, errors.StoreUnavailableError,
        errors.StoreLockedError, errors.LLMUnavailableError, errors.MissingModelError,
    )
}  # fmt: skip


class AnswerServiceError(KQAError):
    """The answer service at ``KQA_ANSWER_URL`` is down, refused the key, or answered something unusable."""


class AnswerServiceAuthError(AnswerServiceError):
    """The answer service rejected ``KQA_ANSWER_API_KEY`` (HTTP 401)."""


class RemoteAssistant(Answerer):
    """The :class:`~rag.assistant.Assistant` surface over the answer service's HTTP API. Thread-safe."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 300.0,
        settings: Settings | None = None,
    ):
        self.url = url.rstrip("/")
        self.settings = settings  # front ends read data_dir etc. from it; answers never need it
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # connect quickly (a down service should say so at once); read as long as an answer may take
        self._client = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteAssistant:
        if not settings.answer_url:
            raise AnswerServiceError("KQA_ANSWER_URL is not set: there is no answer service to ask.")
        key = settings.answer_api_key.get_secret_value() if settings.answer_api_key else None
        return cls(settings.answer_url, key, settings.answer_timeout_s, settings)

    def __repr__(self) -> str:
        return f"RemoteAssistant({safe_url(self.url)!r})"

    def close(self) -> None:
        self._client.close()

    # --- the Assistant surface ------------------------------------------------------------------
    def ask(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Answer:
        """``Assistant.ask`` through ``POST /v1/ask``."""
        body = _body(question, history, event, year)
        response = self._call(lambda: self._client.post("/v1/ask", json=body))
        return Answer.from_dict(_json(response, self.url))

    def stream(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Iterator[StreamEvent]:
        """``Assistant.stream`` through ``POST /v1/ask/stream`` (server-sent events)."""
        body = _body(question, history, event, year)
        try:
            with self._client.stream("POST", "/v1/ask/stream", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise _error(response, self.url)
                finished = False
                for data in _sse_data(response.iter_lines()):
                    item = _event(data, self.url)
                    finished = item.kind == "answer"
                    yield item
                if not finished:
                    raise AnswerServiceError(
                        f"The answer service at {safe_url(self.url)} ended the stream without an answer."
                    )
        except httpx.HTTPError as exc:
            raise _unreachable(exc, self.url) from None

    def index_status(self) -> IndexStatus:
        """``Assistant.index_status`` through ``GET /v1/status``."""
        data = _json(self._call(lambda: self._client.get("/v1/status")), self.url)
        known = IndexStatus.__dataclass_fields__
        return IndexStatus(**{k: v for k, v in data.items() if k in known})

    def _call(self, send) -> httpx.Response:
        try:
            response = send()
        except httpx.HTTPError as exc:
            raise _unreachable(exc, self.url) from None
        if response.status_code != 200:
            raise _error(response, self.url)
        return response


def answer_service(settings: Settings | None = None):
    """The front ends' answerer: a :class:`RemoteAssistant` when ``KQA_ANSWER_URL`` is set, else a local
    :class:`~rag.assistant.Assistant` (which loads the index and the LLM in this process)."""
    settings = settings or get_settings()
    if settings.answer_url:
        return RemoteAssistant.from_settings(settings)
    from rag.assistant import Assistant

    return Assistant(settings)


def _body(question, history, event, year) -> dict[str, Any]:
    return {"question": question, "history": list(history) if history is not None else None, "event": event,
            "year": year}  # fmt: skip


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The ``data:`` payload of each server-sent event (multi-line data joined, comments skipped)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


def _event(data: str, url: str) -> StreamEvent:
    """One ``data:`` payload as a StreamEvent; an ``{"error": ...}`` payload raises the error it names."""
    try:
        payload = json.loads(data)
        if "error" in payload:
            error = _from_error_body(payload, None, url)
        else:
            return StreamEvent.from_dict(payload)
    except (ValueError, KeyError, TypeError) as exc:
        raise AnswerServiceError(f"The answer service at {safe_url(url)} sent an event this client cannot read "
                                 f"({type(exc).__name__}).") from None  # fmt: skip
    raise error


def _json(response: httpx.Response, url: str) -> dict:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise AnswerServiceError(f"The answer service at {safe_url(url)} did not answer with a JSON object.")
    return data


def _unreachable(exc: httpx.HTTPError, url: str) -> AnswerServiceError:
    what = "timed out" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
    return AnswerServiceError(
        f"Cannot reach the answer service at {safe_url(url)} ({what}): start it with `python app.py api`, "
        "or fix KQA_ANSWER_URL."
    )


def _error(response: httpx.Response, url: str) -> KQAError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return _from_error_body(body, response.status_code, url)


def _from_error_body(body: Any, status: int | None, url: str) -> KQAError:
    """The service's ``{"error": {"message", "code"}}`` as the KQAError it stands for."""
    error = body.get("error") if isinstance(body, dict) else None
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    if status == 401:
        return AnswerServiceAuthError(
            f"The answer service at {safe_url(url)} rejected the API key: set KQA_ANSWER_API_KEY to one of its "
            "KQA_API_KEYS."
        )
    if code in _REMOTE_ERRORS and message:
        return _REMOTE_ERRORS[code](message)
    if message:
        return AnswerServiceError(message)
    return AnswerServiceError(f"The answer service at {safe_url(url)} answered HTTP {status}.")

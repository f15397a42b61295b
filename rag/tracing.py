"""One hook per pipeline stage, feeding every observer: OpenTelemetry spans and LangChain child runs.

``Assistant._run`` opens each stage with ``trace.stage(NAME)``; a :class:`Trace` hands the stage to its
observers, which turn it into what their world calls a step:

* :class:`OTelObserver`: a span per stage under one ``kqa.answer`` span, with timings and a few safe
  attributes (counts, kinds, backend; never secrets, and no question text unless
  ``KQA_TRACE_QUESTIONS=true``). Exported over OTLP/HTTP where ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) says, or into a tracer provider the application installed
  itself; otherwise there is no observer at all, so tracing off costs nothing. The ``opentelemetry``
  packages are optional (``pip install 'kubecon-qa[otel]'``).
* ``rag.lc.LangChainObserver``: the stage as a child run of the caller's LangChain run (tracers,
  LangSmith, ``astream_events``).

Spans are started with an explicit parent and never made "current": a stage may span several ``yield``s
of the streaming generator, which may be resumed on another thread, where attaching a context would fail.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

log = logging.getLogger(__name__)

# The one stage vocabulary, in pipeline order (README "Traces"; rag.lc uses the same names for child runs).
STAGES = ("understand", "retrieve", "pack", "generate", "verify")
ROOT = "kqa.answer"


class Observer(Protocol):
    """Something that sees stages start and end. ``start`` returns a handle given back to ``end``."""

    def start(self, stage: str, inputs: dict[str, Any]) -> Any: ...

    def end(self, handle: Any, stage: str, outputs: dict[str, Any], error: BaseException | None) -> None: ...

    def finish(self, outputs: dict[str, Any], error: BaseException | None) -> None: ...


class Stage:
    """What the pipeline tells observers about one stage while it runs (``outputs`` filled in by it)."""

    def __init__(self, name: str, handles: list[tuple[Observer, Any]]):
        self.name = name
        self.outputs: dict[str, Any] = {}
        self._handles = handles

    @property
    def callbacks(self):
        """LangChain callbacks for LLM calls made inside this stage (children of its run), or ``None``."""
        for observer, handle in self._handles:
            child = getattr(observer, "child_callbacks", None)
            if child is not None:
                return child(handle)
        return None


class Trace:
    """The stages of one question, seen by ``observers`` (none: every call is a cheap no-op)."""

    def __init__(self, observers: Sequence[Observer] = ()):
        self.observers = [o for o in observers if o is not None]
        self._finished = False

    @contextmanager
    def stage(self, name: str, **inputs: Any) -> Iterator[Stage]:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
        handles = [(o, o.start(name, inputs)) for o in self.observers]
        stage = Stage(name, handles)
        try:
            yield stage
        except BaseException as exc:  # GeneratorExit too: a closed stream ends its stage as cancelled
            for observer, handle in handles:
                _quietly(observer.end, handle, name, stage.outputs, exc)
            raise
        for observer, handle in handles:
            _quietly(observer.end, handle, name, stage.outputs, None)

    def finish(self, outputs: dict[str, Any] | None = None, error: BaseException | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        for observer in self.observers:
            _quietly(observer.finish, outputs or {}, error)


def _quietly(call, *args) -> None:
    """An observer that fails must not fail the answer."""
    try:
        call(*args)
    except Exception:  # pragma: no cover - defensive
        log.exception("trace observer failed")


# --------------------------------------------------------------------------------------------------------
# OpenTelemetry
# --------------------------------------------------------------------------------------------------------

SAFE_TYPES = (bool, int, float, str)
_PROVIDER_LOCK = threading.Lock()
_OWN_PROVIDERS: dict[str, Any] = {}
_OVERRIDE: list[Any] = []  # use_tracer_provider()


def use_tracer_provider(provider: Any | None) -> None:
    """Send spans to ``provider`` (an SDK ``TracerProvider``), or back to the default choice with ``None``."""
    _OVERRIDE[:] = [provider] if provider is not None else []


def _tracer():
    """The tracer spans go to, or ``None`` when nobody collects them (tracing off: no observer at all)."""
    if _OVERRIDE:
        return _OVERRIDE[0].get_tracer("kubecon-qa")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    try:
        from opentelemetry import trace
    except ImportError:
        if endpoint:
            _warn_once(f"{_MISSING} (opentelemetry-api is missing)")
        return None
    provider = trace.get_tracer_provider()
    if type(provider).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider"):
        return provider.get_tracer("kubecon-qa")  # the application installed its own SDK provider
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    with _PROVIDER_LOCK:
        own = _OWN_PROVIDERS.get(endpoint)
        if own is None:
            own = _otlp_provider()
            if own is None:
                return None
            _OWN_PROVIDERS[endpoint] = own
    return own.get_tracer("kubecon-qa")


def _otlp_provider():
    """An SDK provider exporting over OTLP/HTTP (endpoint, headers, timeout from the standard OTEL_* env)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        _warn_once(_MISSING)
        return None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "kubecon-qa"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


_MISSING = (
    "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-sdk / opentelemetry-exporter-otlp-proto-http are not "
    "installed, so no traces are sent: pip install 'kubecon-qa[otel]'"
)
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


def flush(timeout_millis: int = 5000) -> None:
    """Export pending spans now (a short-lived process calls this before it exits)."""
    for provider in [*_OVERRIDE, *_OWN_PROVIDERS.values()]:
        force = getattr(provider, "force_flush", None)
        if force is not None:
            force(timeout_millis)


class OTelObserver:
    """Spans per stage under one root span (see the module doc for what they carry)."""

    def __init__(self, tracer, root_attributes: dict[str, Any]):
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._root = tracer.start_span(ROOT, attributes=_safe("kqa", root_attributes))
        self._context = trace.set_span_in_context(self._root)
        self._started: dict[int, float] = {}

    @classmethod
    def maybe(cls, root_attributes: dict[str, Any]) -> OTelObserver | None:
        tracer = _tracer()
        return cls(tracer, root_attributes) if tracer is not None else None

    def start(self, stage: str, inputs: dict[str, Any]):
        span = self._tracer.start_span(f"kqa.{stage}", context=self._context)
        span.set_attributes(_safe(f"kqa.{stage}", inputs))
        self._started[id(span)] = time.perf_counter()
        return span

    def end(self, span, stage: str, outputs: dict[str, Any], error: BaseException | None) -> None:
        span.set_attributes(_safe(f"kqa.{stage}", outputs))
        span.set_attribute(f"kqa.{stage}.seconds", time.perf_counter() - self._started.pop(id(span), 0.0))
        _set_status(self._trace, span, error)
        span.end()

    def finish(self, outputs: dict[str, Any], error: BaseException | None) -> None:
        self._root.set_attributes(_safe("kqa", outputs))
        _set_status(self._trace, self._root, error)
        self._root.end()


def _set_status(trace, span, error: BaseException | None) -> None:
    if error is None:
        return
    if isinstance(error, GeneratorExit):  # the caller stopped reading: not a failure
        span.set_attribute("kqa.cancelled", True)
        return
    span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
    span.set_attribute("error.type", type(error).__name__)  # the type only: a message may quote a server


def _safe(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """Only plain scalars (and lists of them) become attributes; anything else is dropped, and so is a
    stage's ``result`` (the object LangChain runs show: texts of posts and answers)."""
    out = {}
    for key, value in values.items():
        if key == "result":
            continue
        if isinstance(value, SAFE_TYPES) or (
            isinstance(value, (list, tuple)) and all(isinstance(v, SAFE_TYPES) for v in value)
        ):
            out[f"{prefix}.{key}"] = list(value) if isinstance(value, tuple) else value
    return out

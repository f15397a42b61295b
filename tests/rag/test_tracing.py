"""OpenTelemetry spans per stage (rag/tracing.py): in memory, over real OTLP/HTTP, and without the packages."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from rag import tracing
from rag.assistant import Assistant

REPO_ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is SpinKube?"


@pytest.fixture
def spans():
    """Spans of the SDK's in-memory exporter, fed by a real SDK tracer provider."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    yield exporter
    tracing.use_tracer_provider(None)
    provider.shutdown()


def test_one_span_per_stage_under_one_root(assistant, spans):
    answer = assistant.ask(QUESTION)
    finished = spans.get_finished_spans()
    by_name = {s.name: s for s in finished}
    assert sorted(by_name) == sorted(["kqa.answer", *(f"kqa.{stage}" for stage in tracing.STAGES)])
    root = by_name["kqa.answer"]
    assert root.parent is None
    for stage in tracing.STAGES:
        span = by_name[f"kqa.{stage}"]
        assert span.parent.span_id == root.context.span_id
        assert span.context.trace_id == root.context.trace_id
        assert span.attributes[f"kqa.{stage}.seconds"] >= 0
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time
    assert by_name["kqa.understand"].attributes["kqa.understand.kind"] == "general"
    assert by_name["kqa.retrieve"].attributes["kqa.retrieve.chunks"] >= 1
    assert by_name["kqa.pack"].attributes["kqa.pack.passages"] >= 1
    assert by_name["kqa.verify"].attributes["kqa.verify.citations"] == len(answer.citations)
    assert root.attributes["kqa.backend"] == "extractive"
    assert root.attributes["kqa.abstained"] is False
    assert root.attributes["kqa.question_chars"] == len(QUESTION)
    # no question text, no answer or post text by default
    shown = " ".join(str(v) for s in finished for v in s.attributes.values())
    assert "SpinKube" not in shown


def test_the_question_is_traced_only_when_asked_for(settings_with, spans):
    Assistant(settings_with(trace_questions=True)).ask(QUESTION)
    [root] = [s for s in spans.get_finished_spans() if s.name == "kqa.answer"]
    assert root.attributes["kqa.question"] == QUESTION


def test_an_abstained_question_has_no_generate_span(assistant, spans):
    assert assistant.ask("What is the best pizza recipe?").abstained
    names = [s.name for s in spans.get_finished_spans()]
    assert "kqa.generate" not in names and names[-1] == "kqa.answer"
    [root] = [s for s in spans.get_finished_spans() if s.name == "kqa.answer"]
    assert root.attributes["kqa.abstained"] is True


def test_an_error_is_recorded_by_type_only(assistant, spans):
    from rag.errors import InvalidQuestionError

    with pytest.raises(InvalidQuestionError):
        assistant.ask(QUESTION, event="Narnia")
    by_name = {s.name: s for s in spans.get_finished_spans()}
    assert by_name["kqa.understand"].attributes["error.type"] == "InvalidQuestionError"
    assert by_name["kqa.answer"].status.status_code.name == "ERROR"
    assert "Narnia" not in str(by_name["kqa.answer"].status.description)


def test_a_closed_stream_ends_its_spans_as_cancelled(assistant, spans):
    stream = assistant.stream(QUESTION)
    next(stream)
    stream.close()  # before the pipeline ran: only the root, marked cancelled
    [root] = spans.get_finished_spans()
    assert root.attributes["kqa.cancelled"] is True


def test_tracing_is_off_without_an_endpoint(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.OTelObserver.maybe({}) is None  # no observer: nothing is built per question


class _Collector(http.server.BaseHTTPRequestHandler):
    """A real OTLP/HTTP receiver: keeps each POSTed protobuf export request."""

    bodies: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _run_script(script: str, tmp_path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO_ROOT,
        env={**os.environ, "KQA_HOME": str(tmp_path), "KQA_LLM_BACKEND": "extractive", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


INGEST_AND_ASK = """
    from pathlib import Path
    from ingest.pipeline import run_ingest
    from rag import Assistant, get_settings
    assert run_ingest(paths=[Path("tests/rag/fixtures/posts")], settings=get_settings()).exit_code == 0
    answer = Assistant().ask("What is SpinKube?")
    assert answer.citations, answer.text
    from rag import tracing
    tracing.flush()
    print("answered", answer.citations[0].source_id)
"""


@pytest.mark.timeout(600)
def test_spans_are_exported_over_otlp_http_where_the_endpoint_says(tmp_path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    _Collector.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        done = _run_script(
            INGEST_AND_ASK, tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "kqa-test"}
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "answered chicago-2023-wasm" in done.stdout
    names, services = [], set()
    for path, content_type, body in _Collector.bodies:
        assert path == "/v1/traces" and content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"}
            names += [span.name for scope in resource_spans.scope_spans for span in scope.spans]
    assert sorted(names) == sorted(["kqa.answer", *(f"kqa.{stage}" for stage in tracing.STAGES)])
    assert services == {"kqa-test"}


@pytest.mark.timeout(600)
def test_the_library_works_without_the_otel_extra(tmp_path):
    """chromadb brings opentelemetry-api and -sdk, but not the OTLP/HTTP exporter of the ``otel`` extra:
    without it, with an endpoint set, questions are answered and a warning says why no traces go out."""
    script = "import sys\nsys.modules['opentelemetry.exporter.otlp.proto.http'] = None\n" + textwrap.dedent(
        INGEST_AND_ASK
    )
    done = _run_script(script, tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "answered chicago-2023-wasm" in done.stdout
    assert "pip install 'kubecon-qa[otel]'" in done.stderr


def test_the_read_path_imports_without_opentelemetry(tmp_path):
    """Without opentelemetry at all, the library's own modules import and tracing stays off."""
    script = """
        import sys
        sys.modules["opentelemetry"] = None
        import rag.assistant, rag.lc
        from rag import tracing
        assert tracing.OTelObserver.maybe({}) is None
        with tracing.Trace([]).stage("retrieve") as stage:
            stage.outputs["chunks"] = 1
        print("ok")
    """
    done = _run_script(script, tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    assert "opentelemetry-api is missing" in done.stderr

"""The OpenAI-compatible backend against a real ``python -m llama_cpp.server`` on loopback, and its failures."""

from __future__ import annotations

import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import SecretStr

from rag.components.llm import OpenAICompatibleChatModel, get_chat_model
from rag.errors import LLMTimeoutError, LLMUnavailableError
from rag.settings import Settings

PASSAGE = (
    "[1] KubeCon Detroit recap (fictional test passage): The keynote announced that the conference "
    "badge printer is nicknamed Quillington, after the volunteer who repaired it."
)
GROUNDED = [
    SystemMessage("Answer the question using only the numbered passage. Cite it as [1]. Be brief."),
    HumanMessage(f"{PASSAGE}\n\nQuestion: What is the badge printer's nickname?"),
]
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
LONG_TASK = [HumanMessage("Count from 1 to 400, separated by commas. Output only the numbers.")]


def server_settings(base_url: str, tmp_path, **overrides) -> Settings:
    values = {
        "home": tmp_path,
        "llm_backend": "openai",
        "openai_base_url": base_url,
        "openai_model": DEFAULT_MODEL,
        "llm_max_tokens": 48,
        "llm_timeout_s": 120,
    } | overrides
    return Settings(**values)


# ---- a real llama.cpp server ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.server
@pytest.mark.timeout(300)
class TestAgainstLlamaCppServer:
    def test_streams_token_by_token(self, llama_server, tmp_path):
        model = get_chat_model(server_settings(llama_server, tmp_path))
        pieces = [chunk.content for chunk in model.stream(GROUNDED) if chunk.content]
        assert len(pieces) >= 3
        assert "Quillington" in "".join(pieces)

    def test_invoke_and_cache(self, llama_server, tmp_path):
        settings = server_settings(llama_server, tmp_path)
        model = get_chat_model(settings)
        assert get_chat_model(settings) is model
        reply = model.invoke(GROUNDED)
        assert "Quillington" in reply.content
        assert reply.response_metadata["finish_reason"] == "stop"

    def test_max_tokens_reaches_the_server(self, llama_server, tmp_path):
        """llama.cpp's server ignores ``max_completion_tokens``; without ``max_tokens`` it would count to 400."""
        model = get_chat_model(server_settings(llama_server, tmp_path, llm_max_tokens=16))
        reply = model.invoke(LONG_TASK)
        assert reply.response_metadata["finish_reason"] == "length"
        assert reply.usage_metadata["output_tokens"] <= 16

    # The timeout tests run last: the server keeps generating the abandoned answer for a while.
    def test_slow_stream_times_out_within_the_budget(self, llama_server, tmp_path):
        model = get_chat_model(server_settings(llama_server, tmp_path, llm_timeout_s=3, llm_max_tokens=300))
        received = []
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError, match="llm_timeout_s=3"):
            for chunk in model.stream(LONG_TASK):
                received.append(chunk.content)
        assert time.monotonic() - started < 3 + 0.5

    def test_slow_invoke_times_out_within_the_budget(self, llama_server, tmp_path):
        model = get_chat_model(server_settings(llama_server, tmp_path, llm_timeout_s=2, llm_max_tokens=300))
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError):
            model.invoke(LONG_TASK)
        assert time.monotonic() - started < 2 + 0.5


# ---- no server / a wedged server (fast) -------------------------------------------------------------------


def test_server_down_is_reported_at_load(unused_port, tmp_path):
    base_url = f"http://127.0.0.1:{unused_port}/v1"
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match="Cannot reach the OpenAI-compatible server") as info:
        get_chat_model(server_settings(base_url, tmp_path))
    assert base_url in str(info.value)
    assert time.monotonic() - started < 5


def test_server_going_down_after_load_is_reported_per_call(unused_port):
    base_url = f"http://127.0.0.1:{unused_port}/v1"
    model = OpenAICompatibleChatModel(
        base_url=base_url,
        model=DEFAULT_MODEL,
        api_key="sk-local",
        timeout=5,
        max_retries=1,
        total_timeout_s=5,
    )
    for call in (lambda: model.invoke(GROUNDED), lambda: list(model.stream(GROUNDED))):
        started = time.monotonic()
        with pytest.raises(LLMUnavailableError, match="Cannot reach"):
            call()
        assert time.monotonic() - started < 5


def test_wedged_server_is_bounded_by_the_timeout_not_by_retries(hung_server):
    # without the overall deadline, two attempts of 1.5 s each plus back-off would take > 3 s
    model = OpenAICompatibleChatModel(
        base_url=hung_server,
        model=DEFAULT_MODEL,
        api_key="sk-local",
        timeout=1.5,
        max_retries=1,
        total_timeout_s=1.5,
    )
    for call in (lambda: model.invoke(GROUNDED), lambda: list(model.stream(GROUNDED))):
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError, match="llm_timeout_s=1.5"):
            call()
        assert 1.4 < time.monotonic() - started < 2.0


def test_wedged_server_fails_the_load_check(hung_server, tmp_path):
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError):
        get_chat_model(server_settings(hung_server, tmp_path, llm_timeout_s=1))
    assert time.monotonic() - started < 2.5


# ---- no secret in any output --------------------------------------------------------------------------------

SECRET_KEY = "sk-test-7f3a9c-do-not-leak"


@pytest.fixture
def echoing_server():
    """A real HTTP server on loopback that answers every request 401 with the request's headers in
    its body, key included: the server that turns an error message into a leak."""
    import http.server
    import json
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def _echo(self) -> None:
            body = json.dumps({"error": {"message": f"bad key, you sent {dict(self.headers)}"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _echo

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_a_failing_server_leaks_neither_key_nor_credentials(echoing_server, settings_with, caplog):
    from rag.assistant import Assistant
    from rag.feedback import settings_snapshot
    from webchat.render import render_answer

    base_url = f"http://admin:hunter2@127.0.0.1:{echoing_server}/v1?token=abc"
    settings = settings_with(
        llm_backend="openai", openai_base_url=base_url, openai_api_key=SecretStr(SECRET_KEY), llm_retries=0
    )
    with caplog.at_level("DEBUG"):
        answer = Assistant(settings).ask("What is SpinKube?")
    assert answer.backend == "extractive"
    assert f"127.0.0.1:{echoing_server}/v1 answered HTTP 401 Unauthorized" in answer.fallback_reason
    shown = [
        answer.fallback_reason, answer.text, str(answer.to_dict()), render_answer(answer), caplog.text,
        str(settings_snapshot(settings)),  # what a feedback record stores
    ]  # fmt: skip
    for text in shown:
        assert SECRET_KEY not in text and "hunter2" not in text and "token=abc" not in text


def test_an_unreachable_server_is_named_without_its_credentials(unused_port, tmp_path):
    settings = server_settings(f"http://admin:hunter2@127.0.0.1:{unused_port}/v1", tmp_path, llm_retries=0)
    with pytest.raises(LLMUnavailableError) as caught:
        get_chat_model(settings)
    assert f"http://127.0.0.1:{unused_port}/v1 (Connection refused)" in str(caught.value)
    assert "hunter2" not in str(caught.value)

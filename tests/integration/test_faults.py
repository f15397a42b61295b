"""Faults a deployment meets, with real processes: an ingest killed mid-run, the Chroma server going away
and coming back, and an LLM server that is slow, failing or down."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from integration_harness import (
    REPO,
    ChatCompletionsServer,
    assert_same_records,
    clean_env,
    ingest_command,
    read_collection,
    run_ingest_cli,
    summary_of,
)

from ingest.pipeline import FAULT_ENV
from rag.errors import KQAError, StoreUnavailableError

pytestmark = pytest.mark.server

KILLED_RUN_POSTS = 30  # enough for two embedding groups, so the kill lands between writes of one run
DETROIT_QUESTION = "What were the three big takeaways from KubeCon Detroit 2022?"


def run_until_killed(command: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.Popen:
    """Run ``command`` with the ingest's fault point armed: it SIGKILLs itself right after its first group
    of posts is written (``KQA_FAULT_KILL_AT=group-written:1``), a known point, whatever the machine's load."""
    process = subprocess.run(
        command, cwd=REPO, env={**env, FAULT_ENV: "group-written:1"}, capture_output=True, text=True, timeout=timeout
    )
    assert process.returncode == -signal.SIGKILL, (
        f"the ingest was not killed mid-run (exit {process.returncode}); output:\n{process.stderr[-2000:]}"
    )
    return process


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_an_ingest_killed_with_sigkill_is_completed_exactly_by_the_next_run(
    corpus_settings, shared_corpus_dir, settings_factory, tmp_path
):
    from rag.components.store import get_collection

    posts = sorted(shared_corpus_dir.glob("*.md"))[:KILLED_RUN_POSTS]
    env = clean_env(KQA_HOME=str(tmp_path / "home"))

    run_until_killed(ingest_command(*posts), env)

    # The killed run left a partial store that still opens (dry run: reads it, writes nothing).
    partial = summary_of(run_ingest_cli(*posts, "--dry-run", env=env))
    assert partial["chunks_in_store"] > 0, partial
    assert partial["unchanged"] < KILLED_RUN_POSTS, "the run finished before it was killed"

    rerun = summary_of(run_ingest_cli(*posts, env=env))
    assert (rerun["exit_code"], rerun["ingested"], rerun["failures"]) == (0, KILLED_RUN_POSTS, [])
    assert rerun["unchanged"] == partial["unchanged"], "posts complete before the kill must not be rewritten"

    # No duplicate, missing or stale chunk: exactly the records a clean ingest writes for these posts.
    settings = settings_factory(tmp_path / "home")
    recovered = read_collection(get_collection(settings, create=False))
    clean = read_collection(get_collection(corpus_settings, create=False)).only_posts({p.stem for p in posts})
    assert_same_records(recovered, clean)


@pytest.mark.timeout(600)
def test_chroma_server_going_away_is_a_clear_error_and_answers_resume_when_it_returns(
    restartable_chroma, seed_data_dir, settings_factory, tmp_path
):
    from ingest.pipeline import run_ingest
    from rag.assistant import Assistant

    server = restartable_chroma.start()
    settings = settings_factory(tmp_path / "home", chroma_url=server.url, llm_backend="extractive")
    assert run_ingest(paths=[seed_data_dir], settings=settings).exit_code == 0
    qa = Assistant(settings)
    before = qa.ask(DETROIT_QUESTION)
    assert before.citations and not before.abstained

    server.stop()
    for call in (lambda: qa.ask(DETROIT_QUESTION), qa.index_status):
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert time.monotonic() - started < 30, "a server that is gone must fail fast, not hang"
        message = str(info.value)
        assert server.url in message and "Traceback" not in message, message
    # The ingest CLI says the same, as one line, not a stack trace.
    cli = run_ingest_cli(seed_data_dir, env=clean_env(KQA_HOME=str(tmp_path / "cli"), KQA_CHROMA_URL=server.url))
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert cli.stderr.startswith("error: ") and server.url in cli.stderr, cli.stderr

    server.start()  # same port, same data directory
    after = qa.ask(DETROIT_QUESTION)  # the same Assistant: it reconnects by itself
    assert after.text == before.text
    assert [c.quote for c in after.citations] == [c.quote for c in before.citations]
    assert qa.index_status().posts == 2


@pytest.fixture
def chat_server():
    server = ChatCompletionsServer().start()
    yield server
    server.stop()


@pytest.mark.timeout(600)
def test_a_slow_failing_or_absent_llm_server_falls_back_within_the_timeout(chat_server, seed_settings):
    from rag.assistant import Assistant

    timeout_s = 3.0
    settings = seed_settings.model_copy(update={
        "llm_backend": "openai", "openai_base_url": chat_server.base_url, "openai_model": chat_server.model,
        "llm_timeout_s": timeout_s, "llm_retries": 2,
    })  # fmt: skip
    qa = Assistant(settings)

    def ask():
        events = list(qa.stream(DETROIT_QUESTION))
        answer = events[-1].answer
        assert not answer.abstained and answer.citations, answer.text
        return answer, [e.text for e in events if e.kind == "status"]

    # Healthy: the server's answer, streamed, verified and cited.
    answer, _ = ask()
    assert (answer.backend, answer.fallback_reason) == ("openai", "")
    assert "unavailable" not in answer.text
    request = chat_server.requests[-1]
    assert request["model"] == chat_server.model and request["stream"] is True
    assert request["max_tokens"] == settings.llm_max_tokens

    # Failing (HTTP 503): retried llm_retries times inside the same budget, then the fallback.
    chat_server.mode = "error"
    sent = len(chat_server.requests)
    answer, _ = ask()
    assert answer.timings["generate"] < timeout_s + 2.0, answer.timings
    assert answer.backend == "extractive" and "503" in answer.fallback_reason
    time.sleep(1.0)  # a retry still in its back-off would arrive now
    assert len(chat_server.requests) - sent == settings.llm_retries + 1

    # Slow: the wait is bounded by llm_timeout_s, then the extractive answer says why it was used. (After the
    # failing case: the abandoned slow request's own retries would otherwise be counted there.)
    chat_server.mode, chat_server.delay_s = "slow", 60
    answer, statuses = ask()
    assert answer.timings["generate"] < timeout_s + 2.0, answer.timings
    assert answer.backend == "extractive" and f"llm_timeout_s={timeout_s:g}" in answer.fallback_reason
    assert "openai language model was unavailable" in answer.text
    assert any("unavailable" in s for s in statuses)

    # Down (connection refused): fails fast, falls back.
    chat_server.stop()
    answer, _ = ask()
    assert answer.timings["generate"] < timeout_s + 2.0, answer.timings
    assert answer.backend == "extractive" and "Cannot reach" in answer.fallback_reason

    # Back on the same port: answers come from the LLM again, with no restart of the library.
    chat_server.mode = "answer"
    chat_server.start()
    answer, _ = ask()
    assert (answer.backend, answer.fallback_reason) == ("openai", "")


def test_an_llm_server_down_from_the_start_still_answers(seed_settings):
    """The model is never built (the server was never up): every answer falls back, none fails."""
    from integration_harness import free_port

    from rag.assistant import Assistant

    settings = seed_settings.model_copy(update={
        "llm_backend": "openai", "openai_base_url": f"http://127.0.0.1:{free_port()}/v1", "llm_timeout_s": 2.0,
    })  # fmt: skip
    try:
        answer = Assistant(settings).ask(DETROIT_QUESTION)
    except KQAError as exc:  # pragma: no cover - the failure this test exists to catch
        pytest.fail(f"an unreachable LLM server must fall back, not raise: {exc}")
    assert answer.backend == "extractive" and answer.citations
    assert "Cannot reach the OpenAI-compatible server" in answer.fallback_reason
    assert answer.timings["generate"] < 4.0

"""The web chat in a real browser: app.py as a subprocess, Debian's Chromium driven by Playwright.

Covers the issue's "done when": a streamed answer with [n] markers, the status as Gradio's own pending
"thought", the sources message with quote, date and link, a follow-up, the one rating control (thumbs and
reasons) landing in the JSONL file, retry, undo and edit, Stop with the embedded LLM, screenshots; plus
hostile post content that must not run, and store errors shown as chat messages while the page stays usable.

One turn on the page is a ``.bot-row``: Gradio groups the turn's assistant messages (thought, answer,
sources) in one bubble.

Set ``KQA_SCREENSHOT_PATH=docs/screenshot-chat.png`` to also copy the screenshot there, and
``KQA_SCREENSHOT_DIR=docs`` for the Stop test's (``screenshot-writing.png``, ``screenshot-stopped.png``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]

ANSWER_TIMEOUT_MS = 180_000
BOT = "#kqa-chat .bot-row"  # one per turn
USER = "#kqa-chat [data-testid='user']"


def _open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.wait_for_selector("#kqa-question textarea", timeout=60_000)
    return page, dialogs


def _ask(page, question: str, expected_answers: int) -> None:
    """Type a question, press Enter, wait until the answer is final (its sources block or error shows)."""
    page.fill("#kqa-question textarea", question)
    page.press("#kqa-question textarea", "Enter")
    _wait_answered(page, expected_answers)


def _wait_answered(page, turns: int, after_pending: int | None = None) -> None:
    """Wait until the page shows ``turns`` turns, the last one final and Ask back in place of Stop;
    ``after_pending``: and more pending thoughts have been seen than that (a new answer, not the old one)."""
    page.wait_for_function(
        """([selector, n, pending]) => {
            const bots = document.querySelectorAll(selector);
            const ask = document.querySelector('#kqa-ask');
            return bots.length === n && bots[n - 1].querySelector('.kqa-sources, .kqa-error') !== null
                && ask !== null && ask.offsetParent !== null
                && (pending === null || (window.__kqa_pending || 0) > pending);
        }""",
        arg=[BOT, turns, after_pending],
        timeout=ANSWER_TIMEOUT_MS,
    )


def _watch_answer_states(page) -> None:
    """Record the last answer's text each time it changes, until its final render (sources) appears, and
    count the pending "thoughts" (with Gradio's spinner) the page shows."""
    page.evaluate(
        """() => { window.__kqa_states = []; window.__kqa_pending = 0; window.__kqa_titles = [];
            let pending = false;
            new MutationObserver(() => {
                const bots = document.querySelectorAll("#kqa-chat .bot-row");
                const last = bots[bots.length - 1];
                if (last && !last.querySelector('.kqa-sources')) {  // the answer message, else the status
                    const texts = [...last.querySelectorAll("[data-testid='bot']")]
                        .filter(m => !m.querySelector('.thought-group'));
                    const title = last.querySelector('.thought-group .title');
                    window.__kqa_states.push(texts.length ? texts[texts.length - 1].innerText
                                                          : (title ? title.innerText : last.innerText));
                }
                const spinner = document.querySelector("#kqa-chat .thought-group .loading-spinner");
                const busy = spinner ? spinner.closest('.thought-group') : null;
                if (busy && !pending) window.__kqa_pending += 1;
                if (busy && busy.innerText.trim()) window.__kqa_titles.push(busy.innerText.trim());
                pending = busy !== null;
            }).observe(document.querySelector('#kqa-chat'),
                       {subtree: true, childList: true, characterData: true, attributes: true});
        }"""
    )


def _pending(page) -> int:
    return page.evaluate("window.__kqa_pending")


def _answer_states(page) -> list[str]:
    return list(dict.fromkeys(page.evaluate("window.__kqa_states")))


def _post_text(stem: str) -> str:
    return " ".join((REPO / "data" / f"{stem}.md").read_text(encoding="utf-8").split())


def _pwned(page) -> object:
    return page.evaluate("window.__kqa_pwned")


def test_chat_answers_with_citations_follow_up_feedback_and_screenshot(browser, seeded_app, tmp_path):
    page, dialogs = _open_page(browser, seeded_app.url)

    # Empty chat: example questions; header: corpus size from index_status().
    assert page.locator("#kqa-chat button", has_text="platform engineering").count() >= 1
    page.wait_for_function(
        "() => /3 posts/.test(document.querySelector('#kqa-status-line').innerText)", timeout=30_000
    )

    _watch_answer_states(page)
    first_question = "What were the three big takeaways from KubeCon Detroit 2022?"
    _ask(page, first_question, 1)
    # extractive backend: no tokens, but the page showed its status as a pending thought (spinner) first
    assert any("Searching the recaps" in state for state in _answer_states(page))
    assert _pending(page) >= 1
    assert any("Searching the recaps" in title for title in page.evaluate("window.__kqa_titles"))
    thought = page.locator(BOT).nth(0).locator(".thought-group").first
    assert thought.locator(".loading-spinner").count() == 0  # the spinner goes when done
    assert "Answered from 1 post" in thought.inner_text()

    answer = page.locator(BOT).nth(0)
    answer_text, _, sources_text = answer.inner_text().partition("Cited posts")
    assert re.search(r"\[\d+\]", answer_text), answer_text
    cited = answer.locator(".kqa-cited-post")
    assert cited.count() >= 1
    assert "Three Big Takeaways" in cited.first.locator(".kqa-title").inner_text()
    assert "North America 2022 (Detroit)" in cited.first.locator(".kqa-event").inner_text()
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2}", cited.first.locator(".kqa-date").inner_text()
    )  # the post's date
    freshness = answer.locator(".kqa-freshness").inner_text()
    assert freshness.startswith("Post from 20") and "index updated" in freshness, freshness
    assert "seed-kubecon-detroit-2022-three-takeaways.md" in cited.first.locator(".kqa-link").inner_text()
    evidence = answer.locator("details.kqa-citation").first
    quote = evidence.locator(".kqa-quote")
    assert not quote.is_visible()  # collapsed until opened
    evidence.locator("summary").click()
    quote.wait_for(state="visible")
    assert len(quote.inner_text()) > 20 and quote.inner_text() in _post_text(
        "seed-kubecon-detroit-2022-three-takeaways"
    )

    # Follow-up: "it" needs the first turn. Without history the question also cites the Valencia post
    # (it has a platform engineering section); with history it stays on Detroit.
    _ask(page, "What did it say about platform engineering?", 2)
    follow_up = page.locator(BOT).nth(1)
    assert follow_up.locator(".kqa-error").count() == 0, follow_up.inner_text()
    assert re.search(r"\[\d+\]", follow_up.inner_text().partition("Cited posts")[0])
    cited_events = follow_up.locator(".kqa-cited-post .kqa-event").all_inner_texts()
    assert cited_events and all("Detroit" in event for event in cited_events), cited_events
    assert "platform engineering" in follow_up.inner_text().lower()

    # The one rating control: a reason from the answer's feedback menu, with a comment -> one JSONL line
    # with the whole context.
    page.fill("#kqa-comment textarea", "should name the IDP vendors")
    follow_up.hover()
    page.locator("#kqa-chat button[aria-label='Feedback']").nth(1).click()
    page.locator("#kqa-chat button.extra-feedback-option", has_text="Incomplete").nth(1).click()
    page.wait_for_function(
        "() => /Thanks/.test(document.querySelector('#kqa-feedback-note').innerText)", timeout=30_000
    )
    feedback_file = seeded_app.home / "feedback.jsonl"
    lines = [json.loads(line) for line in feedback_file.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1
    record = lines[0]
    assert record["rating"] == "down" and record["comment"] == "should name the IDP vendors"
    assert record["reasons"] == ["incomplete"]
    assert record["question"] == "What did it say about platform engineering?"
    assert "Detroit" in record["standalone_question"]
    assert record["history"][0] == {"role": "user", "content": first_question}
    assert record["citations"] and record["citations"][0]["quote"]
    assert record["settings"]["llm_backend"] == "extractive"
    assert page.locator("#kqa-comment textarea").input_value() == ""  # cleared for the next rating

    # The chatbot's own thumbs on the first answer rate that answer, not the last one.
    answer.hover()
    page.locator("#kqa-chat button[aria-label='Like']").nth(0).click()
    page.wait_for_function(
        "() => document.querySelector('#kqa-feedback-note').innerText.includes('👍')", timeout=30_000
    )
    lines = [json.loads(line) for line in feedback_file.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 and lines[1]["rating"] == "up" and lines[1]["question"] == first_question
    assert lines[1]["reasons"] == []
    assert dialogs == []

    follow_up.locator("details.kqa-citation").first.locator("summary").click()
    screenshot = tmp_path / "chat.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    if target := os.environ.get("KQA_SCREENSHOT_PATH"):
        shutil.copy(screenshot, target)
    page.close()


def _user_texts(page) -> list[str]:
    return page.locator(USER).all_inner_texts()


def test_retry_undo_and_edit_rewind_the_conversation(browser, seeded_app):
    page, dialogs = _open_page(browser, seeded_app.url)
    _watch_answer_states(page)
    first, second = (
        "What were the three big takeaways from KubeCon Detroit 2022?",
        "What did it say about platform engineering?",
    )
    _ask(page, first, 1)
    _ask(page, second, 2)
    assert not page.locator("#kqa-stop").is_visible()

    # Retry: the last question is answered again in place (still with the first turn as its history)
    seen = _pending(page)
    page.locator(BOT).nth(1).hover()
    page.locator("#kqa-chat button[aria-label='Retry']").last.click()
    _wait_answered(page, 2, after_pending=seen)
    assert _user_texts(page) == [first, second]
    events = page.locator(BOT).nth(1).locator(".kqa-cited-post .kqa-event").all_inner_texts()
    assert events and all("Detroit" in event for event in events), events

    # Undo: the last question and its answer go, and the question is back in the box to change
    page.locator(BOT).nth(1).hover()
    page.locator("#kqa-chat button[aria-label='Undo']").last.click()
    page.wait_for_function("n => document.querySelectorAll(n).length === 1", arg=BOT, timeout=30_000)
    assert _user_texts(page) == [first]
    assert page.locator("#kqa-question textarea").input_value() == second

    # Edit the first question: the conversation is asked again from there with the new words
    edited = "What did the Datadog recap say about Cilium (and eBPF)?"
    seen = _pending(page)
    page.locator(USER).nth(0).hover()
    page.locator("#kqa-chat button[aria-label='Edit']").first.click()
    page.locator("#kqa-chat textarea.edit-textarea").fill(edited)
    page.locator("#kqa-chat button[aria-label='Submit']").click()
    _wait_answered(page, 1, after_pending=seen)
    assert _user_texts(page) == [edited]
    events = page.locator(BOT).nth(0).locator(".kqa-cited-post .kqa-event").all_inner_texts()
    assert events and all("Valencia" in event for event in events), events

    # The turns behind the page followed every step: rating the answer records the edited question
    page.locator(BOT).nth(0).hover()
    page.locator("#kqa-chat button[aria-label='Dislike']").nth(0).click()
    page.wait_for_function(
        "() => document.querySelector('#kqa-feedback-note').innerText.includes('👎')", timeout=30_000
    )
    record = json.loads((seeded_app.home / "feedback.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert record["question"] == edited and record["history"] == [] and record["rating"] == "down"
    assert dialogs == []
    page.close()


def test_hostile_post_and_question_cannot_run_script_in_the_page(browser, seeded_app):
    page, dialogs = _open_page(browser, seeded_app.url)
    _ask(page, "What did the recap say about WebAssembly sandboxes at KubeCon Paris 2024?", 1)
    answer = page.locator(BOT).nth(0)
    # the hostile post is cited: its URL is a real link, its title and quotes are shown as text
    link = answer.locator(".kqa-cited-post a[href='https://example.org/kubecon-paris-2024-wasm']")
    assert link.count() == 1 and link.first.get_attribute("rel") == "noopener noreferrer"
    for details in answer.locator("details").all():
        details.locator("summary").click()
    text = answer.inner_text()
    assert "<script>window.__kqa_pwned=2</script>" in text or 'onerror="window.__kqa_pwned' in text, text
    assert answer.locator("script, img, iframe").count() == 0

    _ask(
        page, "Which project ran next to containers? <img src=y onerror=window.__kqa_pwned=9> <b>bold</b>", 2
    )
    question = page.locator(USER).nth(1)
    assert "<img src=y onerror=window.__kqa_pwned=9>" in question.inner_text()
    assert question.locator("img, b").count() == 0
    page.wait_for_timeout(1000)  # give any injected handler time to fire
    assert _pwned(page) is None and dialogs == []
    page.close()


def test_filters_status_and_reingest_from_the_page(browser, seeded_app):
    page, _ = _open_page(browser, seeded_app.url)
    # The event filter lists the indexed events; restricting to Valencia 2022 keeps Paris posts out.
    page.click("#kqa-event input")
    option = page.get_by_role("option", name="KubeCon + CloudNativeCon Europe 2022 (Valencia)")
    option.click()
    _ask(page, "What did people say about WebAssembly and platform engineering?", 1)
    answer = page.locator(BOT).nth(0)
    events = answer.locator(".kqa-sources .kqa-event").all_inner_texts()
    assert events and all(event == "KubeCon + CloudNativeCon Europe 2022 (Valencia)" for event in events), (
        events
    )

    page.get_by_role("tab", name="Status").click()
    status = page.locator("#kqa-status")
    status.get_by_text("Posts").wait_for()
    assert re.search(r"Posts\s+3", status.inner_text())
    assert "extractive" in status.inner_text()
    page.click("#kqa-reingest")
    page.wait_for_function(
        "() => /Done in/.test(document.querySelector('#kqa-ingest-log textarea').value)", timeout=180_000
    )
    log_text = page.locator("#kqa-ingest-log textarea").input_value()
    assert "3 unchanged" in log_text, log_text
    page.close()


@pytest.mark.parametrize("case", ["empty_index", "chroma_unreachable"])
def test_store_errors_show_in_chat_and_page_stays_usable(browser, start_app, unused_port, tmp_path, case):
    extra = {"KQA_CHROMA_URL": f"http://127.0.0.1:{unused_port}"} if case == "chroma_unreachable" else {}
    app = start_app(tmp_path / "home", tmp_path / "no-data", extra)
    page, dialogs = _open_page(browser, app.url)
    _ask(page, "What happened at KubeCon Detroit?", 1)
    message = page.locator(BOT).nth(0).locator(".kqa-error").inner_text()
    expected = "ingest" if case == "empty_index" else "Chroma"
    assert expected.lower() in message.lower(), message
    assert "Traceback" not in page.content() and 'File "' not in message
    # still usable: a second question gets its own (error) answer and the input stays enabled
    _ask(page, "And in Valencia?", 2)
    assert page.locator(BOT).count() == 2
    assert page.locator("#kqa-question textarea").is_enabled()
    assert dialogs == []
    page.close()


@pytest.mark.slow
def test_answer_streams_token_by_token_with_the_embedded_llm(browser, start_app, tmp_path):
    """The default backend (embedded llama.cpp): tokens appear in the page while the model writes."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install '.[llm]')")
    data_dir = tmp_path / "data"
    shutil.copytree(REPO / "data", data_dir)
    app = start_app(tmp_path / "home", data_dir, {"KQA_LLM_BACKEND": "llamacpp", "KQA_LLM_MAX_TOKENS": "64"})
    page, dialogs = _open_page(browser, app.url)
    _watch_answer_states(page)
    _ask(page, "What were the three big takeaways from KubeCon Detroit 2022?", 1)
    streamed = [s for s in _answer_states(page) if "Searching" not in s and "Writing the answer" not in s]
    assert len(streamed) >= 3, f"expected the answer to grow token by token, saw {streamed}"
    growing = [a for a, b in zip(streamed, streamed[1:], strict=False) if b.startswith(a.rstrip("…").strip())]
    assert len(growing) >= 2, streamed
    final = page.locator(BOT).nth(0)
    assert final.locator(".kqa-sources").count() == 1
    assert final.locator(".kqa-cited-post, .kqa-closest-post").count() >= 1
    assert dialogs == []
    page.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to see whether the LLM still works."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_rate(pid: int, seconds: float) -> float:
    import time

    start = _cpu_seconds(pid)
    time.sleep(seconds)
    return (_cpu_seconds(pid) - start) / seconds


@pytest.mark.slow
def test_stop_ends_the_answer_and_the_llm_stops_working(browser, start_app, tmp_path):
    """The embedded LLM writing a long answer; Stop ends it at once, the process goes idle, and the page
    answers the next question. Prints the figures (seconds to stop, CPU use while writing and after)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install '.[llm]')")
    import time

    if not Path("/proc/self/stat").exists():
        pytest.skip("measuring the LLM's CPU use needs Linux /proc")
    data_dir = tmp_path / "data"
    shutil.copytree(REPO / "data", data_dir)
    # one thread: the model writes slowly enough for Stop to land while it writes
    app = start_app(tmp_path / "home", data_dir, {"KQA_LLM_BACKEND": "llamacpp", "KQA_LLM_THREADS": "1",
                                                  "KQA_LLM_TIMEOUT_S": "600"})  # fmt: skip
    page, dialogs = _open_page(browser, app.url)
    _watch_answer_states(page)
    page.fill("#kqa-question textarea", "What were the three big takeaways from KubeCon Detroit 2022?")
    page.press("#kqa-question textarea", "Enter")
    page.wait_for_function(
        "() => window.__kqa_titles.some(t => t.includes('Writing the answer'))", timeout=ANSWER_TIMEOUT_MS
    )
    working = _cpu_rate(app.process.pid, 1.0)  # the model reading the prompt
    if target := os.environ.get("KQA_SCREENSHOT_DIR"):  # the pending thought, with its spinner
        page.screenshot(path=str(Path(target) / "screenshot-writing.png"), full_page=True)
    # Stop as soon as the model's first words are in the answer message under the pending thought
    page.wait_for_function(
        "() => window.__kqa_states.some(t => t.length > 10 && !/Searching|Writing/.test(t))",
        timeout=ANSWER_TIMEOUT_MS,
        polling=50,
    )
    pressed = time.perf_counter()
    page.click("#kqa-stop")
    page.wait_for_function(
        """(selector) => { const rows = document.querySelectorAll(selector); const last = rows[rows.length - 1];
            const ask = document.querySelector('#kqa-ask');
            return ask && ask.offsetParent !== null && last && /Stopped/.test(last.innerText); }""",
        arg=BOT,
        timeout=60_000,
    )
    stopped_after = time.perf_counter() - pressed
    answer = page.locator(BOT).last.locator("[data-testid='bot']").last  # the answer, after the thought
    shown = answer.inner_text()
    time.sleep(1.0)  # a token already in flight may still land
    after = _cpu_rate(app.process.pid, 4.0)
    assert answer.inner_text() == shown and "Stopped before the answer was finished" in shown  # no more words
    print(f"\nstop: page settled {stopped_after:.2f} s after Stop; CPU {working:.2f} s/s while the model "
          f"worked, {after:.2f} s/s after")  # fmt: skip
    assert stopped_after < 15, stopped_after  # generous: the machine is shared (the target is 2 s)
    assert after < 0.3 and after < working / 3, (working, after)  # the LLM stopped working
    thought = page.locator(BOT).last.locator(".thought-group .title")
    assert "Stopped" in thought.inner_text()
    assert page.locator(BOT).last.locator(".loading-spinner").count() == 0
    if target:
        page.screenshot(path=str(Path(target) / "screenshot-stopped.png"), full_page=True)

    # the page (and the model) answer the next question; the stopped turn counts as a turn
    _ask(page, "What were the three big takeaways from KubeCon Detroit 2022?", 2)
    assert page.locator(BOT).nth(1).locator(".kqa-sources").count() == 1
    assert "Traceback" not in app.log_tail(20_000)
    assert dialogs == []
    page.close()

"""End to end with the real Assistant (extractive backend) over the seed posts plus one post written to
test escaping: signed Slack requests over HTTP in, Web API calls to the mock out."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

import pytest
from slack_harness import ALICE, CHANNEL, DM_CHANNEL, direct_message, mention
from slack_mock_api import BOT_USER_ID

pytestmark = pytest.mark.server

HOSTILE_URL = "https://example.org/recaps/valencia-2022-ebpf?ref=kqa&lang=en"
HOSTILE_POST = f"""---
title: "Cilium & eBPF <!channel> hallway notes from KubeCon Valencia"
date: "2022-05-21"
event: "KubeCon + CloudNativeCon Europe 2022 (Valencia)"
url: "{HOSTILE_URL}"
---

# Cilium & eBPF <!channel> hallway notes from KubeCon Valencia

Attention @channel and @here: the Cilium service mesh beta drew crowds & long queues <at every session> in Valencia.

Sidecar-free networking with eBPF & Cilium was the hallway topic <!here> of KubeCon Europe 2022, and <@U0VICTIM1> said the kernel is the new platform.

Speakers warned <!channel> that eBPF & Cilium programs need careful review because they run inside the kernel <kernel-space>.
"""
DETROIT = "What were the big takeaways at KubeCon Detroit 2022?"


@dataclass
class RecordingAssistant:
    """The real Assistant, recording what the bot asked it (question and history)."""

    inner: object
    calls: list[tuple[str, list | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stream(self, question, history=None, event=None, year=None):
        with self.lock:
            self.calls.append((question, history))
        return self.inner.stream(question, history=history, event=event, year=year)


@pytest.fixture(scope="session")
def recap_assistant(tmp_path_factory, settings_factory, seed_data_dir):
    from ingest.pipeline import run_ingest
    from rag.assistant import Assistant

    extra = tmp_path_factory.mktemp("slack-posts")
    (extra / "kubecon-valencia-2022-ebpf-hallway.md").write_text(HOSTILE_POST, encoding="utf-8")
    settings = settings_factory(tmp_path_factory.mktemp("slack-home"), llm_backend="extractive")
    summary = run_ingest(paths=[seed_data_dir, extra], settings=settings)
    assert summary.exit_code == 0, summary.to_dict()
    return Assistant(settings)


@pytest.fixture
def assistant(recap_assistant):
    return RecordingAssistant(recap_assistant)


def final_update(slack_api, channel: str = CHANNEL):
    return slack_api.wait_for(
        "chat.update",
        where=lambda c: bool(c.params.get("blocks")) and c.params["channel"] == channel,
        timeout=60,
    )[-1].params


def test_mention_gets_a_cited_answer_in_its_thread(slack_api, start_bot, assistant):
    bot = start_bot(assistant)
    assert bot.client.event(mention(DETROIT, "1700000200.000100"))[0] == 200
    update = final_update(slack_api)
    assert bot.bot.wait_idle(60)

    thread = slack_api.thread(CHANNEL, "1700000200.000100")
    assert [m["ts"] for m in thread] == [update["ts"]]  # the placeholder became the answer
    assert thread[0]["thread_ts"] == "1700000200.000100"
    section = update["blocks"][0]["text"]["text"]
    assert re.search(r"\[\d\]", section)  # citation markers (the seed posts have no URL to link)
    sources = [b["elements"][0]["text"] for b in update["blocks"] if b["type"] == "context"]
    detroit = [s for s in sources if s.startswith("*[") and "Three Big Takeaways" in s]
    assert detroit  # one block per citation: each shows the line its sentence rests on
    assert (
        "(seed-kubecon-detroit-2022-three-takeaways.md) · KubeCon + CloudNativeCon North America 2022"
        in detroit[0]
    )
    assert "/work/" not in json.dumps(update)  # no server paths
    assert "\n“" in detroit[0]  # the supporting quote
    assert update["blocks"][-1]["type"] == "actions"
    assert assistant.calls == [(DETROIT, None)]


def test_direct_message_gets_an_answer(slack_api, start_bot, assistant):
    bot = start_bot(assistant)
    question = "What did people say about WebAssembly at KubeCon Detroit?"
    assert bot.client.event(direct_message(question, "1700000210.000100"))[0] == 200
    update = final_update(slack_api, DM_CHANNEL)
    sources = [b["elements"][0]["text"] for b in update["blocks"] if b["type"] == "context"]
    assert any("Three Big Takeaways" in s for s in sources)
    assert slack_api.calls("chat.postMessage")[0].params.get("thread_ts") is None  # top level of the DM
    assert assistant.calls == [(question, None)]


def test_follow_up_in_a_thread_uses_the_earlier_turns(slack_api, start_bot, assistant):
    bot = start_bot(assistant)
    first_ts = slack_api.add_message(CHANNEL, f"<@{BOT_USER_ID}> {DETROIT}", user=ALICE)
    bot.client.event(mention(DETROIT, first_ts))
    first_answer = final_update(slack_api)
    assert bot.bot.wait_idle(60)

    follow_up = "What did it say about WebAssembly?"
    slack_api.add_message(CHANNEL, "nice, thanks", user="UBOB0001", thread_ts=first_ts)  # not for the bot
    follow_ts = slack_api.add_message(
        CHANNEL, f"<@{BOT_USER_ID}> {follow_up}", user=ALICE, thread_ts=first_ts
    )
    bot.client.event(mention(follow_up, follow_ts, thread_ts=first_ts))
    slack_api.wait_for("chat.update", 2, where=lambda c: bool(c.params.get("blocks")), timeout=60)
    assert bot.bot.wait_idle(60)

    replies = slack_api.calls("conversations.replies")
    assert [(c.params["channel"], c.params["ts"]) for c in replies] == [(CHANNEL, first_ts)]
    question, history = assistant.calls[-1]
    assert question == follow_up
    assert history == [
        {"role": "user", "content": DETROIT},
        {"role": "assistant", "content": first_answer["text"]},
    ]
    second = slack_api.thread(CHANNEL, first_ts)[-1]
    assert second["thread_ts"] == first_ts and "WebAssembly" in second["text"]


def test_slash_command_answer_is_ephemeral(slack_api, start_bot, assistant):
    bot = start_bot(assistant)
    status, body = bot.client.command(DETROIT, response_url=slack_api.response_url("detroit"))
    assert status == 200 and json.loads(body)["response_type"] == "ephemeral"
    reply = slack_api.wait_for("response_url:detroit", timeout=60)[0].params
    assert reply["response_type"] == "ephemeral"
    assert "WebAssembly" in reply["text"] and reply["blocks"][-1]["type"] == "actions"
    assert not slack_api.calls("chat.postMessage")  # nothing public


def test_text_from_posts_is_escaped(slack_api, start_bot, assistant):
    bot = start_bot(assistant)
    bot.client.event(
        mention("What did people say about Cilium and eBPF at KubeCon Valencia?", "1700000230.000100")
    )
    update = final_update(slack_api)
    payload = json.dumps(update, ensure_ascii=False)
    for raw in ("<!channel>", "<!here>", "<at every session>", "<@U0VICTIM1>", "<kernel-space>"):
        assert raw not in payload
    assert not re.search(r"@(channel|here)\b", payload)  # only "@\u2060channel" survives

    # The hostile post is cited: its title is escaped, and its [n] links to its URL (with & as &amp;).
    link = "<https://example.org/recaps/valencia-2022-ebpf?ref=kqa&amp;lang=en|"
    sources = [b["elements"][0]["text"] for b in update["blocks"] if b["type"] == "context"]
    hostile = [s for s in sources if f"{link}Cilium &amp; eBPF &lt;!channel&gt; hallway notes" in s]
    assert len(hostile) == 1
    number = re.match(r"\*\[(\d+)\]\*", hostile[0]).group(1)
    section = update["blocks"][0]["text"]["text"]
    assert f"{link}[{number}]>" in section
    escaped_forms = (
        "@\u2060channel",
        "@\u2060here",
        "&lt;!here&gt;",
        "&lt;!channel&gt;",
        "&lt;@U0VICTIM1&gt;",
    )
    assert any(form in section for form in escaped_forms)
    assert any(form in hostile[0] for form in ("&amp;", "&lt;", "@\u2060"))  # the quote, escaped

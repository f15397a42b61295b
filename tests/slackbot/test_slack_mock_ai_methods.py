"""The mock's assistant and streaming methods answer slack_sdk's real WebClient as Slack's method
reference describes: required arguments, ``ok`` bodies, and the errors a bot must handle."""

from __future__ import annotations

import pytest
from slack_mock_api import BOT_TOKEN, TEAM_ID
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

pytestmark = pytest.mark.server


@pytest.fixture
def client(slack_api) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack_api.api_url, timeout=10)


def error_of(call) -> str:
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value.response["error"]


def test_a_stream_only_grows_and_ends_with_its_blocks(slack_api, client):
    start = client.chat_startStream(channel="C0GENERAL", thread_ts="1.1", recipient_user_id="UALICE01",
                                    recipient_team_id=TEAM_ID, markdown_text="One. ")  # fmt: skip
    client.chat_appendStream(channel="C0GENERAL", ts=start["ts"], markdown_text="Two.")
    stop = client.chat_stopStream(channel="C0GENERAL", ts=start["ts"], blocks=[{"type": "divider"}])
    assert stop["message"]["text"] == "One. Two." and stop["message"]["blocks"] == [{"type": "divider"}]
    assert slack_api.stream_texts("C0GENERAL", start["ts"]) == ["One. ", "One. Two.", "One. Two."]
    assert error_of(
        lambda: client.chat_appendStream(channel="C0GENERAL", ts=start["ts"], markdown_text="x")
    ) == ("message_not_in_streaming_state")
    # slack_sdk's own ChatStream (bolt's say_stream) sends markdown_text chunks: the same message results.
    stream = client.chat_stream(channel="D0ALICE01", thread_ts="2.2", buffer_size=1)
    stream.append(markdown_text="Chunked ")
    stream.append(markdown_text="text.")
    assert stream.stop()["message"]["text"] == "Chunked text."


def test_stream_errors(client):
    assert (
        error_of(lambda: client.chat_startStream(channel="C0GENERAL", thread_ts="1.1"))
        == "missing_recipient_user_id"
    )
    assert error_of(
        lambda: client.chat_startStream(channel="C0GENERAL", thread_ts="1.1", recipient_user_id="U1")
    ) == ("missing_recipient_team_id")
    assert error_of(lambda: client.chat_appendStream(channel="D0ALICE01", ts="9.9", markdown_text="x")) == (
        "message_not_found"
    )
    start = client.chat_startStream(channel="D0ALICE01", thread_ts="3.3")  # a DM needs no recipient
    too_long = "x" * 12_001
    assert error_of(
        lambda: client.chat_appendStream(channel="D0ALICE01", ts=start["ts"], markdown_text=too_long)
    ) == ("msg_too_long")


def test_assistant_thread_methods(slack_api, client):
    client.assistant_threads_setStatus(channel_id="D0ALICE01", thread_ts="4.4", status="Searching…")
    assert slack_api.status("D0ALICE01", "4.4") == "Searching…"
    client.assistant_threads_setStatus(channel_id="D0ALICE01", thread_ts="4.4", status="")
    assert slack_api.status("D0ALICE01", "4.4") == ""
    assert client.assistant_threads_setTitle(channel_id="D0ALICE01", thread_ts="4.4", title="Q")["ok"]
    prompts = [{"title": f"t{n}", "message": f"m{n}"} for n in range(5)]
    assert client.assistant_threads_setSuggestedPrompts(channel_id="D0ALICE01", prompts=prompts[:4])["ok"]
    assert error_of(
        lambda: client.assistant_threads_setSuggestedPrompts(channel_id="D0ALICE01", prompts=prompts)
    ) == ("invalid_arguments")
    assert error_of(
        lambda: client.assistant_threads_setTitle(channel_id="D0ALICE01", thread_ts="4.4", title="")
    ) == ("invalid_arguments")

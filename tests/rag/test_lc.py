"""The LangChain adapters (rag/lc.py) on the fixture store: retriever, Runnable, child runs, async, history.

A run collector (langchain_core's own tracer) records the runs; where a test needs the model to write
something, it is langchain_core's fake chat model, as in test_assistant.py (the real models are in
tests/rag/components/test_llm_standard.py).
"""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

import rag.components.llm as llm_module
from rag.assistant import Assistant
from rag.errors import InvalidQuestionError
from rag.types import Answer
from tests.rag.conftest import source_text
from tests.support.runs import walk as _walk

DETROIT = "KubeCon + CloudNativeCon North America 2022 (Detroit)"
STAGES = ["understand", "retrieve", "pack", "generate", "verify"]


class CountingChatModel(GenericFakeChatModel):
    """langchain_core's fake model streaming a fixed reply word by word; counts the chunks it produced."""

    produced: list = []

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        for chunk in super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
            self.produced.append(chunk.message.content)
            yield chunk


@pytest.fixture
def llm_assistant(settings_with, monkeypatch):
    def make(reply: str) -> tuple[Assistant, CountingChatModel]:
        model = CountingChatModel(messages=iter([AIMessage(content=reply)]), produced=[])
        monkeypatch.setattr(llm_module, "get_chat_model", lambda settings=None: model)
        return Assistant(settings_with(llm_backend="openai")), model

    return make


# ---- the retriever ------------------------------------------------------------------------------------


def test_the_retriever_returns_documents_with_offsets_and_scores(assistant, fixture_posts_dir):
    retriever = assistant.as_retriever(k=4)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("Backstage developer portal golden path")
    assert 1 <= len(docs) <= 4 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert top.metadata["source_id"] == "detroit-2022-platform"
    assert top.metadata["event"] == DETROIT and top.metadata["year"] == 2022
    assert top.metadata["title"] == "Platform engineering took over Detroit"
    assert "Backstage" in top.metadata["section"] or "Backstage" in top.page_content
    text = source_text(fixture_posts_dir / "detroit-2022-platform.md")
    for doc in docs:  # the offsets index the post as ingested, like a citation's
        post = source_text(fixture_posts_dir / f"{doc.metadata['source_id']}.md")
        assert post[doc.metadata["start"] : doc.metadata["end"]] == doc.page_content
    assert text[top.metadata["start"] : top.metadata["end"]] == top.page_content
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert 0 < top.metadata["dense_similarity"] <= 1
    # the same ranking the answer path uses
    assert [d.metadata["source_id"] for d in docs][0] == assistant.rank_sources("Backstage developer portal golden path")[0]


def test_the_retriever_honours_event_and_year_filters(assistant):
    query = "What were the main themes?"
    detroit = assistant.as_retriever(k=6, event="Detroit").invoke(query)
    assert detroit and {d.metadata["event"] for d in detroit} == {DETROIT}
    years = assistant.as_retriever(k=6, year=2019).invoke(query)
    assert years and {d.metadata["year"] for d in years} == {2019}
    assert len({d.metadata["source_id"] for d in years}) == 2  # Barcelona and Shanghai
    # an event the index does not cover gives nothing, not other events' posts
    assert assistant.as_retriever(event="KubeCon EU 2017").invoke(query) == []
    # and so does an event named in the query
    assert {d.metadata["event"] for d in assistant.as_retriever().invoke("platform engineering in Detroit")} == {DETROIT}


def test_the_retriever_k_and_bad_input(assistant):
    retriever = assistant.as_retriever(k=2)
    assert len(retriever.invoke("service mesh")) == 2
    assert len(retriever.invoke("service mesh", k=5)) == 5
    with pytest.raises(InvalidQuestionError, match="k must be"):
        retriever.invoke("service mesh", k=0)
    with pytest.raises(InvalidQuestionError, match="empty"):
        retriever.invoke("   ")


# ---- the Runnable ---------------------------------------------------------------------------------------


def test_the_runnable_answers_like_ask(assistant):
    runnable = assistant.as_runnable()
    expected = assistant.ask("What is SpinKube?")
    by_string = runnable.invoke("What is SpinKube?")
    assert isinstance(by_string, Answer) and by_string.text == expected.text
    by_dict = runnable.invoke({"question": "What were the keynotes about?", "event": "Detroit"})
    assert {s.event for s in by_dict.sources} == {DETROIT}
    batch = runnable.batch(["What is SpinKube?", {"question": "What is SpinKube?", "year": 2023}])
    assert [a.text for a in batch] == [expected.text, expected.text]
    assert asyncio.run(runnable.ainvoke("What is SpinKube?")).text == expected.text
    assert asyncio.run(assistant.aask("What is SpinKube?")).text == expected.text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "not int"),
        ({"q": "What is SpinKube?"}, "got keys"),
        ({"question": "What is SpinKube?", "k": 3}, "got keys"),
        ({"question": ""}, "empty"),
        ({"question": "What is SpinKube?", "year": "2023"}, "year"),
    ],
)
def test_bad_runnable_input_is_a_clear_error(assistant, value, message):
    with pytest.raises(InvalidQuestionError, match=message):
        assistant.as_runnable().invoke(value)


def test_history_takes_langchain_messages(assistant):
    asked = "What new runtime was everyone talking about at KubeCon Detroit?"
    as_dicts = [{"role": "user", "content": asked}, {"role": "assistant", "content": "Platform engineering [1]."}]
    as_messages = [HumanMessage(asked), AIMessage("Platform engineering [1].")]
    by_dicts = assistant.ask("What about Chicago?", history=as_dicts)
    by_messages = assistant.as_runnable().invoke({"question": "What about Chicago?", "history": as_messages})
    assert by_messages.standalone_question == by_dicts.standalone_question
    assert by_messages.standalone_question == "What new runtime was everyone talking about at KubeCon Chicago?"
    with pytest.raises(InvalidQuestionError, match="ToolMessage"):
        assistant.ask("What about Chicago?", history=[ToolMessage("x", tool_call_id="1")])


def _children(run) -> dict:
    return {child.name: child for child in run.child_runs}


def test_every_stage_is_a_child_run_and_the_model_call_a_child_of_generate(llm_assistant):
    qa, _ = llm_assistant("SpinKube bundles a containerd shim and an operator [1].")
    collector = RunCollectorCallbackHandler()
    answer = qa.as_runnable().invoke("What is SpinKube?", config={"callbacks": [collector], "run_name": "recaps"})
    [root] = collector.traced_runs
    assert root.name == "recaps" and root.error is None
    assert [c.name for c in sorted(root.child_runs, key=lambda r: r.dotted_order)] == STAGES
    stages = _children(root)
    assert stages["retrieve"].run_type == "retriever"
    documents = stages["retrieve"].outputs["documents"]
    assert documents[0].metadata["source_id"] == "chicago-2023-wasm"
    assert stages["understand"].outputs["standalone"] == "What is SpinKube?"
    assert "<post" in stages["pack"].outputs["evidence"] or "[1]" in stages["pack"].outputs["evidence"]
    assert stages["generate"].outputs["text"] == "SpinKube bundles a containerd shim and an operator [1]."
    assert stages["verify"].outputs["text"] == answer.text.split("\n\n")[0]
    model_runs = [r for r in _walk(stages["generate"]) if r.run_type == "llm"]
    assert len(model_runs) == 1  # the chat model's run sits under generate, not beside it
    for stage in STAGES:
        assert stages[stage].end_time >= stages[stage].start_time


def test_an_abstained_question_has_no_generate_run(assistant):
    collector = RunCollectorCallbackHandler()
    answer = assistant.as_runnable().invoke("What is the best pizza recipe?", config={"callbacks": [collector]})
    assert answer.abstained
    assert [c.name for c in sorted(collector.traced_runs[0].child_runs, key=lambda r: r.dotted_order)] == [
        "understand", "retrieve", "pack",
    ]  # fmt: skip


def test_astream_yields_status_tokens_then_the_answer(llm_assistant):
    reply = "SpinKube bundles a containerd shim and an operator [1]."
    qa, _ = llm_assistant(reply)

    async def collect():
        return [event async for event in qa.as_runnable().astream("What is SpinKube?")]

    events = asyncio.run(collect())
    kinds = [e.kind for e in events]
    assert kinds[0] == "status" and kinds[-1] == "answer" and kinds.count("answer") == 1
    assert "".join(e.text for e in events if e.kind == "token") == reply
    assert events[-1].answer.citations[0].source_id == "chicago-2023-wasm"


def test_astream_events_shows_the_stages_and_the_model_tokens(llm_assistant):
    qa, _ = llm_assistant("SpinKube bundles a containerd shim and an operator [1].")

    async def collect():
        return [e async for e in qa.as_runnable().astream_events("What is SpinKube?", version="v2")]

    events = asyncio.run(collect())
    started = [e["name"] for e in events if e["event"] in ("on_chain_start", "on_retriever_start")]
    assert started[0] == "kubecon-qa" and [n for n in started if n in STAGES] == STAGES
    assert any(e["event"] == "on_chat_model_stream" for e in events)
    [end] = [e for e in events if e["event"] == "on_chain_end" and e["name"] == "kubecon-qa"]
    assert end["data"]["output"].answer.citations


@pytest.mark.parametrize("how", ["assistant", "runnable"])
def test_closing_astream_stops_generation(llm_assistant, how):
    """The consumer stops after the first token: the model is not read to the end of its 2,000 words."""
    qa, model = llm_assistant(" ".join(f"word{i}" for i in range(2000)))

    async def first_token_then_close():
        stream = qa.astream("What is SpinKube?") if how == "assistant" else qa.as_runnable().astream("What is SpinKube?")
        async for event in stream:
            if event.kind == "token":
                break
        await stream.aclose()
        await asyncio.sleep(1.0)  # time for a generation that did not stop to run on

    asyncio.run(first_token_then_close())
    assert 1 <= len(model.produced) < 50


def test_runnable_errors_end_the_run_with_the_error(assistant):
    collector = RunCollectorCallbackHandler()
    with pytest.raises(InvalidQuestionError):
        assistant.as_runnable().invoke({"question": "x", "event": "Narnia"}, config={"callbacks": [collector]})
    [root] = collector.traced_runs
    assert "Unrecognised event" in root.error
    assert _children(root)["understand"].error


# ---- LangChain's own building blocks over ours ----------------------------------------------------------


def test_create_retriever_tool_over_the_retriever(assistant):
    from langchain_core.tools import create_retriever_tool

    tool = create_retriever_tool(assistant.as_retriever(k=2), "search_recaps", "Search KubeCon recap posts.")
    text = tool.invoke({"query": "SpinKube containerd shim"})
    assert "SpinKube" in text


def test_langchain_chroma_opens_the_same_collection(assistant, fixture_settings):
    from langchain_chroma import Chroma

    from rag.components.store import get_client
    from rag.lc import RecapEmbeddings

    store = Chroma(
        client=get_client(fixture_settings),
        collection_name=fixture_settings.collection,
        embedding_function=RecapEmbeddings.from_settings(fixture_settings),
    )
    hits = store.similarity_search_with_score("SpinKube containerd shim", k=3)
    assert hits[0][0].metadata["doc_id"] == "chicago-2023-wasm"
    ours = assistant.as_retriever(k=1).invoke("SpinKube containerd shim")[0]
    assert hits[0][0].page_content == ours.page_content
    # our vectors: the distance Chroma reports is 1 - our cosine
    assert hits[0][1] == pytest.approx(1 - ours.metadata["dense_similarity"], abs=2e-3)
    filtered = store.similarity_search("keynotes", k=3, filter={"year": 2019})
    assert filtered and {d.metadata["year"] for d in filtered} == {2019}

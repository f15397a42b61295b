"""English questions of posts in another language: the question is asked in the posts' language too
(rag.crosslingual). The questions are new, not gold items."""

from __future__ import annotations

from rag.assistant import Assistant
from rag.crosslingual import _usable, language_of

CONCLUSION = "bedrock-kubecon-valencia-2022-part-4"


def test_the_language_of_each_corpus_post(shared_corpus_dir):
    found = {p.stem: language_of(p.read_text(encoding="utf-8")) for p in sorted(shared_corpus_dir.glob("*.md"))}
    assert {post: language for post, language in found.items() if language != "English"} == {
        "bedrock-kubecon-valencia-2022-part-1": "French",
        "bedrock-kubecon-valencia-2022-part-2": "French",
        "bedrock-kubecon-valencia-2022-part-3": "French",
        "bedrock-kubecon-valencia-2022-part-4": "French",
        "cinq-non-techie-kubecon-copenhagen-2018": "Dutch",
        "huoqifeng-kubecon-shanghai-2019-zh": "Chinese",
    }
    assert language_of("KubeCon 2019 上海：会场茶歇的时候提供的一些小食品有点差强人意，不过也不要要求太多了。") == "Chinese"


def test_a_reply_that_answers_instead_of_translating_is_not_used():
    question = "Which Kubernetes version brought ephemeral containers to beta?"
    # the 0.5B model, asked without a worked example, answered (wrongly) instead of translating
    assert _usable(question, "La version Kubernetes qui a introduit les conteneurs éphémères est Kubernetes 1.17.") == ""
    assert _usable(question, question) == ""
    french = "Quelle version Kubernetes a introduit des conteneurs éphémères à la bêta ?"
    assert _usable(question, f"{french}\nJ'espère que cela aide.") == french


def test_an_english_question_reaches_a_french_line_through_its_translation(corpus_with_model):
    # "L'observabilité, plus vraiment un problème." shares no word with the English question, and MiniLM
    # ranks the English-language posts' observability lines above it. The French wording (the embedded
    # 0.5B model's own translation) finds it.
    question = "According to Bedrock's KubeCon EU 2022 conclusion, is observability still a problem?"
    reply = "Observability is no longer really a problem for Bedrock [1]."
    qa = corpus_with_model("En conséquence, est-ce toujours un problème d'observabilité ?", reply, reply)
    answer = qa.ask(question)
    assert any(c.source_id == CONCLUSION and "plus vraiment un problème" in c.quote for c in answer.citations), answer

    # without the translation (KQA_TRANSLATE_QUESTIONS=false), the French line is not found
    english_only = corpus_with_model(reply)
    without = Assistant(english_only.settings.model_copy(update={"translate_questions": False})).ask(question)
    assert not any("plus vraiment un problème" in c.quote for c in without.citations), without

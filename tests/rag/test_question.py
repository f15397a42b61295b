"""Event mentions in questions and follow-up condensing (pure functions, no store)."""

from __future__ import annotations

import pytest

from rag.question import (
    EventMention,
    condense,
    detect_events,
    is_follow_up,
    question_kind,
    restrict_year,
    spans_posts,
    strip_event_mentions,
    understand,
)


def mentions(text: str, reference_year: int | None = 2026) -> list[tuple]:
    return [(m.city, m.region, m.year, m.relative_year) for m in detect_events(text, reference_year).mentions]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What did people say about platform engineering in Detroit?", [("Detroit", "NA", None, False)]),
        ("What did people say about eBPF at KubeCon EU 2019?", [("", "EU", 2019, False)]),
        ("Paris 2024 takeaways", [("Paris", "EU", 2024, False)]),
        ("What happened at last year's Valencia?", [("Valencia", "EU", 2025, True)]),
        ("What was new at this year's KubeCon Europe?", [("", "EU", 2026, True)]),
        ("KubeCon NA Detroit 2022 keynotes", [("Detroit", "NA", 2022, False)]),
        ("Compare Valencia and Detroit", [("Valencia", "EU", None, False), ("Detroit", "NA", None, False)]),
        ("Highlights of SLC 2024", [("Salt Lake City", "NA", 2024, False)]),
        (
            "What did the Shanghai contributors say at KubeCon China 2023?",
            [("Shanghai", "China", 2023, False)],
        ),
        ("What happened at KubeCon India?", [("", "India", None, False)]),
        ("What was announced in 2019?", [("", "", 2019, False)]),
        ("kubecon eu'19 recap", [("", "EU", 2019, False)]),
    ],
)
def test_event_mentions(question, expected):
    assert mentions(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "What did the talks tell us about eBPF?",  # "us" is not the United States here
        "What is new in Kubernetes v1.2020 networking?",  # a version, not a year
        "How do sidecars work in a service mesh?",
        "What did the '10 things I hate about YAML' talk say?",  # a title's count: no KubeCon before '15
    ],
)
def test_questions_without_events(question):
    assert detect_events(question, 2026).is_empty


def test_relative_years_need_a_reference_year():
    assert mentions("What happened at last year's KubeCon?", reference_year=None) == []
    assert mentions("What happened at last year's KubeCon?", reference_year=2023) == [("", "", 2022, True)]
    assert mentions("What happened two years ago?", reference_year=2023) == [("", "", 2021, True)]


def test_mentions_match_post_metadata():
    eu_2019 = detect_events("KubeCon EU 2019", 2026)
    assert eu_2019.matches(year=2019, city="Barcelona", region="EU")
    assert not eu_2019.matches(year=2019, city="San Diego", region="NA")
    assert not eu_2019.matches(year=2022, city="Valencia", region="EU")
    virtual = detect_events("the virtual KubeCon in 2020", 2026)
    assert virtual.matches(
        year=2020, city="", region="NA", event="KubeCon + CloudNativeCon North America 2020 (Virtual)"
    )
    assert not virtual.matches(
        year=2020, city="Boston", region="NA", event="KubeCon North America 2020 (Boston)"
    )


def test_restrict_year_applies_to_every_mention():
    query = restrict_year(detect_events("Detroit or Valencia", 2026), 2022)
    assert [(m.city, m.year) for m in query.mentions] == [("Detroit", 2022), ("Valencia", 2022)]
    assert restrict_year(detect_events("eBPF", 2026), 2019).mentions == (
        EventMention(text="2019", year=2019),
    )


def test_strip_event_mentions_keeps_the_topic():
    question = "What did people say about eBPF at KubeCon EU 2019?"
    assert strip_event_mentions(question, detect_events(question, 2026)) == "What did people say about eBPF?"


HISTORY = [
    {"role": "user", "content": "Which talks covered platform engineering at KubeCon Valencia 2022?"},
    {"role": "assistant", "content": "Platform engineering was a big topic [1]."},
]


@pytest.mark.parametrize(
    ("follow_up", "standalone"),
    [
        ("What about Detroit?", "Which talks covered platform engineering at KubeCon Detroit?"),
        ("And at Paris 2024?", "Which talks covered platform engineering at KubeCon Paris 2024?"),
        ("Tell me more", "Which talks covered platform engineering at KubeCon Valencia 2022?"),
        ("What about security?", "What about security at Valencia 2022?"),
        (
            "Who gave the keynote on it?",
            "Who gave the keynote on it? (about: Which talks covered platform engineering) (at Valencia 2022)",
        ),
    ],
)
def test_follow_ups_are_condensed(follow_up, standalone):
    assert condense(follow_up, HISTORY, 2026) == standalone


@pytest.mark.parametrize(
    "question",
    ["What is eBPF?", "Were there any talks about WebAssembly?", "Did anyone say that Kubernetes is boring?"],
)
def test_standalone_questions_are_left_alone(question):
    assert not is_follow_up(question)
    assert condense(question, HISTORY, 2026) == question


def test_a_chain_of_follow_ups_keeps_the_original_topic():
    history = HISTORY + [
        {"role": "user", "content": "What about Detroit?"},
        {"role": "assistant", "content": "…"},
    ]
    assert (
        condense("And Paris?", history, 2026) == "Which talks covered platform engineering at KubeCon Paris?"
    )


def test_no_history_means_no_change():
    assert condense("What about Detroit?", None) == "What about Detroit?"
    assert condense("What about Detroit?", [{"role": "assistant", "content": "Hi"}]) == "What about Detroit?"


def test_history_items_must_be_messages():
    with pytest.raises(TypeError, match="role"):
        condense("What about Detroit?", ["Which talks covered platform engineering?"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("follow_up", "standalone"),
    [
        ("And WebAssembly?", "What about WebAssembly at Valencia 2022?"),
        ("Also security?", "What about security at Valencia 2022?"),
    ],
)
def test_a_new_topic_in_a_few_words_replaces_the_old_one(follow_up, standalone):
    # "And WebAssembly?" after a platform-engineering question is about WebAssembly, not both
    assert condense(follow_up, HISTORY, 2026) == standalone


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many people attended KubeCon Europe 2018?", "count"),
        ("How long was the flight to Salt Lake City?", "count"),
        ("What share of respondents run Kubernetes in production?", "count"),
        ("What was the official attendance of KubeCon NA 2025?", "count"),  # a head count, like "how many came"
        ("What was the turnout in Valencia?", "count"),
        ("Which Kubeflow release did Google announce in the keynote?", "version"),
        ("What Kubernetes version brought ephemeral containers to beta?", "version"),
        ("What did the release notes say about Windows?", "general"),
        ("Why did Spotify replace Hermes with gRPC?", "why"),
        ("What made the author unsure about going back?", "why"),
        ("What were the three big takeaways from KubeCon Detroit 2022?", "list"),
        ("Which topics did the Botkube recap cover?", "list"),
        ("Who chaired Istio Day in Amsterdam?", "who"),
        ("Which company won the End User Award?", "who"),
        ("Which band played at the party?", "who"),
        ("When was the all-attendee party?", "when"),
        ("On which day did the contributor summit happen?", "when"),
        ("On which dates did KubeCon Europe 2018 take place in Copenhagen?", "when"),
        ("Where was the all-attendee party held?", "where"),
        ("Which venue hosted KubeCon India 2025?", "where"),
        ("What did the Datadog recap say about platform engineering?", "general"),
        ("What is SpinKube?", "general"),
    ],
)
def test_the_kind_of_answer_a_question_wants(question, kind):
    assert question_kind(question) == kind


def test_questions_spread_over_posts():
    assert spans_posts("How did attendance grow from Amsterdam 2023 to London 2025?", detect_events("Amsterdam 2023 London 2025"))
    assert spans_posts("Compare the keynotes of both days", detect_events("Compare the keynotes"))
    assert not spans_posts("What is SpinKube?", detect_events("What is SpinKube?"))


def test_understand_restricts_by_the_event_argument_and_keeps_the_topic():
    question = understand("What was said about Backstage?", None, 2026, event="Detroit", year=None)
    assert question.events.mentions[0].city == "Detroit"
    assert question.topic == "What was said about Backstage?" and question.kind == "general"
    with pytest.raises(ValueError, match="Unrecognised event"):
        understand("What was said about Backstage?", None, 2026, event="Narnia")
    by_year = understand("What happened at KubeCon Detroit?", None, 2026, year=2022)
    assert by_year.events.mentions[0].year == 2022 and "Detroit" not in by_year.topic


def test_a_conversation_of_thousands_of_follow_ups_condenses_without_recursion():
    history = [{"role": "user", "content": "What did people say about eBPF at KubeCon Valencia 2022?"}]
    history += [{"role": "user", "content": "And Detroit?"}, {"role": "assistant", "content": "…"}] * 3000
    assert condense("And WebAssembly?", history) == "What about WebAssembly at Detroit?"

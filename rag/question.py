"""Understanding a question before retrieval: which events it names, and what a follow-up stands for.

Event mentions
--------------
``detect_events("What did people say about eBPF at KubeCon EU 2019?")`` finds one mention,
``EventMention(region="EU", year=2019)``. Cities imply their region ("Detroit" -> NA), a year next to a
city or region belongs to it ("Paris 2024", "2019 Barcelona"), and several mentions may appear
("Valencia vs Detroit"). Region words only count where people use them for events: "EU", "Europe",
"North America", "NA" (upper case), "China", "India", "Japan" -- never "us".

Relative years ("last year's Valencia", "this year", "two years ago") are resolved against the
*reference year*: the latest event year in the index (so answers don't drift with the wall clock, and
an index of older posts still reads naturally). A relative year is a soft hint: when it contradicts an
explicitly named city whose event the index does cover ("last year's Valencia" while the latest event
is 2026), the city wins, because the speaker's "last year" was relative to a date we don't know.
Explicit years are hard: "Paris 2022" is not answered from Paris 2024 posts.

Follow-ups
----------
``condense(question, history)`` turns a follow-up into a standalone question without calling the LLM
(a 0.5B model on 2 cores would spend seconds on it, and gets it wrong more often than these rules):
"What about Detroit?" after "Which talks covered platform engineering at Valencia?" becomes
"Which talks covered platform engineering at Detroit?"; an elliptical or pronoun-led follow-up
("Who gave it?") gets the previous question's topic and event appended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from rag.events import CITY_ALIASES, CITY_REGION, REGIONS
from rag.text import content_terms

_REGION_WORDS: list[tuple[re.Pattern, str]] = [(r.pattern(in_metadata=False), r.code) for r in REGIONS]
# "2019", "'19"; a short form only from '15 (the first KubeCon): "Datadog's '10 ways to…" is a title.
_YEAR_RE = re.compile(r"(?:(?<![\w.])(20[12]\d)|(?<![\d'])'(1[5-9]|2\d))(?![\w.])")
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "a": 1}
_RELATIVE_RE = re.compile(
    r"\b(?:(?P<last>last|previous|past) year(?:'s)?|(?P<this>this|current) year(?:'s)?|"
    r"(?P<next>next) year(?:'s)?|(?P<n>\d|one|two|three|four|five|a) years? ago(?:'s)?|"
    r"(?P<latest>latest|most recent|newest)\b)",
    re.I,
)
_VIRTUAL_RE = re.compile(
    r"\bvirtual\b|\bonline (?:edition|event|conference|kubecon)\b", re.I
)  # not "followed online"
_NEAR_CHARS = 24  # a year this close to a city/region (either side) belongs to it


@dataclass(frozen=True)
class EventMention:
    """One event a question names. Empty fields are unconstrained."""

    text: str  # as written, e.g. "KubeCon EU 2019", "last year's Valencia"
    year: int | None = None
    city: str = ""
    region: str = ""
    virtual: bool = False
    relative_year: bool = False  # year came from "last year" & co. (soft, see module doc)

    def matches(self, *, year: int | None, city: str, region: str, event: str = "") -> bool:
        if self.year is not None and year != self.year:
            return False
        if self.city and city.lower() != self.city.lower():
            return False
        if self.region and region != self.region:
            return False
        return not (self.virtual and "virtual" not in event.lower())

    def label(self) -> str:
        """A readable name for messages ("KubeCon EU 2019", "KubeCon Valencia")."""
        parts = ["KubeCon"]
        if self.region and not self.city:
            parts.append(self.region)
        if self.city:
            parts.append(self.city)
        if self.virtual:
            parts.append("(virtual)")
        if self.year:
            parts.append(str(self.year))
        return " ".join(parts)


@dataclass(frozen=True)
class EventQuery:
    """All event mentions of a question (a post matches when it matches any of them)."""

    mentions: tuple[EventMention, ...] = ()
    spans: tuple[tuple[int, int], ...] = field(default=(), compare=False)  # where they are in the text

    @property
    def is_empty(self) -> bool:
        return not self.mentions

    def matches(self, *, year: int | None, city: str, region: str, event: str = "") -> bool:
        if not self.mentions:
            return True
        return any(m.matches(year=year, city=city, region=region, event=event) for m in self.mentions)

    def label(self) -> str:
        return " / ".join(m.label() for m in self.mentions)


@dataclass
class _Hit:
    start: int
    end: int
    kind: str  # city | region | year | relative | virtual
    value: object
    used: bool = False


def _find_hits(text: str, reference_year: int | None) -> list[_Hit]:
    lowered = text.lower()
    hits: list[_Hit] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return all(e <= ts or s >= te for ts, te in taken)

    for city in sorted(CITY_REGION, key=len, reverse=True):
        for m in re.finditer(rf"\b{re.escape(city)}\b", lowered):
            if free(m.start(), m.end()):
                taken.append((m.start(), m.end()))
                hits.append(_Hit(m.start(), m.end(), "city", city))
    for alias, city in CITY_ALIASES.items():
        # Short aliases only next to "kubecon" or a year ("KubeCon LA", "SLC 2024").
        for m in re.finditer(rf"(?:kubecon\s+({alias})\b|\b({alias})\s+(?:20[12]\d|'\d\d)\b)", lowered):
            group = 1 if m.group(1) else 2
            s, e = m.start(group), m.end(group)
            if free(s, e):
                taken.append((s, e))
                hits.append(_Hit(s, e, "city", city))
    for pattern, region in _REGION_WORDS:
        for m in pattern.finditer(text):
            if free(m.start(), m.end()):
                taken.append((m.start(), m.end()))
                hits.append(_Hit(m.start(), m.end(), "region", region))
    for m in _YEAR_RE.finditer(text):
        year = int(m.group(1)) if m.group(1) else 2000 + int(m.group(2))
        hits.append(_Hit(m.start(), m.end(), "year", year))
    if reference_year is not None:
        for m in _RELATIVE_RE.finditer(text):
            if m.group("latest"):
                # "the latest KubeCon" -> the reference year, but only when it talks about an event
                if not re.search(r"\b(?:kubecon|event|conference)", lowered[m.end() : m.end() + 40]):
                    continue
                year = reference_year
            elif m.group("last"):
                year = reference_year - 1
            elif m.group("this"):
                year = reference_year
            elif m.group("next"):
                year = reference_year + 1
            else:
                n = m.group("n").lower()
                year = reference_year - (int(n) if n.isdigit() else _NUMBER_WORDS[n])
            hits.append(_Hit(m.start(), m.end(), "relative", year))
    for m in _VIRTUAL_RE.finditer(text):
        if re.search(
            r"\b(?:kubecon|event|conference|edition)", lowered[max(0, m.start() - 30) : m.end() + 30]
        ):
            hits.append(_Hit(m.start(), m.end(), "virtual", True))
    return sorted(hits, key=lambda h: h.start)


def _gap(a: _Hit, b: _Hit) -> int:
    return b.start - a.end if a.start <= b.start else a.start - b.end


def detect_events(text: str, reference_year: int | None = None) -> EventQuery:
    """Event mentions in free text (a question, or the ``event=`` argument of ``Assistant.ask``)."""
    hits = _find_hits(text, reference_year)
    anchors = [h for h in hits if h.kind in ("city", "region")]
    years = [h for h in hits if h.kind in ("year", "relative")]
    virtual = [h for h in hits if h.kind == "virtual"]
    # A region next to a city, or the city's own region anywhere in the question, names the same event
    # ("KubeCon NA Detroit", "the Shanghai contributors at KubeCon China 2023"): fold it into the city.
    cities = [h for h in anchors if h.kind == "city"]
    extra_positions: dict[int, list[_Hit]] = {id(c): [] for c in cities}
    kept = []
    for hit in anchors:
        if hit.kind == "region":
            same = [
                c for c in cities if CITY_REGION[str(c.value)] == hit.value or _gap(hit, c) <= _NEAR_CHARS
            ]
            if same:
                extra_positions[id(same[0])].append(hit)
                continue
        kept.append(hit)
    anchors = kept

    mentions: list[EventMention] = []
    spans: list[tuple[int, int]] = []
    for anchor in anchors:
        positions = [anchor, *extra_positions.get(id(anchor), [])]

        def distance(y: _Hit, positions=positions) -> int:
            return min(_gap(p, y) for p in positions)

        near = [y for y in years if not y.used and distance(y) <= _NEAR_CHARS]
        year_hit = min(near, key=distance) if near else None
        is_virtual = any(_gap(anchor, v) <= _NEAR_CHARS for v in virtual)
        start, end = anchor.start, anchor.end
        if year_hit:
            year_hit.used = True
            start, end = min(start, year_hit.start), max(end, year_hit.end)
        if anchor.kind == "city":
            city = str(anchor.value).title()
            region = CITY_REGION[str(anchor.value)]
        else:
            city, region = "", str(anchor.value)
        mentions.append(
            EventMention(
                text=text[start:end],
                year=int(year_hit.value) if year_hit else None,  # type: ignore[arg-type]
                city=city,
                region=region,
                virtual=is_virtual,
                relative_year=bool(year_hit and year_hit.kind == "relative"),
            )
        )
        spans.append((start, end))
        spans.extend((p.start, p.end) for p in positions[1:])
    for year_hit in years:  # years on their own: "in 2019", "last year's KubeCon"
        if year_hit.used:
            continue
        if year_hit.kind == "year" and not _looks_like_event_year(text, year_hit):
            continue
        mentions.append(
            EventMention(
                text=text[year_hit.start : year_hit.end],
                year=int(year_hit.value),  # type: ignore[arg-type]
                virtual=any(_gap(year_hit, v) <= _NEAR_CHARS for v in virtual),
                relative_year=year_hit.kind == "relative",
            )
        )
        spans.append((year_hit.start, year_hit.end))
    if not mentions and virtual:
        mentions.append(EventMention(text=text[virtual[0].start : virtual[0].end], virtual=True))
        spans.append((virtual[0].start, virtual[0].end))
    unique = list(dict.fromkeys(mentions))
    return EventQuery(tuple(unique), tuple(spans))


def _looks_like_event_year(text: str, hit: _Hit) -> bool:
    """A bare year names an event unless it is clearly something else ("Kubernetes 1.2022" is not a year)."""
    before = text[max(0, hit.start - 12) : hit.start].lower()
    return not re.search(r"(?:v|version|cve-|#)\s*$", before)


def restrict_year(query: EventQuery, year: int) -> EventQuery:
    """Apply an explicit ``year=`` argument: every mention gets that year (or a year-only mention)."""
    if query.is_empty:
        return EventQuery((EventMention(text=str(year), year=year),))
    return EventQuery(tuple(replace(m, year=year, relative_year=False) for m in query.mentions))


def soften_relative_years(query: EventQuery, is_covered) -> EventQuery:
    """Drop a relative year that contradicts a named city the index covers (see module doc)."""
    out = []
    for m in query.mentions:
        if m.relative_year and m.city and not is_covered(m) and is_covered(replace(m, year=None)):
            m = replace(m, year=None, relative_year=False)
        out.append(m)
    return EventQuery(tuple(out), query.spans)


def strip_event_mentions(text: str, query: EventQuery) -> str:
    """The question without its event words (what the question is *about*)."""
    out = text
    for start, end in sorted(query.spans, reverse=True):
        out = out[:start] + out[end:]
    out = re.sub(r"\b(?:kubecon|cloudnativecon)(?:\s*\+\s*\w+)?\b", " ", out, flags=re.I)
    out = re.sub(r"\b(?:at|in|from|during|of)\s+(?:the\s+)?(?=[?.!,]|$)", " ", out, flags=re.I)
    out = re.sub(r"\s+([?.!,])", r"\1", re.sub(r"\s+", " ", out))
    return out.strip(" ,")


# --- follow-up condensing ------------------------------------------------------------------------

_FOLLOW_UP_START = re.compile(
    r"^\s*(?:and|also|but|so|what about|how about|what else|anything else|more on|tell me more|same for|"
    r"same question for|why|how come|really|ok|okay)\b",
    re.I,
)
_ANAPHORA = re.compile(
    r"\b(?:it|its|they|them|their|those|these|he|she|his|her|him|the same|the above|that one|this one|"
    r"that talk|this talk|that post|this post|that event|this event)\b|\bthere\s*[?.!]*$",
    re.I,
)
# Words that make "And at Detroit?" / "What about security?" a follow-up shell around its new part.
_SHELL_WORDS = re.compile(
    r"\b(?:and|also|what|how|about|at|in|for|from|during|same|question|the|then|else|anything|more|"
    r"tell|me|on|please|kubecon|cloudnativecon|one|ones|event)\b|[?.!,]",
    re.I,
)
_WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<rest>.+?)\s*[?.!]*\s*$", re.I)
# "And WebAssembly?" / "Also security?": a new topic in a few words, asked the way the last question was.
_AND_TOPIC = re.compile(r"^\s*(?:and|also|but)\s+(?P<rest>(?:[\w'’.+#-]+\s*){1,4}?)\s*[?.!]*\s*$", re.I)
_RELATIVE_PHRASE = re.compile(r"\b(?:this|that|last|next) (?:year|edition|event|kubecon)\b", re.I)


def previous_user_questions(history: Sequence[dict] | None) -> list[str]:
    """The user's earlier messages, oldest first (OpenAI-style ``{"role", "content"}`` dicts)."""
    out = []
    for message in history or []:
        if not isinstance(message, dict):
            raise TypeError(
                "history must be a list of {'role': 'user'|'assistant', 'content': str} dicts, "
                f"got an item of type {type(message).__name__}"
            )
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str) and content.strip():
            out.append(content.strip())
    return out


def is_follow_up(question: str) -> bool:
    """Does the question lean on the conversation (pronouns, "what about …", nothing but an event)?"""
    if _FOLLOW_UP_START.search(question):
        return True
    without_relative = _RELATIVE_PHRASE.sub(" ", question)
    if _ANAPHORA.search(without_relative) and len(re.findall(r"\w+", question)) <= 12:
        return True
    return not content_terms(strip_event_mentions(question, detect_events(question)))


def condense(question: str, history: Sequence[dict] | None, reference_year: int | None = None) -> str:
    """A standalone version of ``question`` given the conversation ``history`` (see module doc)."""
    question = question.strip()
    earlier = previous_user_questions(history)
    if not earlier or not is_follow_up(question):
        return question
    # The previous question, itself condensed: a chain of follow-ups keeps the original topic. Built
    # forwards, one question at a time, so a conversation of any length needs no recursion.
    anchor = ""
    for previous in earlier:
        anchor = previous if not anchor or not is_follow_up(previous) else _with_anchor(previous, anchor, reference_year)
    return _with_anchor(question, anchor, reference_year)


def _with_anchor(question: str, anchor: str, reference_year: int | None) -> str:
    """``question`` (a follow-up) made standalone from ``anchor``, the previous question condensed."""
    anchor_events = detect_events(anchor, reference_year)
    own_events = detect_events(question, reference_year)
    own_topic = _SHELL_WORDS.sub(" ", strip_event_mentions(question, own_events))
    new_part = content_terms(own_topic)

    if not new_part:
        if own_events.is_empty:  # "Tell me more" -> the previous question again
            return anchor
        new_event = " and ".join(m.text for m in own_events.mentions)
        if anchor_events.is_empty:  # "And Detroit?" after an event-less question
            return f"{anchor.rstrip(' ?.!')} at {new_event}?"
        return _replace_spans(anchor, anchor_events.spans, new_event)

    what_about = _WHAT_ABOUT.match(question) or _AND_TOPIC.match(question)
    event_text = " and ".join(m.text for m in anchor_events.mentions)
    if what_about:  # "What about security?" -> the new topic, at the previous event
        rest = what_about.group("rest").rstrip(" ?.!")
        if own_events.is_empty and event_text:
            return f"What about {rest} at {event_text}?"
        return f"What about {rest}?"

    anchor_topic = strip_event_mentions(anchor, anchor_events).rstrip(" ?.!")
    parts = [question.rstrip()]
    if _ANAPHORA.search(_RELATIVE_PHRASE.sub(" ", question)) or _FOLLOW_UP_START.search(question):
        parts.append(f"(about: {anchor_topic})")
    if own_events.is_empty and event_text:
        parts.append(f"(at {event_text})")
    return " ".join(parts)


def _replace_spans(text: str, spans: Iterable[tuple[int, int]], replacement: str) -> str:
    spans = sorted(spans)
    if not spans:
        return text
    first_start = spans[0][0]
    out = text
    for start, end in reversed(spans):
        out = out[:start] + (replacement if start == first_start else "") + out[end:]
    return re.sub(r"\s+(?:and|or|vs\.?)\s*(?=[?.!]|$)", "", re.sub(r"\s+", " ", out)).strip()


# --- what kind of answer the question wants ------------------------------------------------------

QuestionKind = Literal["count", "version", "why", "list", "who", "when", "where", "general"]

_KIND_PATTERNS: tuple[tuple[QuestionKind, re.Pattern], ...] = (
    (
        "count",
        re.compile(
            r"\b(?:how (?:many|much|large|big|long|often)|what (?:percentage|share|number|fraction|proportion)|"
            r"(?:the )?number of|what (?:was|were|is|are) (?:the )?(?:\w+ ){0,2}(?:attendance|turnout|head ?count))\b",
            re.I,
        ),
    ),
    (
        "version",  # "Which Kubeflow release…", "What Kubernetes version…": a release number answers
        re.compile(r"\b(?:which|what) (?:new )?(?:[\w.-]+ ){0,2}(?:version|release)\b(?! notes?\b)", re.I),
    ),
    (
        "why",
        re.compile(
            r"^\W*(?:and |so |but )?(?:why\b|how come\b)|\bwhy\b|\bwhat (?:made|makes|was the reason|is the reason|"
            r"were the reasons|are the reasons|motivated|drove)\b|\bfor what reason\b|\breasons? (?:for|why|behind)\b",
            re.I,
        ),
    ),
    (
        "list",
        re.compile(
            r"\b(?:what|which|name|list)\b[^?]{0,40}?\b(?:(?:main|key|big|biggest|top|major|two|three|four|five|six|"
            r"seven|several|other|different|\d+)\s+)*(?:takeaways|trends|highlights|themes|topics|lessons|points|"
            r"things|announcements|talks|sessions|projects|tools|sections|areas|ideas|predictions|requirements|"
            r"roles|recommendations|tips|learnings|observations|features|steps|reasons|challenges|goals|"
            r"questions|categories|tracks|parts|days)\b|\blist (?:of |the |all )|\bwhat (?:else|other)\b",
            re.I,
        ),
    ),
    (
        "who",
        re.compile(
            r"^\W*(?:and |so |but )?(?:who|whom|whose)\b|\bwho (?:was|were|is|are|gave|won|presented|spoke|"
            r"chaired|hosted|opened|ran|led|organi[sz]ed|played|performed|received)\b|\b(?:which|what) "
            r"(?:person|people|speakers?|compan(?:y|ies)|teams?|bands?|musicians?|artists?|dj|organi[sz]ations?|"
            r"vendors?|maintainers?|authors?|keynote speakers?|hosts?|chairs?|winners?|sponsors?)\b",
            re.I,
        ),
    ),
    (
        "when",
        re.compile(
            r"^\W*(?:and |so |but )?when\b|\bwhat (?:date|day|time|year|month)s?\b|\bon which (?:day|date)s?\b",
            re.I,
        ),
    ),
    (
        "where",
        re.compile(
            r"^\W*(?:and |so |but )?where\b|\b(?:which|what) (?:city|venue|location|place|country|hotel|room|"
            r"building|hall|restaurant)\b",
            re.I,
        ),
    ),
)
_SPREAD_RE = re.compile(
    r"\b(?:compare[ds]?|comparison|differ(?:ed|ence|ences|ent)?|versus|vs\.?|both|each of|between\b[^?]+\band\b|"
    r"from\b[^?]+\b(?:to|through)\b[^?]+\b(?:20[12]\d|europe|eu|na|north america)|grow|grew|change[ds]?|"
    r"evolve[ds]?)\b",
    re.I,
)


def question_kind(question: str) -> QuestionKind:
    """What kind of answer the question wants: a number, a release number, a reason, a list, a person or
    company, a date, a place, or anything else ("general"). The first kind whose pattern matches wins, in that order."""
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(question):
            return kind
    return "general"


def spans_posts(question: str, events: EventQuery) -> bool:
    """Is the answer spread over several posts: two different events named ("Austin 2017 … Barcelona
    2019"; not "2023 … in Shanghai", which one event can be), or "compare", "both", "how did … grow"?"""
    mentions = events.mentions
    different = any(_differ(a, b) for i, a in enumerate(mentions) for b in mentions[i + 1 :])
    return different or bool(_SPREAD_RE.search(question))


def _differ(a: EventMention, b: EventMention) -> bool:
    """Can no single event match both mentions?"""
    return any(
        x and y and x != y for x, y in ((a.year, b.year), (a.city.lower(), b.city.lower()), (a.region, b.region))
    )


@dataclass(frozen=True)
class Question:
    """A question as the pipeline understands it (see :func:`understand`)."""

    asked: str  # as the user wrote it
    standalone: str  # condensed with the conversation history
    topic: str  # the standalone question without its event words (what it is *about*)
    events: EventQuery  # the events it (or the ``event``/``year`` arguments) restricts retrieval to
    kind: QuestionKind
    spread: bool  # the answer is spread over several posts (two events, "compare", "both", …)


def understand(
    question: str,
    history: Sequence[dict] | None,
    reference_year: int | None,
    event: str | None = None,
    year: int | None = None,
) -> Question:
    """Condense a follow-up, find the events (from the question, or the ``event``/``year`` arguments),
    strip them from the topic, and classify the kind of answer wanted.

    Raises ``ValueError`` for an ``event`` argument that names no event.
    """
    standalone = condense(question, history, reference_year)
    own_events = detect_events(standalone, reference_year)
    events = own_events
    if event is not None and event.strip():
        events = detect_events(event, reference_year)
        if events.is_empty:
            raise ValueError(
                f"Unrecognised event {event!r}: name a city, region or year, e.g. 'KubeCon EU 2022', "
                "'Detroit' or 'Paris 2024'."
            )
    if year is not None:
        events = restrict_year(events, year)
    # Once the event restricts retrieval, its words ("KubeCon EU 2019") only blur the topic.
    topic = strip_event_mentions(standalone, own_events)
    topic = topic if content_terms(topic) else standalone
    return Question(
        asked=question,
        standalone=standalone,
        topic=topic,
        events=events,
        kind=question_kind(standalone.split(" (about:")[0]),  # a follow-up's own words, not its anchor's
        spread=spans_posts(standalone, events),
    )

"""When to say "I couldn't find that": decided by whether the evidence holds an answer, in one place.

An answer needs passages that (a) are about what was asked and (b) hold the kind of thing asked for.

* **About what was asked**: the question's terms (its topic words, without the question words and
  the event, which retrieval already filtered on) are found in the passage, its heading path, or the
  post's title, author and event, weighted by how rare each term is in the index (BM25's idf): "Which
  *band* played at the all-attendee *party*?" over a passage about the party that names no band covers
  the common words and misses the rare one that matters. The share must reach
  ``settings.answer_min_coverage``.
* **The kind of thing asked for** (:func:`rag.question.question_kind`): a "how many" needs a number the
  question did not give (not a year); "which release" a release number ("Kubeflow 0.1"); "who" a
  name; "when" a date, day or time; "where" a place or a name; a list two or more entries. "Why" and
  open questions ask for no particular kind here (verification asks a "why" answer for a reason:
  :func:`answer_test`).

The same test runs twice. Before the model is called, over every passage: when none passes, the
answer abstains at once (no model call, no invented answer). After verification, over the passages the
answer's sentences rest on: a fluent answer built on passages that do not hold the answer is not one.
And when the model says it doesn't know, or nothing it wrote holds, while a passage passes the test,
that passage's own words answer instead (``settings.override_refusals``: a small model refuses with
the answer in hand; a user whose strong model's refusals are right can turn it off).

Also here: a question resting on a multi-word name that none of the retrieved *posts* mentions ("What
did Tim Hockin say…?") abstains before the model is called; the whole post is searched, not just the
retrieved chunks, so a refusal never claims a post does not mention a name that it does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from rag.events import cities_in, event_aliases, without_other_events
from rag.evidence import Evidence, Passage
from rag.question import Question, QuestionKind
from rag.settings import AnsweringSettings
from rag.text import STOP_WORDS, answer_numbers, content_terms, names, split_sentences, stems
from rag.verify import Window, is_english

# Words that say what kind of answer is wanted, or where it should come from, not what it is about.
_QUESTION_WORDS = frozenset(
    content_terms(
        "how many much number percentage share fraction proportion who whom whose why reason reasons when "
        "where which what date day time year month city venue location place list name names big large long "
        "main key top major biggest three four five two several kind sort type according per write wrote "
        "author writer blogger notes note held hold located take took taking place happen happened came come"
    )
)
# "How many people": the thing counted, in the words posts use for it.
_PEOPLE = frozenset(
    stems("people attendees attendance participants visitors folks humans delegates attended")
)
_CROWD = frozenset(stems("audience crowd"))  # "how big was the audience": a head count (not "audiences who had dozens of questions")
_COUNTED_SYNONYMS = (
    frozenset(stems("talks sessions presentations keynotes lightning conferences")),  # Bedrock: "300 conferences"
    frozenset(stems("companies organizations organisations vendors sponsors members")),
    frozenset(stems("projects tools")),
)
COUNT_WINDOW_BEFORE, COUNT_WINDOW_AFTER = 3, 4  # "attendance reached 12,000"; "4,300 people met"
COUNT_WINDOW_WIDE = 5  # either side, for counts of anything else ("9 clusters", "a top 10 of failure scenarios")
_SHARE_RE = re.compile(r"\d[\d,.]*\s*(?:%|percent\b|per cent\b)", re.I)
_COUNT_FILLER = frozenset(stems("the a an and or of different other more total"))
_COUNT_NOUN_RE = re.compile(r"\b(?:how many|(?:the )?number of)\s+([^?.!,;]*)", re.I)
_COUNT_STOP = frozenset(
    ["did", "do", "does", "were", "was", "are", "is", "have", "has", "had", "will", "would", "can", "could", "came", "come", "attended", "went", "change", "changed", "grow", "grew", "in", "at", "of", "from", "for", "on", "during", "to", "between", "by", "that", "who", "which"]
)
_NUMBER = r"(?:\d[\d,.]*\+?\s*[kKmM]?|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?|millions?|half)"
_QUANTITY_UNITS = {  # what "how much / long / big / often, what share" wants after its number
    "share": r"%|percent\b|per cent\b",
    "much": r"%|percent\b|[$€£]|usd\b|eur\b|dollars?\b|euros?\b|[kmgt]b\b|times\b|x\b",
    "long": r"(?:milli)?seconds?\b|secs?\b|minutes?\b|mins?\b|hours?\b|hrs?\b|h\b|days?\b|weeks?\b|months?\b|years?\b|ms\b",
    "big": r"%|[kmgt]b\b|nodes?\b|cores?\b|cpus?\b|gpus?\b|pods?\b|clusters?\b|servers?\b|machines?\b|vms?\b|"
    r"instances?\b|containers?\b|services?\b|people\b|attendees?\b|members?\b|users?\b|requests?\b|files?\b",
    "often": r"times\b|per\b|every\b|a (?:day|week|month|year)\b",
}
_UNITS_BEFORE = {"much": r"[$€£]|\b(?:usd|eur|gbp)"}  # "$150", "USD 550 million": the unit written first
_QUANTITY_QUESTION = (
    ("share", re.compile(r"\bwhat (?:percentage|share|fraction|proportion)\b", re.I)),
    ("much", re.compile(r"\bhow much\b", re.I)),
    ("long", re.compile(r"\bhow long\b", re.I)),
    ("big", re.compile(r"\bhow (?:big|large)\b", re.I)),
    ("often", re.compile(r"\bhow often\b", re.I)),
)
_NUMBER_WORD_RE = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?|millions?|"
    r"third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|twice|half)\b",
    re.I,
)
_DATE_RE = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"morning|afternoon|evening|night|tonight|today|yesterday|tomorrow|weekend|week|day\s*\d|first day|"
    r"second day|last day|(?:19|20)\d\d|\d{1,2}(?::\d\d)?\s*(?:am|pm)|\d{1,2}(?:st|nd|rd|th))\b",
    re.I,
)
_VERSION_RE = re.compile(r"\b[vV]?\d+\.\d+(?:\.\d+)*\b(?!\s*(?:%|percent|hours?|days?|million|billion|[kKmM]\b))")
_PLACE_RE = re.compile(
    r"\b(?:venue|hotel|hall|cent(?:er|re)|park|museum|restaurant|bar|room|stadium|arena|beach|palace|finca|"
    r"club|street|square|building|campus|office|expo|convention)\b",
    re.I,
)
_NO_ANSWER = {
    "count": "The recaps I found don't give that number.",
    "version": "The recaps I found don't name that release.",
    "who": "The recaps I found don't say who.",
    "when": "The recaps I found don't say when.",
    "where": "The recaps I found don't say where.",
}


@dataclass(frozen=True)
class Answerability:
    ok: bool
    coverage: float  # idf-weighted share of the question's terms found (see module doc)
    reason: str = ""  # why not, in words a user can read


def focus_terms(topic: str, idf=None) -> list[str]:
    """The question's topic terms (stemmed), without the words that only say what kind of answer is wanted.

    A hyphenated compound counts once, in the form the index knows: as a whole where posts write it so
    ("all-attendee party"), else by its parts ("AI-related" where posts write "AI related"). ``idf``
    tells what the index knows: a term it has never seen has the highest idf.
    """
    terms = content_terms(topic)
    unseen = idf("\x00") if idf is not None else None
    drop: set[str] = set()
    for word in re.findall(r"[\w'’]+(?:[-/][\w'’]+)+", topic):
        whole = content_terms(word.replace("/", "-"))[:1]
        parts = set(content_terms(" ".join(re.split(r"[-/]", word))))
        if whole and unseen is not None and idf(whole[0]) < unseen - 1e-9:
            drop |= parts - set(whole)
        else:
            drop |= set(whole) - parts
    return list(dict.fromkeys(t for t in terms if t not in drop and t not in _QUESTION_WORDS))


def context_of(passage: Passage) -> str:
    """What a passage is known by besides its words: post title, author, event, headings and post id
    (a company blog's name is often only in its id: "percona-kubecon-amsterdam-2023-experience")."""
    chunk = passage.chunk
    slug = re.sub(r"[-_]+", " ", chunk.doc_id)
    return f"{chunk.title} {chunk.author} {chunk.event} {event_aliases(chunk.event)} {passage.heading} {slug}"


_SUFFIXES = ("e", "s", "es", "er", "or", "ee", "ees", "ship", "wid", "ing", "ed", "ion", "ation", "ance", "ence",
             "ment", "al", "ly", "ive", "ist", "ism")  # fmt: skip


def _matches(term: str, found: set[str]) -> bool:
    """Same stem, or the same stem with a derivational ending (member/membership, attend/attende,
    world/worldwid); not any shared prefix (party is not participant)."""
    if term in found:
        return True
    if len(term) < 4:
        return False
    for other in found:
        short, long = (term, other) if len(term) <= len(other) else (other, term)
        if len(short) >= 4 and long.startswith(short) and long[len(short) :] in _SUFFIXES:
            return True
    return False


def coverage(focus: Sequence[str], texts: Iterable[str], idf) -> float:
    """Idf-weighted share of ``focus`` found among the terms of ``texts`` (1.0 when there is no focus)."""
    if not focus:
        return 1.0
    found: set[str] = set()
    for text in texts:
        found.update(stems(text))
    if found & _PEOPLE:  # "4,300 people met" covers "how many attended"
        found |= _PEOPLE
    weights = {t: max(idf(t), 0.1) for t in focus}
    return sum(w for t, w in weights.items() if _matches(t, found)) / sum(weights.values())


_ATTENDANCE_RE = re.compile(r"\b(?:attendance|turnout|head ?count)\b", re.I)


def counted_things(question: str) -> set[str]:
    """What a "how many X …" question counts (stems of X; the people words for "how many people/came")."""
    match = _COUNT_NOUN_RE.search(question)
    counted: list[str] = []
    for word in (match.group(1).split() if match else []):  # up to three words, to the verb
        if word.lower() in _COUNT_STOP or len(counted) == 3:
            break
        counted.append(word)
    words = set(stems(" ".join(counted))) - _COUNT_FILLER
    if not words or words & _PEOPLE or _ATTENDANCE_RE.search(question):  # "in-person attendance … vs the number of registrations"
        words |= _PEOPLE
    for group in _COUNTED_SYNONYMS:
        if words & group:
            words |= group
    return words


def counts(text: str, question: str, lead_in: str = "") -> bool:
    """Does ``text`` give a number for what the question counts?

    "How many people" needs a number with a word for people at most three words before it or four after
    ("4,300 people met", "attendance reached 12,000"), since stray numbers ("80% of the ones I saw", "our
    2 days") pass for attendance; "how many X" of anything else a number (posts count talks as
    "sessions" or "conferences"); "how long" a number with a unit of time ("20-hour flight"); "how much"
    one with a currency (written before or after it: "$150", "150 dollars"), a percentage or a size;
    "how big/large" one with a size ("20,000+ cores"); "what share" a percentage. Years and the
    question's own numbers are not answers. The counted word may stand in ``lead_in``, the sentence
    before (one passage is a sentence or two adjacent ones); the number must be in ``text``.
    """
    if not answer_numbers(text, question) and not _NUMBER_WORD_RE.search(text):
        return False
    for unit, pattern in _QUANTITY_QUESTION:
        if unit == "big" and set(stems(question)) & (_PEOPLE | _CROWD):
            break  # "how big was the audience" is a head count: "9 clusters across 100 instances" is not one
        if pattern.search(question):
            after = re.search(rf"{_NUMBER}\s*-?\s*(?:{_QUANTITY_UNITS[unit]})", text, re.I)
            before = unit in _UNITS_BEFORE and re.search(rf"(?:{_UNITS_BEFORE[unit]})\s*\d", text, re.I)
            return bool(after or before)
    if not re.search(r"\bhow many\b|\bnumber of\b|\battendance\b|\bturnout\b|\bhead ?count\b|\bhow (?:big|large)\b", question, re.I):
        return True  # "what was the attendance" counts people, like "how many attended"
    wanted = counted_things(question)
    said = _SHARE_RE.sub(" ", text)  # a share is not a count: "roughly 80% of the ones I wanted to see"
    # A number counts what was asked when a word for it stands near: "4,300 people met", "more than 300
    # conferences" (talks), not "two more just after" three clauses from "talks". Talks, projects and
    # clusters get a wider window than head counts, where stray numbers most often pass for attendance.
    before, after = (COUNT_WINDOW_BEFORE, COUNT_WINDOW_AFTER) if wanted & _PEOPLE else (COUNT_WINDOW_WIDE, COUNT_WINDOW_WIDE)
    lead = re.findall(r"[\w'+#.,$€£-]+", _SHARE_RE.sub(" ", lead_in))
    tokens = lead + re.findall(r"[\w'+#.,$€£-]+", said)
    given = answer_numbers(said, question)
    for i in range(len(lead), len(tokens)):  # a number of what is said, its noun maybe in the lead-in
        token = tokens[i]
        leading = re.match(r"\d[\d,.]*[kKmM]?", token)
        value = leading.group(0).replace(",", "").rstrip(".") if leading else ""
        if not (value in given or _NUMBER_WORD_RE.fullmatch(token.lower())):
            continue
        if _counts_else(tokens[i + 1 : i + 2], wanted):
            continue  # "4300 people met at Bella Center, a huge conference place" counts people, not talks
        near = set(stems(" ".join(tokens[max(0, i - before) : i] + tokens[i + 1 : i + 1 + after])))
        if any(_matches(w, near) for w in wanted):
            return True
    return False


def _counts_else(following: list[str], wanted: set[str]) -> bool:
    """Is the word right after a number one for another counted thing than ``wanted`` (people for a
    question about talks, talks for one about people)? That word says what the number counts."""
    said = set(stems(" ".join(following)))
    if not said or any(_matches(w, said) for w in wanted):
        return False
    return any(said & group for group in (_PEOPLE, *_COUNTED_SYNONYMS))


_AT_NAME_RE = re.compile(r"\b(?:at|in|near|inside|outside|to) (?:the )?([A-Z][\w'’-]+(?: (?:de |of )?[A-Z][\w'’-]+)*)")


def names_a_place(sentence: str, question: str) -> bool:
    """Does a sentence say where: a word for a place ("a museum", "the Sheraton's bar"), a city the
    question did not name, or a name after "at" / "in" ("at Fira Gran Via")? Any other name is no
    place: "the CNCF-hosted co-located events (ArgoCon, BackstageCon…)" says nothing of a venue."""
    if _PLACE_RE.search(sentence) or cities_in(sentence) - cities_in(question):
        return True
    given = names(question) | _NOT_NAMES
    if not is_english(sentence):  # "vers GitHub Actions": no English "to" to find; any new name stands
        return bool(names(sentence) - given)
    return any(names(m.group(1)) - given for m in _AT_NAME_RE.finditer(sentence))


def holds_kind(
    kind: QuestionKind,
    text: str,
    question: str,
    entries: int = 1,
    about: Sequence[str] = (),
    context: str = "",
    lead_in: str = "",
) -> bool:
    """Does ``text`` hold the kind of thing the question asks for? (See the module doc.)

    ``about``: the question's focus terms. A name, date or place must then stand in a sentence that also
    has one of them ("the Program Committee *chairs*, Mitch Connors and Faseela K." for "Who chaired
    Istio Day?"), or under a heading that has one (``context``), not anywhere in the passage: any passage
    names somebody. ``lead_in``: the passage's sentence before ``text``, where a count's noun may stand
    ("A lot of people are using multiple Kubernetes clusters. For example, Zalando uses 80.").
    """
    if kind == "list":
        return entries >= 2
    if kind not in ("count", "who", "when", "where", "version"):
        return True
    kept = (without_other_events(s.text, question) for s in split_sentences(text))
    sentences = [s for s in kept if s]
    if kind == "count":
        return bool(sentences) and counts(" ".join(sentences), question, lead_in)
    around = set(stems(context))
    relation = relation_terms(question) if kind != "version" else set()  # releases are "out", "brought", "shipped"…
    for sentence in sentences:
        own = set(stems(sentence))
        if about and not any(_matches(t, own | around) for t in about):
            continue
        if relation and not any(_matches(t, own | around) for t in relation):
            continue  # "who *won*" needs a sentence about winning, not just one with a name
        if kind == "who" and (names(sentence) - names(question)) - _NOT_NAMES:
            return True
        if kind == "version" and _VERSION_RE.search(sentence):
            return True
        if kind == "when" and _DATE_RE.search(sentence):
            return True
        if kind == "where" and names_a_place(sentence, question):
            return True
    return False


# Capitalised words that name no one: days, months, the conference itself.
_NOT_NAMES = frozenset(
    content_terms(
        "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
        "august september october november december kubecon cloudnativecon kubernetes"
    )
)
_AUXILIARIES = frozenset(["did", "does", "do", "was", "were", "is", "are", "has", "have", "had", "will", "would", "can", "could"])
# The relation a who/where/when question asks about, in the words posts use for it.
_RELATIONS = {
    "won": "won win wins winner winners winning",
    "win": "won win wins winner winners winning",
    "played": "played play plays performed performing band dj music musician",
    "performed": "played play performed performing band dj music",
    "gave": "gave give given gives delivered presented spoke",
    "delivered": "gave delivered presented spoke",
    "presented": "presented presenting gave delivered spoke",
    "spoke": "spoke speak speaking speaker speakers talk talked gave presented keynote",
    "held": "held hold hosted venue located",
    "hosted": "hosted host hosting held co-hosted organized organised",
    "opened": "opened open opening kicked welcome",
    "chaired": "chaired chair chairs chairing",
    "organized": "organized organised organizing organiser organizer organizers hosted",
}
_WH_VERB_RE = re.compile(
    r"^\W*(?:and |so |but )?(?:who|whom|which\s+[\w-]+(?:\s+or\s+[\w-]+)?|what\s+[\w-]+)\s+([a-z]+)\b", re.I
)
_TRAILING_VERB_RE = re.compile(r"\b(held|hosted|organi[sz]ed|located)\s*\??\s*$", re.I)


def relation_terms(question: str) -> set[str]:
    """The stems a sentence must have to answer a who/where/when question about a relation ("Which band
    *played*…?", "Who *won*…?", "Where was it *held*?"); empty when the question names no such verb."""
    match = _WH_VERB_RE.search(question) or _TRAILING_VERB_RE.search(question)
    verb = match.group(1).lower() if match else ""
    if not verb or verb in _AUXILIARIES:
        trailing = _TRAILING_VERB_RE.search(question)
        verb = trailing.group(1).lower() if trailing else ""
    if not verb or verb in _AUXILIARIES or verb in STOP_WORDS:
        return set()
    return set(stems(_RELATIONS.get(verb, verb)))


def kind_test(question: Question) -> Callable[[str], bool] | None:
    """``text -> bool``: does a text hold the kind of thing the question asks for? ``None`` for the kinds
    that ask for nothing checkable in one sentence (why, list, open questions)."""
    if question.kind not in ("count", "version", "who", "when", "where"):
        return None
    return partial(holds_kind, question.kind, question=question.standalone, about=focus_terms(question.topic))


def answer_test(question: Question) -> Callable[[str], bool] | None:
    """``text -> bool`` for verification: does an answer sentence hold what was asked? :func:`kind_test`,
    and for a "why" question a reason (:func:`gives_reason`).

    Only verification asks for a reason: a sentence without one gives way to a passage window that has
    one ("…due to moral reasons, business goals, or regulation requirements…" for a model line that
    kept only "it's clear that sustainability is going to become a major factor"). Abstention does not:
    posts give reasons in words no pattern lists, so a missing "because" is no ground for refusing.
    """
    if question.kind == "why":
        return gives_reason
    return kind_test(question)


_REASON_RE = re.compile(
    r"\b(?:because|since|due to|owing to|thanks to|caus(?:e|es|ed|ing)|reasons?|so that|in order to|as a result|"
    r"therefore|thus|hence|which (?:means|meant)|(?:led|leads|lead) to|result(?:s|ed)? in|driven by|motivat\w*|"
    r"allow(?:s|ed)?|enabl(?:e|es|ed)|help(?:s|ed)?|makes? it|made it|to (?:avoid|reduce|prevent|make|keep|get|save|"
    r"improve|ensure|support|enable|allow)|otherwise|instead|(?:too|not) (?:\w+ ){0,2}(?:slow|expensive|costly|"
    r"complex|performant|reliable|secure|scalable|stable|mature)|limited by|struggl\w*|(?:had|has|have) trouble|"
    r"(?:issues?|problems?) with|ran into|risks?|hard to|difficult|could(?:n't| not)|can(?:'t|not))\b",
    re.I,
)
_LEADING_CONNECTIVE_RE = re.compile(r"^\W*(?:because|since|as|so|that's because|this is because)\b,?\s*", re.I)


def gives_reason(text: str) -> bool:
    """Does a sentence give a reason (a cause, a purpose, a shortcoming), beyond a "Because" the model put
    in front of a line that states none?"""
    return bool(_REASON_RE.search(_LEADING_CONNECTIVE_RE.sub("", text)))


def judge_passages(
    kind: QuestionKind,
    topic: str,
    question: str,
    passages: Sequence[Passage],
    idf,
    settings: AnsweringSettings,
    translations: Mapping[str, str] | None = None,
) -> Answerability:
    """Does any one passage hold an answer? (Before the model is called.)

    A passage in another language than the question is word-matched with the question in its language
    (``translations``: the topic by post, :mod:`rag.crosslingual`); without one it passes on the kind of
    answer alone, and the model reads it.
    """
    focus = focus_terms(topic, idf)
    best = Answerability(False, 0.0, _NO_ANSWER.get(kind, ""))
    for passage in passages:
        texts = [s.display for s in passage.sentences]
        share = _share(focus, [passage], [*texts, context_of(passage)], idf, translations)
        entries = len(passage.sentences) if passage.outline else _entries(passage)
        held = holds_kind(kind, " ".join(texts), question, entries, focus, passage.heading)
        if held and share >= settings.answer_min_coverage:
            if share > best.coverage or not best.ok:
                best = Answerability(True, share)
        elif not best.ok and share > best.coverage:
            best = Answerability(False, share, best.reason)
    return best


def judge_answer(
    kind: QuestionKind,
    topic: str,
    question: str,
    windows: Sequence[Window],
    idf,
    settings: AnsweringSettings,
    said_texts: Sequence[str] | None = None,
    evidence: Evidence | None = None,
) -> Answerability:
    """Do the windows an answer rests on hold the answer? (After verification.)

    The kind of thing asked for must be in what the answer says (``said_texts``, by default the windows'
    words); the question's terms may be anywhere in the windows' passages and context.
    """
    if not windows:
        return Answerability(False, 0.0, _NO_ANSWER.get(kind, ""))
    passages = list({id(w.passage): w.passage for w in windows}.values())
    if evidence is not None:  # an outline is about its post: the post's other passages count with it
        outlined = {p.doc_id for p in passages if p.outline}
        passages += [p for p in evidence.passages if p.doc_id in outlined and p not in passages]
    texts = [s.display for p in passages for s in p.sentences] + [context_of(p) for p in passages]
    share = _share(focus_terms(topic, idf), passages, texts, idf, evidence.translations if evidence else None)
    said = " ".join(said_texts) if said_texts is not None else " ".join(w.text for w in windows)
    entries = sum(len(w.sentences) if w.passage.outline else 1 for w in windows)
    if kind == "list":
        entries = max(entries, max(_entries(w.passage) for w in windows))
    headings = " ".join(p.heading for p in passages)
    lead_in = sentence_before(windows[0]) if kind == "count" else ""
    if not holds_kind(kind, said, question, entries, focus_terms(topic, idf), headings, lead_in):
        return Answerability(False, share, _NO_ANSWER.get(kind, ""))
    return Answerability(share >= settings.answer_min_coverage, share)


def sentence_before(window: Window) -> str:
    """The post's sentence just before a window's last one, when its passage shows it (else "")."""
    sentences = window.passage.sentences
    last = window.sentences[-1]
    i = next((i for i, s in enumerate(sentences) if s is last), 0)
    before = sentences[i - 1] if i > 0 else None
    if before is None or before.chunk.doc_id != last.chunk.doc_id or not 0 <= last.start - before.end <= 2:
        return ""
    return before.display


def _share(
    focus: Sequence[str], passages: Sequence[Passage], texts: Sequence[str], idf, translations: Mapping[str, str] | None
) -> float:
    """The question's share in ``texts``. Passages in another language are read with the question in
    theirs when there is one, not with its English words ("band" is no "bande passante"); without a
    translation they are not word-matched (1.0)."""
    if all(passage_is_english(p) for p in passages):
        return coverage(focus, texts, idf)
    theirs = [translations[p.doc_id] for p in passages if translations and p.doc_id in translations]
    if not theirs:
        return 1.0
    return max(coverage(focus_terms(t, idf), texts, idf) for t in theirs)


def passage_is_english(passage: Passage) -> bool:
    return is_english(" ".join(s.display for s in passage.sentences))


def _entries(passage: Passage) -> int:
    """List entries a passage holds: its list items, else its sentences' comma-separated parts."""
    items = sum(s.kind == "item" for s in passage.sentences)
    if items >= 2:
        return items
    return max((len(re.split(r",|\band\b|;", s.display)) for s in passage.sentences), default=0)


def names_not_in(topic: str, posts: Iterable[tuple[str, str]]) -> list[str]:
    """Multi-word names the question depends on ("Tim Hockin", "CNCF End User Award") that none of the
    ``posts`` mentions; ``posts`` are ``(text, context)`` pairs: each retrieved post's whole text and its
    title, event, author and id.

    "What did Tim Hockin say in his keynote?" over posts that never name him has no grounded answer,
    however on-topic the posts are: a model asked anyway attributes what they do say to him. Single
    capitalised words are not checked (a question's "GA" or "Besides" is not a premise); ``topic`` is the
    question without its event words, which retrieval filters on and posts rarely repeat.

    A name counts as mentioned when at least half its words are, its longest word among them ("Bedrock
    Streaming" where posts say "Bedrock"), and a word may sit inside a handle or post id ("Adit Modi" is
    the author of "aditmodi-first-in-person-…", "Alex Moss" writes as "@alexdmoss").
    """
    wanted = [match.group(1).strip(" '’") for match in _MULTI_WORD_NAME_RE.finditer(topic)]
    if not wanted:  # most questions: no need to stem the retrieved posts
        return []
    known: set[str] = set()
    handles: set[str] = set()
    for text, context in posts:
        known.update(content_terms(f"{text} {context} {event_aliases(context)}"))
        handles.update(w for w in re.findall(r"[a-z0-9]+", context.lower()) if len(w) >= 6)
    missing = []
    for name in wanted:
        terms = list(dict.fromkeys(content_terms(name)))
        found = {t for t in terms if t in known or (len(t) >= 3 and any(t in h for h in handles))}
        longest = max(terms, key=len, default="")
        if terms and not (2 * len(found) >= len(terms) and longest in found):
            missing.append(re.sub(r"['’]s$", "", name))
    return missing


_MULTI_WORD_NAME_RE = re.compile(
    r"(?<![.?!]\s)(?<!^)\b([A-Z][\w'’-]*(?:\s+(?:[A-Z][\w'’-]*|of|the|de|van|von)){0,3}\s+[A-Z][\w'’-]*)"
)

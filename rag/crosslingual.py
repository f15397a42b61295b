"""English questions of posts written in another language: the question is asked in theirs too.

The embedder and BM25 match words, so an English question does not meet a French, Dutch or Chinese line:
"Which Kubernetes version brought ephemeral containers to beta?" scores a cosine of 0.39 with "…arrive en
bêta dans Kubernetes 1.23", and 0.72 once the question is in French. When posts the question retrieved
are written in another language (:func:`language_of` their text), the chat model translates the
question into that language (one short call, about a second on two CPU cores, only for such
questions). That wording then searches those posts again (their best chunks join the retrieved ones)
and scores their sentences as evidence beside the English one (:class:`PostLanguageQuery`).

A translation that brings numbers the question did not have is a small model answering instead of
translating; it is not used.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.retrieval import ScoredChunk
from rag.stopwords import STOP_WORDS
from rag.text import content_terms, numbers

MIN_WORDS = 40  # a post shorter than this is not told apart by its function words
MIN_FOREIGN_SHARE = 0.5  # a post is in another language when most of its words' function words are
EXTRA_CHUNKS_PER_POST = 3  # the best chunks of a post found by the translated question that join the others
TRANSLATIONS_KEPT = 256

# The commonest function words of the languages recap posts are written in (none of them English ones).
_FUNCTION_WORDS = {
    "French": "le la les des du un une et est sont pour dans avec sur que qui nous vous ce cette ces pas plus "
    "au aux ont était été très mais où leur",
    "Dutch": "het een van zijn voor op met dat die niet ook maar er ik wij naar wordt werd bij deze zijn "
    "hebben heeft nog wel veel",
    "German": "der die das und ist sind nicht ein eine mit auf für von zu den dem wir ich auch sich wird "
    "wurde haben oder",
    "Spanish": "el los las del y que es son por para con una se lo como más pero fue muy su sus este esta",
    "Italian": "il gli di che è sono per con una del della non più anche come ma nel nella questo",
    "Portuguese": "os do da não são para com uma um em no na mais como mas foi muito seu sua este",
}
_WORD_SETS = {language: set(words.split()) for language, words in _FUNCTION_WORDS.items()}
_WORD_RE = re.compile(r"[a-zà-öø-ÿ']+")
_CJK_RE = re.compile(r"[\u3400-\u9fff]")
_KANA_RE = re.compile(r"[\u3040-\u30ff]")
_CODE_RE = re.compile(r"```.*?```|`[^`\n]*`|https?://\S+", re.S)

# One worked example per language: without it the 0.5B model answers the question instead.
_EXAMPLE_QUESTION = "Which tool was presented?"
_EXAMPLES = {
    "French": "Quel outil a été présenté ?",
    "Dutch": "Welk hulpmiddel werd gepresenteerd?",
    "German": "Welches Werkzeug wurde vorgestellt?",
    "Spanish": "¿Qué herramienta se presentó?",
    "Italian": "Quale strumento è stato presentato?",
    "Portuguese": "Qual ferramenta foi apresentada?",
    "Chinese": "介绍了哪个工具？",
    "Japanese": "どのツールが紹介されましたか？",
}
LANGUAGES = tuple(_EXAMPLES)


def language_of(text: str) -> str:
    """The language a post is written in: "English", or one of :data:`LANGUAGES` (by script for Chinese
    and Japanese, else by the function words most of its words are)."""
    text = _CODE_RE.sub(" ", text)
    cjk, kana = len(_CJK_RE.findall(text)), len(_KANA_RE.findall(text))
    tokens = _WORD_RE.findall(text.lower())
    if cjk + kana > len(tokens):
        return "Japanese" if kana > cjk / 4 else "Chinese"
    if len(tokens) < MIN_WORDS:
        return "English"
    english = sum(t in STOP_WORDS for t in tokens)
    counts = {language: sum(t in words for t in tokens) for language, words in _WORD_SETS.items()}
    language, foreign = max(counts.items(), key=lambda item: item[1])
    return language if foreign > english * MIN_FOREIGN_SHARE / (1 - MIN_FOREIGN_SHARE) else "English"


@dataclass(frozen=True)
class PostLanguageQuery:
    """The question in the language of some retrieved posts: its words and its embedding."""

    language: str
    text: str
    posts: frozenset[str]
    terms: frozenset[str] = field(default_factory=frozenset)
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


class PostLanguages:
    """Each post's language, found once per post text (a snapshot's posts do not change)."""

    def __init__(self):
        self._languages: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()

    def of(self, snapshot, doc_ids: Iterable[str]) -> dict[str, str]:
        """``{doc_id: language}`` for the posts not written in English."""
        out = {}
        for doc_id in dict.fromkeys(doc_ids):
            post = snapshot.post_text(doc_id)
            key = (doc_id, len(post.text))
            with self._lock:
                language = self._languages.get(key)
            if language is None:
                language = language_of(post.text)
                with self._lock:
                    self._languages[key] = language
            if language != "English":
                out[doc_id] = language
        return out


class Translations:
    """Questions translated by the chat model, kept by (text, language): the same question comes back."""

    def __init__(self, max_items: int = TRANSLATIONS_KEPT):
        self._items: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()

    def translate(self, model, question: str, language: str, callbacks=None) -> str:
        """``question`` in ``language``, or "" when the model's reply is no translation of it."""
        key = (question, language)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        text = _usable(question, _ask_model(model, question, language, callbacks))
        with self._lock:
            self._items[key] = text
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return text


def _ask_model(model, question: str, language: str, callbacks=None) -> str:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    messages = [
        SystemMessage(f"You translate English text into {language}. Never answer questions: only translate them, word for word."),
        HumanMessage(f"Translate into {language}: {_EXAMPLE_QUESTION}"),
        AIMessage(_EXAMPLES[language]),
        HumanMessage(f"Translate into {language}: {question}"),
    ]
    config = {"callbacks": callbacks} if callbacks is not None else None
    reply = model.invoke(messages, config=config, max_tokens=80)
    return str(reply.content).strip()


def _usable(question: str, reply: str) -> str:
    """The reply when it reads as a translation: one line, not the question again, no new numbers."""
    reply = reply.strip().splitlines()[0].strip(" \"'“”«»") if reply.strip() else ""
    if not reply or reply.lower() == question.lower() or len(reply) > 3 * len(question) + 40:
        return ""
    return reply if numbers(reply) <= numbers(question) else ""


def with_post_language_chunks(
    chunks: Sequence[ScoredChunk], found: Sequence[ScoredChunk], posts: Iterable[str]
) -> list[ScoredChunk]:
    """The retrieved chunks, with the best chunks the translated question found in ``posts`` (at most
    ``EXTRA_CHUNKS_PER_POST`` each) placed before that post's first retrieved chunk, at its score."""
    have = {c.chunk.chunk_id for c in chunks}
    extra: dict[str, list[ScoredChunk]] = {}
    for item in found:
        doc_id = item.chunk.doc_id
        if doc_id in posts and item.chunk.chunk_id not in have and len(extra.get(doc_id, [])) < EXTRA_CHUNKS_PER_POST:
            extra.setdefault(doc_id, []).append(item)
    out: list[ScoredChunk] = []
    for item in chunks:
        for added in extra.pop(item.chunk.doc_id, []):
            out.append(ScoredChunk(added.chunk, item.score, added.dense_similarity, added.dense_rank, added.lexical_rank))
        out.append(item)
    return out


def query_in(language: str, text: str, posts: Iterable[str], embedding: np.ndarray) -> PostLanguageQuery:
    return PostLanguageQuery(language, text, frozenset(posts), frozenset(content_terms(text)), embedding)

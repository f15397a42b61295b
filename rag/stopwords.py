"""Word lists for :mod:`rag.text`: stop words and the capitalised words that open a sentence but name nothing.

Kept apart from the tokenizer so a list can be read and changed on its own. Order does not matter (each is
a frozenset); ``from rag.text import STOP_WORDS`` still works.
"""

from __future__ import annotations


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words that carry no claim: removed before lexical overlap is measured (and from BM25 queries).
# The last few are corpus- and chat-specific: every post is a KubeCon blog article, and "sure", "thanks"
# are a model's pleasantries.
STOP_WORDS = _word_set(
    """
    a about above after again against all also am an and any are around as at be because been before
    being below between both but by can could did do does doing down during each either else etc even
    ever every few for from further get gets got had has have having he her here hers herself him
    himself his how i if in into is it its itself just let lets like made make many may me might more
    most much must my myself near no nor not now of off on once one only or other others our ours
    ourselves out over own per quite rather really said same say says see seem seems several she should
    since so some still such than that the their theirs them themselves then there these they this those
    though through thus to too under until up upon us very via was we well were what when where whether
    which while who whom whose why will with within without would yet you your yours yourself tell told
    know think talk talked mention mentioned people post posts recap recaps blog article kubecon
    cloudnativecon sure yes okay ok certainly course hello thanks
    """
)

# Capitalised words that open a sentence without naming a project, company or person (see rag.text.names).
NAME_OPENERS = _word_set(
    """
    another attendees both during each first finally however in many most next one other others overall
    several some speakers talks teams the then there these this those two three attendance keynotes sure
    yes okay ok well here below according based briefly summary
    """
)

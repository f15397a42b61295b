"""rag.surface: the structural types the front ends use fit both assistants."""

from __future__ import annotations

from rag.assistant import Assistant
from rag.remote import RemoteAssistant
from rag.surface import AssistantSurface, SearchingAssistant


def test_both_assistants_have_the_surface_the_front_ends_use():
    assert issubclass(Assistant, AssistantSurface)
    assert issubclass(RemoteAssistant, AssistantSurface)


def test_only_the_local_assistant_searches_without_answering():
    assert issubclass(Assistant, SearchingAssistant)
    assert not issubclass(RemoteAssistant, SearchingAssistant)

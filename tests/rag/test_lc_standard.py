"""LangChain's standard retriever tests (langchain-tests) for ``Assistant.as_retriever()`` on the fixture store."""

from __future__ import annotations

import inspect

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag.lc import RecapRetriever


class TestRecapRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _assistant(self, assistant):
        type(self).qa = assistant

    @property
    def retriever_constructor(self) -> type[RecapRetriever]:
        return RecapRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"assistant": self.qa}

    @property
    def retriever_query_example(self) -> str:
        return "service mesh sidecars"


for _name in dir(TestRecapRetriever):  # the suite's async tests, without the project running asyncio_mode=auto
    _test = getattr(TestRecapRetriever, _name)
    if _name.startswith("test_") and inspect.iscoroutinefunction(_test):
        setattr(TestRecapRetriever, _name, pytest.mark.asyncio(_test))

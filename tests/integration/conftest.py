"""Fixtures for the cross-component tests (the helpers themselves live in ``integration_harness``)."""

from __future__ import annotations

import pytest
from integration_harness import ChromaServer


@pytest.fixture
def restartable_chroma(tmp_path):
    """A ``chroma run`` the test can stop and start again on the same port and data (not started yet)."""
    server = ChromaServer(tmp_path / "chroma-db")
    yield server
    server.stop()

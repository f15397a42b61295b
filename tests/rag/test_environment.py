"""Importing the product changes no environment variable; configure_environment() sets defaults only."""

from __future__ import annotations

import os
import subprocess
import sys

from rag.environment import DEFAULTS, configure_environment


def test_importing_the_components_changes_no_environment_variable():
    code = (
        "import os; before = dict(os.environ); "
        "import rag.assistant, rag.components.llm, rag.components.store, rag.components.embedding, webchat.server; "
        "print(sorted(set(os.environ.items()) ^ set(before.items())))"
    )
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_configure_environment_keeps_what_the_caller_set(monkeypatch):
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    configure_environment()
    configure_environment()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert all(os.environ[name] == value for name, value in DEFAULTS.items() if name != "OMP_WAIT_POLICY")

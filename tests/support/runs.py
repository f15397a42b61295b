"""LangChain run trees in tests: every run below a traced run."""

from __future__ import annotations


def walk(run):
    """The runs under ``run``, depth first (children before grandchildren of the next child)."""
    for child in run.child_runs:
        yield child
        yield from walk(child)

"""Shared fixtures for the eval tests: a sample passage and a deterministic stand-in for MiniLM."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from eval.grounding import GroundingScorer, GroundingThresholds, content_stems

EVIDENCE = (
    "At KubeCon Valencia 2022 the CNCF announced that more than 7,000 people attended in person. "
    "The keynotes focused on platform engineering and on securing the software supply chain with Sigstore."
)


def bag_of_words_embed(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for MiniLM: hashed bag of content stems, normalised."""
    vectors = np.zeros((len(texts), 256), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in content_stems(text):
            vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1.0
        norm = np.linalg.norm(vectors[row])
        if norm:
            vectors[row] /= norm
    return vectors


@pytest.fixture
def evidence() -> str:
    return EVIDENCE


@pytest.fixture
def embed():
    return bag_of_words_embed


@pytest.fixture
def scorer() -> GroundingScorer:
    """Default thresholds with the bag-of-words embedder: fast and independent of calibration files."""
    return GroundingScorer(thresholds=GroundingThresholds(), embed=bag_of_words_embed)

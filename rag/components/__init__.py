"""Swappable backends shared by the write path (ingest) and the read path (rag).

One module per concern: ``tokens`` (tiktoken, offline), ``embedding`` (sentence-transformers, offline),
``store`` (Chroma embedded or server), ``llm`` (llama.cpp / OpenAI-compatible / extractive).
"""

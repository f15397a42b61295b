"""The Gradio web chat: a thin shell over :class:`rag.assistant.Assistant` (``python app.py``)."""

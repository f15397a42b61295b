"""The synchronous pipeline as an async iterator: for ``Assistant.astream`` and the LangChain Runnable.

The pipeline (torch, llama.cpp, Chroma) blocks, so it runs on a worker thread that hands each item to
the event loop. When the consumer stops (closes the iterator, breaks out of ``async for``, or its task is
cancelled), the worker closes the generator at its next item: ``GeneratorExit`` reaches the stage that
was running, which closes the model's token stream, so generation stops after at most one more token.
The worker runs at most one item ahead of the consumer (a fast producer cannot finish unobserved).
Context variables (LangChain's run config, OpenTelemetry context) are copied to the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(make_iterator: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    loop = asyncio.get_running_loop()
    items: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    taken = threading.Semaphore(0)  # released by the consumer for each item it took (and when it stops)

    def put(kind: str, value) -> None:
        try:
            loop.call_soon_threadsafe(items.put_nowait, (kind, value))
        except RuntimeError:  # the loop closed under us: nobody is listening any more
            stop.set()

    def work() -> None:
        iterator = None
        try:
            iterator = make_iterator()
            for item in iterator:
                if stop.is_set():
                    break
                put("item", item)
                taken.acquire()
                if stop.is_set():
                    break
            put("done", _DONE)
        except BaseException as exc:  # handed to the consumer's task
            put("error", exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # GeneratorExit inside the pipeline when it was stopped early

    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(work,), name="kqa-astream", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = await items.get()
            if kind == "item":
                taken.release()
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()
        taken.release()

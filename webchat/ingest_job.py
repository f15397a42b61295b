"""Re-running the ingest of ``data/`` from the page, one job at a time, with progress lines.

The job runs in a worker thread and reports through a queue, so the Gradio handler can stream progress
to the page while the ingest works. A process-wide lock makes a second click (from any session) wait
its turn rather than write the store twice at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import KQAError
from rag.settings import Settings

log = logging.getLogger(__name__)

_JOB_LOCK = threading.Lock()
_DONE = object()


def run_ingest_job(
    settings: Settings,
    paths: list[Path],
) -> Iterator[tuple[str, float | None, dict[str, Any] | None]]:
    """Run ``ingest.pipeline.run_ingest`` in a thread; yield ``(progress line, fraction, summary)``.

    ``summary`` (``IngestSummary.to_dict()``) is set on the last item only. Raises :class:`KQAError` on
    failure. The Assistant needs no nudge afterwards: its retriever reloads when the collection changes.
    """
    from ingest.pipeline import run_ingest

    if not _JOB_LOCK.acquire(blocking=False):
        yield "Another ingest is running; waiting for it to finish…", None, None
        _JOB_LOCK.acquire()
    try:
        reports: queue.Queue = queue.Queue()
        outcome: dict[str, Any] = {}

        def progress(done: int, total: int, message: str) -> None:
            reports.put((f"[{done}/{total}] {message}", done / total if total else None))

        def work() -> None:
            try:
                outcome["summary"] = run_ingest(paths=paths, settings=settings, progress=progress)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = exc
            finally:
                reports.put(_DONE)

        started = time.monotonic()
        worker = threading.Thread(target=work, name="kqa-web-ingest", daemon=True)
        worker.start()
        yield f"Ingesting {', '.join(str(p) for p in paths)}…", 0.0, None
        while True:
            item = reports.get()
            if item is _DONE:
                break
            yield item[0], item[1], None
        worker.join()
        error = outcome.get("error")
        if isinstance(error, KQAError):
            raise error
        if error is not None:
            log.error("ingest failed", exc_info=error)
            raise KQAError(f"The ingest failed ({type(error).__name__}: {error}).") from error
        summary = outcome["summary"]
        yield f"Done in {time.monotonic() - started:.1f}s: {summary.one_line()}", 1.0, summary.to_dict()
    finally:
        _JOB_LOCK.release()

"""``python -m ingest [PATH ...]``: the command-line face of :func:`ingest.pipeline.run_ingest`.

Exit status: 0 when at least one post was ingested and nothing failed, 1 when any file failed (or
none was found, pruning was held back, or the store could not be used), 2 on usage errors (bad option, missing path).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.pipeline import IngestSummary, IngestUsageError, run_ingest
from rag.errors import KQAError
from rag.settings import Settings, get_settings
from rag.version import add_version_argument

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DESCRIPTION = f"""\
Ingest KubeCon recap posts into the Chroma collection the assistant answers from.

Reads {", ".join(sorted(SUPPORTED_SUFFIXES))} files (directories are walked; hidden entries skipped).
YAML front matter gives title, date, event, author and url; missing fields are derived from the first
heading, the file name and the text. Posts are split at headings, then to a token budget, embedded
with sentence-transformers and upserted. The post id is the file name without its extension.

Runs are incremental: unchanged posts are skipped without re-embedding, changed posts replace all
their old chunks (new chunks are written before old ones are removed), and a run interrupted half-way
is repaired by the next one. With no PATH, the settings' data_dir is ingested.

Posts whose file is gone are deleted (pruned), except when the walk may have missed them: nothing is
pruned under a folder that could not be read or where no post was found (a failed mount keeps the
index), and at most KQA_MAX_PRUNE_SHARE of the stored posts go without --prune-force. Only regular
files are read (FIFOs, devices and sockets are skipped with a reason), symlinks leaving the folder
are skipped unless --follow-symlinks, and nothing is read past KQA_MAX_FILE_BYTES.
"""

EPILOG = """\
settings come from KQA_* environment variables (see README), e.g.
  KQA_CHROMA_URL=http://127.0.0.1:8000   use a Chroma server instead of the embedded store
  KQA_CHROMA_PATH=DIR                    embedded store directory (default <KQA_HOME>/chroma)
  KQA_CHUNK_TOKENS / KQA_CHUNK_OVERLAP   chunk budget and overlap in cl100k tokens
  KQA_MAX_FILE_BYTES                     larger files are skipped
  KQA_MAX_PRUNE_SHARE                    most of the stored posts one run may delete (default 0.5)

exit status: 0 ingested and nothing failed; 1 some file failed, none found, pruning held back, or
store error;
2 usage error.

examples:
  python -m ingest                          # ingest data/
  python -m ingest ../shared/corpus/articles --json
  python -m ingest posts/new-post.md        # one file; nothing is pruned
  python -m ingest posts --dry-run          # show what would change
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version_argument(parser)
    parser.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or directories (default: data_dir)"
    )
    parser.add_argument(
        "--prune",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="delete stored posts whose file under a given directory is gone (default: on when a directory is given)",
    )
    parser.add_argument(
        "--prune-force",
        action="store_true",
        help="delete even when more than KQA_MAX_PRUNE_SHARE (default 50%%) of the stored posts would go "
        "(never under a folder that could not be read or held no posts)",
    )
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="ingest symlinks to files outside the given directories (skipped by default)",
    )
    parser.add_argument("--reset", action="store_true", help="empty the collection first, then ingest")
    parser.add_argument(
        "--dry-run", action="store_true", help="read and compare only: show what would change"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument("--collection", help="collection name (default: KQA_COLLECTION or kubecon_recaps)")
    parser.add_argument("--chroma-url", help="Chroma server URL (default: KQA_CHROMA_URL)")
    parser.add_argument(
        "--chroma-path", type=Path, help="embedded store directory (default: KQA_CHROMA_PATH)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no per-file messages")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return parser


class _ProgressBar:
    """A tqdm bar (counts + ETA) created on the first progress report, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __call__(self, done: int, total: int, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="post", desc="ingest", file=sys.stderr, dynamic_ncols=True)
        self.bar.n = done
        self.bar.set_postfix_str(message[:40], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _settings(args: argparse.Namespace):
    overrides = {
        key: value
        for key, value in (
            ("collection", args.collection),
            ("chroma_url", args.chroma_url),
            ("chroma_path", args.chroma_path),
        )
        if value is not None
    }
    return Settings(**overrides) if overrides else get_settings()


def _report(summary: IngestSummary, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return
    if not args.quiet:
        for failure in summary.failures:
            print(f"skipped {failure['path']}: {failure['reason']}", file=sys.stderr)
    print(summary.one_line())
    if summary.kept:
        print(
            f"kept {len(summary.kept)} stored posts whose files are gone: {summary.prune_held}", file=sys.stderr
        )
    if not summary.ingested and not summary.failures:
        print("no supported files found", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    progress = _ProgressBar(enabled=sys.stderr.isatty() and not args.quiet)
    try:
        settings = _settings(args)
        summary = run_ingest(
            paths=args.paths or None,
            settings=settings,
            prune=args.prune,
            reset=args.reset,
            dry_run=args.dry_run,
            progress=progress,
            prune_force=args.prune_force,
            follow_symlinks=args.follow_symlinks,
        )
    except IngestUsageError as exc:
        progress.close()
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KQAError as exc:
        progress.close()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        progress.close()
        print(
            "\ninterrupted: posts written so far are complete; run again to finish the rest", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    progress.close()
    _report(summary, args)
    return summary.exit_code

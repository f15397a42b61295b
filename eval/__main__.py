"""``python -m eval``: validate gold files, run evaluations, calibrate the grounding scorer.

python -m eval validate eval/gold.jsonl [--corpus DIR]
python -m eval run --gold eval/gold.jsonl [--corpus DIR] [--out DIR] [--retrieval-only] [--baseline]
                   [--compare PREVIOUS_RUN] [--limit N] [--judge]
python -m eval calibrate [--labels eval/grounding_labels.jsonl] [--write]
python -m eval sheet RUN_DIR --out SHEET.jsonl            # a labelling sheet from a run's answers
python -m eval labels FILE --gold GOLD [--split test]   # answers read against the posts: the figures
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from eval import grounding  # a module, so DEFAULT_THRESHOLDS is read when calibrate writes
from eval.feedback import candidates, read_feedback, write_candidates
from eval.gold import default_corpus, load_gold, run_validate
from eval.labels import labelling_sheet, render_summary
from eval.labels import load_labels as load_read_labels
from eval.labels import summarize as summarize_read_labels
from eval.report import print_summary, write_report
from eval.runner import RunConfig, run_eval
from eval.split import select_split
from rag.errors import KQAError
from rag.version import add_version_argument

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CORPUS_DEFAULT = "default: the settings' data_dir, the repository's data/; the gold sets cite ../shared/corpus/articles"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__.split("\n\n")[0])
    add_version_argument(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a gold file: schema, slugs exist, quotes occur")
    validate.add_argument("file", type=Path)
    validate.add_argument("--corpus", type=Path, default=None, help=f"articles directory ({CORPUS_DEFAULT})")

    run = commands.add_parser("run", help="ingest the corpus, answer every gold question, score, report")
    run.add_argument("--gold", type=Path, required=True, help="gold JSONL file")
    run.add_argument("--corpus", type=Path, default=None, help=f"articles directory ({CORPUS_DEFAULT})")
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: eval/runs/<timestamp>, git-ignored)",
    )
    run.add_argument("--retrieval-only", action="store_true", help="skip generation: retrieval metrics only")
    run.add_argument(
        "--baseline", action="store_true", help="also run LangChain's tutorial RAG for comparison"
    )
    run.add_argument(
        "--compare", type=Path, default=None, metavar="PREVIOUS_RUN", help="earlier output directory"
    )
    run.add_argument("--limit", type=int, default=None, help="only the first N gold items")
    run.add_argument(
        "--split",
        choices=("tune", "test", "all"),
        default="all",
        help="only the items of one half of the fixed split (eval/split.json); the test half is the figure",
    )
    run.add_argument(
        "--human-labels",
        type=Path,
        default=None,
        help="answers read against the posts (python -m eval labels): their figures go into the report",
    )
    run.add_argument("--judge", action="store_true", help="also ask the configured LLM to judge answers")
    run.add_argument(
        "--store", type=Path, default=None, help="eval Chroma directory (default: <KQA_HOME>/eval/chroma)"
    )
    run.add_argument(
        "--labels", type=Path, default=grounding.DEFAULT_LABELS, help="grounding hand labels for agreement"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    labels = commands.add_parser("labels", help="figures of answers read against the posts (eval/labels.py)")
    labels.add_argument("file", type=Path, help="labels JSONL")
    labels.add_argument("--gold", type=Path, required=True, help="the gold file the labelled answers are for")
    labels.add_argument("--split", choices=("tune", "test", "all"), default="all")
    labels.add_argument("--json", action="store_true", help="print the figures as JSON")
    labels.add_argument(
        "--into",
        type=Path,
        default=None,
        metavar="RUN",
        help="also put the figures into that run's report (its report.json and report.md are rewritten)",
    )

    sheet = commands.add_parser("sheet", help="a labelling sheet (JSONL) from a run, for reading answers against the posts")
    sheet.add_argument("run", type=Path, help="a run's output directory (holds report.json)")
    sheet.add_argument("--out", type=Path, required=True, help="the sheet to write (JSONL)")

    feedback = commands.add_parser(
        "feedback", help="users' 👎 (web and Slack feedback.jsonl) as candidate gold items to complete"
    )
    feedback.add_argument("file", type=Path, help="a feedback JSONL file (<KQA_HOME>/feedback.jsonl)")
    feedback.add_argument("--out", type=Path, required=True, help="candidate gold items to write (JSONL)")
    feedback.add_argument("--also-up", action="store_true", help="also the answers rated 👍 (to guard them)")

    calibrate = commands.add_parser("calibrate", help="fit the grounding scorer's thresholds on hand labels")
    calibrate.add_argument("--labels", type=Path, default=grounding.DEFAULT_LABELS)
    calibrate.add_argument("--write", action="store_true", help="store the thresholds for every later run")
    return parser


def _validate(args) -> int:
    return run_validate(args.file, args.corpus or default_corpus())


def _run(args) -> int:
    corpus = args.corpus or default_corpus()
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    if not args.gold.exists():
        raise FileNotFoundError(f"gold file {args.gold} does not exist")
    if not corpus.is_dir():
        raise FileNotFoundError(f"corpus directory {corpus} does not exist (pass --corpus DIR)")
    if (
        args.compare is not None
        and not (args.compare / "report.json").exists()
        and not args.compare.is_file()
    ):
        raise FileNotFoundError(
            f"--compare {args.compare}: no report.json there (pass an earlier --out directory)"
        )
    out = args.out or Path("eval/runs") / datetime.now().strftime("%Y%m%d-%H%M%S")  # git-ignored scratch runs
    config = RunConfig(
        gold=args.gold,
        corpus=corpus,
        out_dir=out,
        retrieval_only=args.retrieval_only,
        baseline=args.baseline,
        compare=args.compare,
        limit=args.limit,
        judge=args.judge,
        store_dir=args.store,
        labels=args.labels,
        progress=not args.no_progress,
        split=args.split,
        human_labels=args.human_labels,
    )
    report = run_eval(config)
    print_summary(report)
    print(f"Report: {out / 'report.md'} (and report.json, {', '.join(report.get('charts', []))})")
    return EXIT_OK


def _labels(args) -> int:
    items = select_split(load_gold(args.gold), args.gold, args.split)
    answers = None
    if args.into is not None:
        report = json.loads((args.into / "report.json").read_text(encoding="utf-8"))
        answers = {q["id"]: (q.get("kqa") or {}).get("answer", "") for q in report["questions"]}
    summary = summarize_read_labels(load_read_labels(args.file), items, answers)
    if args.into is not None:
        report["human_labels"] = summary.to_dict() | {"labels": str(args.file)}
        write_report(report, args.into)
        print(f"put the read figures into {args.into / 'report.md'} ({len(summary.stale)} labels of changed answers)")
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print("\n".join(render_summary(summary, f"{args.file} on {args.gold} ({args.split})")))
    return EXIT_OK


def _sheet(args) -> int:
    report = json.loads((args.run / "report.json").read_text(encoding="utf-8"))
    rows = labelling_sheet(report)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} records to {args.out}: fill in 'label' and each sentence's 'label' (see eval/labels.py)")
    return EXIT_OK


def _feedback(args) -> int:
    records, problems = read_feedback(args.file)
    for problem in problems:
        print(problem, file=sys.stderr)
    rows = candidates(records, ("down", "up") if args.also_up else ("down",))
    write_candidates(rows, args.out)
    print(
        f"wrote {len(rows)} candidate gold items to {args.out} from {len(records)} ratings: fill in each "
        "'answer', 'key_facts' and the 'sources'/'evidence' pairs, then `python -m eval validate` it and "
        "add it to a gold file"
    )
    return EXIT_OK


def _calibrate(args) -> int:
    result = grounding.calibrate(grounding.load_labels(args.labels))
    print(json.dumps(result, indent=2))
    if args.write:
        result["labels"] = str(args.labels)
        grounding.DEFAULT_THRESHOLDS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {grounding.DEFAULT_THRESHOLDS}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {
        "validate": _validate, "run": _run, "calibrate": _calibrate, "labels": _labels, "sheet": _sheet,
        "feedback": _feedback,
    }  # fmt: skip
    try:
        return handlers[args.command](args)
    except (KQAError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, FileNotFoundError | ValueError) else EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Writing a run's results: ``report.json`` (everything), ``report.md`` (for people) and PNG charts.

The report dict is built by :func:`eval.scoring.build_report`; this module only renders it, compares it with a previous
run and draws charts (matplotlib's Agg backend: no display needed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from eval.labels import render_figures

# Headline metrics in the order tables show them. "lower" ones are better when smaller.
METRIC_LABELS: dict[str, str] = {
    "recall@1": "R@1",
    "recall@3": "R@3",
    "recall@5": "R@5",
    "recall@10": "R@10",
    "mrr@10": "MRR@10",
    "citation_precision": "cit. precision",
    "citation_recall": "cit. recall",
    "grounding": "grounding",
    "grounding_quotes": "grounding (quotes only)",
    "key_fact_recall": "key-fact recall",
    "abstention_accuracy": "abstention acc.",
    "false_abstention_rate": "false abstention",
    "judge_accuracy": "judge acc.",
}
LOWER_IS_BETTER = {"false_abstention_rate"}
RETRIEVAL_METRICS = ("recall@1", "recall@3", "recall@5", "recall@10", "mrr@10")
WORST_FAILURES = 10
SYSTEM_NAMES = {"kqa": "KubeCon Recap QA", "baseline": "LangChain tutorial RAG (baseline)"}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _signed(value) -> str:
    return "–" if value is None else f"{value:+.3f}"


def load_report(run_dir: Path) -> dict:
    """A previous run's ``report.json`` (``run_dir`` may also be the file itself)."""
    path = run_dir / "report.json" if run_dir.is_dir() else run_dir
    if not path.exists():
        raise FileNotFoundError(f"No report.json at {path}: pass the output directory of an earlier run")
    return json.loads(path.read_text(encoding="utf-8"))


def compare_reports(current: dict, previous: dict) -> dict:
    """Per system, per metric (overall and by type): previous value, current value and delta."""
    comparison: dict = {"previous_run": previous.get("meta", {}).get("out_dir", ""), "systems": {}}
    for system, data in current.get("systems", {}).items():
        before = previous.get("systems", {}).get(system)
        if not before:
            continue
        rows: dict = {}
        groups = {"all": (data["summary"]["overall"], before["summary"]["overall"])}
        for qtype, values in data["summary"]["by_type"].items():
            if qtype in before["summary"]["by_type"]:
                groups[qtype] = (values, before["summary"]["by_type"][qtype])
        for group, (now, then) in groups.items():
            for metric in METRIC_LABELS:
                a, b = now.get(metric), then.get(metric)
                if a is None and b is None:
                    continue
                delta = a - b if a is not None and b is not None else None
                rows.setdefault(group, {})[metric] = {"previous": b, "current": a, "delta": delta}
        latency_now = data.get("latency", {}).get("total", {}).get("p50")
        latency_then = before.get("latency", {}).get("total", {}).get("p50")
        if latency_now is not None and latency_then is not None:
            rows.setdefault("all", {})["latency_p50_total"] = {
                "previous": latency_then,
                "current": latency_now,
                "delta": latency_now - latency_then,
            }
        comparison["systems"][system] = rows
    return comparison


def format_comparison(comparison: dict) -> str:
    """Deltas of the overall metrics as plain text, for the terminal."""
    lines = [f"Changes since {comparison.get('previous_run') or 'the previous run'}:"]
    for system, groups in comparison.get("systems", {}).items():
        lines.append(f"  {SYSTEM_NAMES.get(system, system)}:")
        for metric, row in groups.get("all", {}).items():
            better = _is_improvement(metric, row["delta"])
            mark = "" if row["delta"] in (None, 0) else (" (better)" if better else " (worse)")
            lines.append(
                f"    {metric:<24} {_fmt(row['previous'])} -> {_fmt(row['current'])}  {_signed(row['delta'])}{mark}"
            )
    return "\n".join(lines)


def _is_improvement(metric: str, delta: float | None) -> bool:
    if delta is None:
        return False
    lower = metric in LOWER_IS_BETTER or metric.startswith("latency")
    return delta < 0 if lower else delta > 0


# --- markdown ----------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _metrics_present(summary: dict) -> list[str]:
    overall = summary["overall"]
    return [m for m in METRIC_LABELS if overall.get(m) is not None]


def _type_table(summary: dict) -> list[str]:
    metrics = _metrics_present(summary)
    header = ["type", "n", *[METRIC_LABELS[m] for m in metrics]]
    rows = [
        [qtype, str(values["n"]), *[_fmt(values.get(m)) for m in metrics]]
        for qtype, values in sorted(summary["by_type"].items())
    ]
    overall = summary["overall"]
    rows.append(["**all**", f"**{overall['n']}**", *[f"**{_fmt(overall.get(m))}**" for m in metrics]])
    return _table(header, rows)


def _targets_table(targets: list[dict], has_baseline: bool) -> list[str]:
    header = ["metric", "target", "ours", "met"]
    if has_baseline:
        header += ["baseline", "ratio", "ahead of baseline"]
    rows = []
    for t in targets:
        row = [METRIC_LABELS.get(t["metric"], t["metric"]), f"≥ {t['target']:.2f}", _fmt(t["value"]),
               "✅ met" if t["met"] else "❌ missed"]  # fmt: skip
        if has_baseline:
            ahead = t.get("ahead_of_baseline")
            standing = "✅ yes" if ahead else ("= tied" if t.get("tied_with_baseline") else "❌ no")
            row += [_fmt(t.get("baseline")), _fmt(t.get("ratio"), 2), "–" if ahead is None else standing]
        rows.append(row)
    return _table(header, rows)


def _latency_table(systems: dict) -> list[str]:
    header = ["system", "stage", "p50 (s)", "p95 (s)", "mean (s)", "n"]
    rows = []
    for system, data in systems.items():
        for stage, stats in data.get("latency", {}).items():
            rows.append(
                [system, stage, _fmt(stats["p50"]), _fmt(stats["p95"]), _fmt(stats["mean"]), str(stats["n"])]
            )
    return _table(header, rows)


def _failure_block(question: dict, system: str) -> list[str]:
    record = question[system]
    m = record.get("metrics", {})
    lines = [
        f"### `{question['id']}` ({question['type']}) — {', '.join(record.get('failures') or ['low scores'])}",
        "",
    ]
    lines.append(f"**Question:** {question['question']}")
    lines.append("")
    if "answer" in record:  # retrieval-only runs have no answer
        answer = (record.get("answer") or "").strip().replace("\n", " ")
        lines.append(
            f"**Answer** ({'abstained' if record.get('abstained') else 'answered'}): {answer or '–'}"
        )
        lines.append("")
    for cite in record.get("citations", []):
        quote = cite["quote"].strip().replace("\n", " ")
        if len(quote) > 300:
            quote = quote[:297] + "…"
        verdict = (
            "gold source"
            if cite.get("gold_source")
            else ("supports" if cite.get("supports") else "✗ unsupported")
        )
        lines.append(f"- [{cite['n']}] `{cite['source_id']}` ({verdict}): “{quote}”")
    unsupported = [s for s in record.get("sentences", []) if not s["supported"]]
    for sentence in unsupported[:5]:
        lines.append(f"- unsupported sentence: “{sentence['text']}” ({sentence['reason']})")
    lines.append("")
    gold = question["gold"]
    lines.append(f"**Gold answer:** {gold.get('answer', '') or '–'}")
    lines.append(
        f"**Gold sources:** {', '.join(f'`{s}`' for s in gold.get('sources', [])) or 'none (unanswerable)'}"
    )
    if gold.get("key_facts"):
        facts = "; ".join(" / ".join(alts) for alts in gold["key_facts"])
        lines.append(f"**Key facts:** {facts}")
    ranked = record.get("ranked_sources", [])[:5]
    lines.append(f"**Retrieved (top 5):** {', '.join(f'`{s}`' for s in ranked) or '–'}")
    scores = ", ".join(f"{METRIC_LABELS.get(k, k)} {_fmt(v)}" for k, v in m.items() if isinstance(v, float))
    lines += ["", f"*Scores:* {scores}", ""]
    return lines


def render_markdown(report: dict) -> str:
    systems = report["systems"]
    has_baseline = "baseline" in systems
    lines = _header_section(report["meta"])
    if report.get("human_labels"):
        figures = report["human_labels"]
        lines += render_figures(figures, f"Answers read against the posts (`{figures.get('labels', '')}`)")
    if report.get("targets"):
        lines += _targets_section(report["targets"], has_baseline)
    for system, data in systems.items():
        lines += [f"## {SYSTEM_NAMES.get(system, system)}: by question type", ""]
        lines += _type_table(data["summary"])
        lines.append("")
    if has_baseline and report.get("ratios"):
        lines += _side_by_side_section(systems, report["ratios"])
    if any(data.get("latency") for data in systems.values()):
        lines += _latency_section(systems)
    if report.get("grounding_scorer"):
        lines += _scorer_section(report["grounding_scorer"])
    if report.get("comparison"):
        lines += _comparison_section(report["comparison"])
    for system in systems:
        worst = worst_failures(report["questions"], system)
        if not worst:
            continue
        lines += [f"## Worst failures: {SYSTEM_NAMES.get(system, system)}", ""]
        for question in worst:
            lines += _failure_block(question, system)
    if report.get("charts"):
        lines += ["## Charts", ""]
        lines += [f"![{name}]({name})" for name in report["charts"]]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _header_section(meta: dict) -> list[str]:
    lines = ["# KubeCon Recap QA — evaluation report", ""]
    lines += [
        f"- **Run:** {meta.get('started_at', '')} ({_fmt(meta.get('duration_s'), 0)} s), mode **{meta['mode']}**",
        f"- **Gold set:** `{meta['gold']}` — {meta['n_items']} items ({', '.join(f'{k}: {v}' for k, v in meta['types'].items())})",
        f"- **Corpus:** `{meta['corpus']}` — collection `{meta['collection']}` ({meta.get('store', '')})",
        f"- **Answering backend:** {meta.get('backend', '–')}; embeddings `{meta.get('embedding_model', '')}`",
    ]
    if meta.get("commit"):
        lines.append(f"- **Commit:** `{meta['commit']}`")
    lines.append("")
    return lines


def _targets_section(targets: list[dict], has_baseline: bool) -> list[str]:
    lines = ["## Targets", ""]
    lines += _targets_table(targets, has_baseline)
    met = sum(t["met"] for t in targets)
    lines += ["", f"{met} of {len(targets)} targets met."]
    if has_baseline:
        ahead = sum(bool(t.get("ahead_of_baseline")) for t in targets)
        tied = sum(bool(t.get("tied_with_baseline")) for t in targets)
        lines.append(
            f"Ahead of the baseline on {ahead} of {len(targets)}" + (f", tied on {tied}." if tied else ".")
        )
    lines.append("")
    return lines


def _side_by_side_section(systems: dict, ratios: dict) -> list[str]:
    lines = ["## Side by side (ours / baseline)", ""]
    rows = [
        [METRIC_LABELS.get(m, m), _fmt(systems["kqa"]["summary"]["overall"].get(m)),
         _fmt(systems["baseline"]["summary"]["overall"].get(m)), _fmt(r, 2)]
        for m, r in ratios.items()
    ]  # fmt: skip
    lines += _table(["metric", "ours", "baseline", "ratio"], rows)
    lines.append("")
    return lines


def _latency_section(systems: dict) -> list[str]:
    lines = ["## Latency per stage", ""]
    lines += _latency_table(systems)
    lines.append("")
    for system, data in systems.items():
        tokens = data.get("prompt_tokens")
        if tokens and tokens.get("mean") is not None:
            lines.append(
                f"- {SYSTEM_NAMES.get(system, system)}: prompt tokens mean {_fmt(tokens['mean'], 0)}, "
                f"p95 {_fmt(tokens['p95'], 0)}"
            )
    lines.append("")
    return lines


def _scorer_section(scorer: dict) -> list[str]:
    lines = ["## Grounding scorer", ""]
    lines.append(scorer.get("description", ""))
    lines.append("")
    if scorer.get("agreement"):
        a = scorer["agreement"]
        lines.append(
            f"Agreement with {a['n']} hand-labelled sentences (`{scorer.get('labels', '')}`): "
            f"accuracy {_fmt(a['accuracy'])}, precision of *supported* {_fmt(a['precision_supported'])}, "
            f"recall of *supported* {_fmt(a['recall_supported'])}."
        )
    if scorer.get("cross_validated"):
        lines.append(
            f"Held-out (5-fold) accuracy when calibrating: {_fmt(scorer['cross_validated'].get('accuracy'))}."
        )
    lines.append(f"Thresholds: `{json.dumps(scorer.get('thresholds', {}))}`")
    lines.append("")
    return lines


def _comparison_section(comparison: dict) -> list[str]:
    lines = ["## Changes since the previous run", "", f"Previous: `{comparison.get('previous_run')}`", ""]
    for system, groups in comparison["systems"].items():
        rows = [
            [METRIC_LABELS.get(metric, metric), _fmt(row["previous"]), _fmt(row["current"]), _signed(row["delta"])]
            for metric, row in groups.get("all", {}).items()
        ]
        lines += [f"**{SYSTEM_NAMES.get(system, system)}**", ""]
        lines += _table(["metric", "previous", "current", "delta"], rows)
        lines.append("")
    return lines


def worst_failures(questions: list[dict], system: str, limit: int = WORST_FAILURES) -> list[dict]:
    """The questions where ``system`` did worst (highest failure score), ties by id for stability."""
    scored = [(q[system].get("failure_score", 0.0), q["id"], q) for q in questions if system in q]
    scored = [s for s in scored if s[0] > 0]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [q for _, _, q in scored[:limit]]


# --- charts ------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bar_pairs(ax, labels: list[str], first: tuple[str, list[float]], second: tuple[str, list[float]]) -> None:
    """Two bars per label (``(legend, values)`` each), side by side."""
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], first[1], 0.4, label=first[0])
    ax.bar([x + 0.2 for x in xs], second[1], 0.4, label=second[0])


def chart_metrics_by_type(report: dict, path: Path) -> None:
    plt = _pyplot()
    systems = report["systems"]
    summary = systems["kqa"]["summary"]
    metrics = [m for m in _metrics_present(summary) if m not in ("recall@1", "recall@3", "judge_accuracy")]
    groups = [*sorted(summary["by_type"]), "all"]
    fig, axes = plt.subplots(1, len(systems), figsize=(7 * len(systems), 4.5), squeeze=False, sharey=True)
    for ax, (system, data) in zip(axes[0], systems.items(), strict=True):
        width = 0.8 / max(len(metrics), 1)
        for i, metric in enumerate(metrics):
            values = [
                (data["summary"]["overall"] if g == "all" else data["summary"]["by_type"].get(g, {})).get(
                    metric
                )
                for g in groups
            ]
            xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(groups))]
            ax.bar(xs, [v if v is not None else 0 for v in values], width, label=METRIC_LABELS[metric])
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylim(0, 1.05)
        ax.set_title(SYSTEM_NAMES.get(system, system))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("score")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(plt, fig, path)


def chart_latency(report: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels, p50, p95 = [], [], []
    for system, data in report["systems"].items():
        for stage, stats in data.get("latency", {}).items():
            labels.append(f"{system}\n{stage}")
            p50.append(stats["p50"] or 0)
            p95.append(stats["p95"] or 0)
    _bar_pairs(ax, labels, ("p50", p50), ("p95", p95))
    ax.set_xticks(list(range(len(labels))), labels, fontsize=7)
    ax.set_ylabel("seconds")
    ax.set_title("Latency per stage")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    _save(plt, fig, path)


def chart_side_by_side(report: dict, path: Path) -> None:
    plt = _pyplot()
    ours = report["systems"]["kqa"]["summary"]["overall"]
    theirs = report["systems"]["baseline"]["summary"]["overall"]
    metrics = [m for m in METRIC_LABELS if ours.get(m) is not None and theirs.get(m) is not None]
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = range(len(metrics))
    _bar_pairs(
        ax, metrics, (SYSTEM_NAMES["kqa"], [ours[m] for m in metrics]),
        (SYSTEM_NAMES["baseline"], [theirs[m] for m in metrics]),
    )  # fmt: skip
    for target in report.get("targets", []):
        if target["metric"] in metrics:
            x = metrics.index(target["metric"])
            ax.hlines(target["target"], x - 0.45, x + 0.45, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(list(xs), [METRIC_LABELS[m] for m in metrics], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.22)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title("Ours vs. baseline (dashes: targets)")
    ax.legend(fontsize=8, ncol=2, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    _save(plt, fig, path)


def chart_deltas(report: dict, path: Path) -> None:
    plt = _pyplot()
    rows = []
    for system, groups in report["comparison"]["systems"].items():
        for metric, row in groups.get("all", {}).items():
            if row["delta"] is not None and metric in METRIC_LABELS:
                rows.append(
                    (
                        f"{system}: {METRIC_LABELS[metric]}",
                        row["delta"],
                        _is_improvement(metric, row["delta"]),
                    )
                )
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(rows) + 1)))
    ax.barh(
        [r[0] for r in rows],
        [r[1] for r in rows],
        color=["tab:green" if r[2] else ("tab:gray" if r[1] == 0 else "tab:red") for r in rows],
    )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("change vs. previous run")
    ax.set_title("Deltas (green: better, red: worse)")
    _save(plt, fig, path)


def write_report(report: dict, out_dir: Path) -> list[Path]:
    """Write charts, ``report.json`` and ``report.md`` into ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts: list[str] = []
    chart_jobs = [("metrics_by_type.png", chart_metrics_by_type)]
    if any(data.get("latency") for data in report["systems"].values()):
        chart_jobs.append(("latency.png", chart_latency))
    if "baseline" in report["systems"]:
        chart_jobs.append(("side_by_side.png", chart_side_by_side))
    if report.get("comparison"):
        chart_jobs.append(("deltas.png", chart_deltas))
    for name, draw in chart_jobs:
        draw(report, out_dir / name)
        charts.append(name)
    report["charts"] = charts
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path = out_dir / "report.md"
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return [json_path, md_path, *(out_dir / c for c in charts)]


def print_summary(report: dict, log: Callable[[str], None] = print) -> None:
    """The headline numbers, targets and deltas on the terminal."""
    for name, data in report["systems"].items():
        overall = data["summary"]["overall"]
        parts = [f"{METRIC_LABELS[m]} {overall[m]:.3f}" for m in METRIC_LABELS if overall.get(m) is not None]
        log(f"{SYSTEM_NAMES.get(name, name)} (n={overall['n']}): " + ", ".join(parts))
    for target in report.get("targets", []):
        status = "met" if target["met"] else "MISSED"
        vs = ""
        if "ahead_of_baseline" in target:
            standing = (
                "ahead"
                if target["ahead_of_baseline"]
                else "tied"
                if target["tied_with_baseline"]
                else "BEHIND"
            )
            vs = f"; baseline {target['baseline']:.3f} ({standing})"
        log(f"  target {target['metric']} >= {target['target']:.2f}: {target['value']:.3f} {status}{vs}")
    if report.get("comparison"):
        log(format_comparison(report["comparison"]))

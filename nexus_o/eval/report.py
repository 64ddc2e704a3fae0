"""Evaluation reports: `results.json` and `results.md`, this run beside the paper's reported figures.

The paper's figures live in `paper_results.json` (next to this file), one table per task with its
source ("NEXUS-O paper, Table 4"), the paper's column groups (e.g. "CH (CER↓)": AIShell-2,
NEXUS-O-audio) and every row the paper prints. `results.md` opens with a summary (one line per
task and language: this run's score next to NEXUS-O's published ones), then lays out each
task's table as the paper does, with one more column per language group for this run's data and
one more row for this model. This run's benchmarks are not the paper's, so its figures get their
own column rather than being written under AIShell-2 or LibriSpeech.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

PAPER_RESULTS = Path(__file__).with_name("paper_results.json")
METRIC_LABELS = {"wer": "WER↓ (%)", "cer": "CER↓ (%)", "bleu": "BLEU↑", "accuracy": "accuracy↑ (%)"}
DASH = "–"


@cache
def load_paper_results(path: str | Path = PAPER_RESULTS) -> dict:
    """The paper's tables: {"paper", "notes", "tables": {task: {"source", "groups", "rows", ...}}}."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_json_and_markdown(results: dict, markdown: str, out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """Write OUT/<stem>.json (`results`) and OUT/<stem>.md (`markdown`), each replaced atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    texts = json.dumps(results, indent=2, ensure_ascii=False) + "\n", markdown
    for path, text in zip(paths, texts):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return paths


def write_report(results: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write OUT/results.json and OUT/results.md (each replaced atomically); returns both paths."""
    return write_json_and_markdown(results, render_markdown(results), out_dir, "results")


def _fmt(value, decimals: int = 2) -> str:
    if value is None:
        return DASH
    return value if isinstance(value, str) else f"{value:.{decimals}f}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _paper_figures(table: dict, lang: str | None) -> str:
    """NEXUS-O's published figures for the groups of `table` in language `lang` (all when None)."""
    rows = [r for r in table["rows"] if r.get("nexus_o")]
    groups = [g for g in table["groups"] if lang is None or g["lang"] in (None, lang)]
    parts = []
    for group in groups:
        prefix = f"{group['label']} " if len(groups) > 1 and group["label"] else ""
        for row in rows:
            suffix = f" [{row['model']}]" if len(rows) > 1 else ""
            parts += [f"{prefix}{c['label']} {_fmt(row['values'].get(c['key']), table.get('decimals', 2))}{suffix}"
                      for c in group["columns"]]
    return " · ".join(parts) or DASH


def summary_rows(results: dict) -> list[list[str]]:
    """[task, language, metric, this run, items, NEXUS-O (paper), source] per task and language."""
    tables = load_paper_results()["tables"]
    out = []
    for name, task in results["tasks"].items():
        table = tables.get(name, {"rows": [], "groups": [], "source": DASH})
        if task["status"] != "ok":
            out.append([task["title"], DASH, DASH, f"{task['status']}: {task['reason']}", str(task["items"]),
                        _paper_figures(table, None), table["source"]])
            continue
        for group in task["scores"]:
            out.append([task["title"], group["lang"], METRIC_LABELS.get(group["metric"], group["metric"]),
                        _fmt(group["score"]), str(group["items"]), _paper_figures(table, group["lang"]),
                        table["source"]])
    return out


def _task_table(name: str, task: dict, table: dict, model: str) -> list[str]:
    """The paper's table for one task with this run's columns and row added."""
    ours = {g["lang"]: g for g in task.get("scores", [])}
    decimals = table.get("decimals", 2)
    groups = [dict(g, ours=[lang for lang in ours if g["lang"] in (None, lang)]) for g in table["groups"]]
    matched = {lang for g in groups for lang in g["ours"]}
    groups += [{"label": f"{lang.upper()} ({METRIC_LABELS.get(ours[lang]['metric'], '')})", "lang": lang, "columns": [],
                "ours": [lang]} for lang in ours if lang not in matched]
    header = ["Model", *table.get("label_columns", [])]
    for g in groups:
        prefix = f"{g['label']} " if g["label"] else ""
        header += [prefix + c["label"] for c in g["columns"]]
        header += [f"{prefix}this run" + (f" [{lang}]" if len(g["ours"]) > 1 else "") for lang in g["ours"]]
    lines = [f"## {task['title']} ({table.get('source', 'no paper figures')})", ""]
    if table.get("title"):
        lines += [(f"{table['title']}. This run's column is its own data ({Path(task['file']).name}, "
                   f"{task['items']} items), not the paper's benchmarks."), ""]
    lines += [_row(header), _row(["---"] * len(header))]
    width, section = len(header), None
    for row in table["rows"]:
        if row.get("section") and row["section"] != section:
            section = row["section"]
            lines.append(_row([f"*{section}*"] + [""] * (width - 1)))
        cells = [f"**{row['model']}**" if row.get("nexus_o") else row["model"]]
        cells += [label or DASH for label in row.get("labels", [])]
        for g in groups:
            cells += [_fmt(row["values"].get(c["key"]), decimals) for c in g["columns"]] + [DASH] * len(g["ours"])
        lines.append(_row(cells))
    ours_cells = [f"**this run: {model}**"] + [DASH] * len(table.get("label_columns", []))
    for g in groups:
        ours_cells += [DASH] * len(g["columns"]) + [_fmt(ours[lang]["score"]) for lang in g["ours"]]
    lines.append(_row(ours_cells))
    notes = [table["footnote"]] if table.get("footnote") else []
    notes += [f"{row['model']}: {row['note']}." for row in table["rows"] if row.get("note")]
    if task["status"] != "ok":
        notes.insert(0, f"This run: {task['status']}: {task['reason']}.")
    elif task.get("skipped"):
        notes.insert(0, f"This run: {task['skipped']} of {task['items']} items skipped, their prompts longer than "
                        f"the model's context (manifest lines {task['skipped_lines']}); scored as wrong answers.")
    return lines + ([""] + [f"*{n}*" for n in notes] if notes else []) + [""]


def render_markdown(results: dict) -> str:
    """The whole `results.md`: header, summary table, one paper-style table per task."""
    paper = load_paper_results()
    settings = ", ".join(f"{k}={v}" for k, v in results.get("settings", {}).items() if k != "model")
    lines = [f"# Evaluation: {results['model']}", "",
             f"Created {results.get('created', DASH)}; {settings}.",
             f"Paper figures: {paper['paper']}, as printed ({PAPER_RESULTS.name}).", "",
             "## Summary", "",
             _row(["task", "language", "metric", "this run", "items", "NEXUS-O (paper)", "source"]),
             _row(["---"] * 7)]
    lines += [_row(r) for r in summary_rows(results)] + [""]
    for name, task in results["tasks"].items():
        if name in paper["tables"]:
            lines += _task_table(name, task, paper["tables"][name], results["model"])
    return "\n".join(lines)


def console_table(results: dict):
    """This run's scores as a `rich.table.Table` for terminals (the paper's figures: results.md)."""
    from rich.table import Table

    table = Table(title=f"nexus-o eval: {results['model']}")
    for column in ("task", "language", "metric", "this run", "items"):
        table.add_column(column, overflow="fold")
    for row in summary_rows(results):
        table.add_row(*row[:5])
    return table

"""The suite's report: OUT/suite.json and OUT/suite.md, each figure beside the paper's.

suite.md opens with one row per benchmark: this run's figure, NEXUS-O's published figure for the
same benchmark, the judge and the normaliser that produced it, and the status (skipped: why).
Then each of the paper's tables (`paper_results.json`) as printed, with one more row for this
model whose figures sit in the paper's own columns: this time the benchmarks are the paper's.
Last, the paper's benchmarks this command does not run, and why.
"""

from __future__ import annotations

from pathlib import Path

from nexus_o.eval.report import DASH, METRIC_LABELS, PAPER_RESULTS, _fmt, _row, load_paper_results, write_json_and_markdown

TABLE_ORDER = ("vqa", "sqa", "asr", "s2tt", "tts")


def paper_figure(table: dict, column: str) -> str:
    """NEXUS-O's published value(s) in `column` ("7.55 [NEXUS-O (Fishspeech1.4)] · ..." when several rows)."""
    rows = [r for r in table["rows"] if r.get("nexus_o")]
    decimals = table.get("decimals", 2)
    return " · ".join(_fmt(r["values"].get(column), decimals) + (f" [{r['model']}]" if len(rows) > 1 else "")
                      for r in rows) or DASH


def summary_rows(results: dict) -> list[list[str]]:
    """[benchmark, paper table, metric, this run, NEXUS-O (paper), items, judge, normaliser, status] rows."""
    tables = load_paper_results()["tables"]
    out = []
    for entry in results["benchmarks"].values():
        table = tables[entry["table"]]
        ok = entry["status"] == "ok"
        out.append([entry["title"], table["source"], METRIC_LABELS.get(entry.get("metric"), DASH) if ok else DASH,
                    _fmt(entry["score"]) if ok else DASH, paper_figure(table, entry["column"]),
                    str(entry.get("items", DASH)), entry["judge"], entry["normaliser"],
                    "ok" if ok else f"{entry['status']}: {entry['reason']}"])
    return out


def _paper_table(name: str, table: dict, results: dict) -> list[str]:
    """One paper table with a row for this run under the paper's columns."""
    ours = {e["column"]: e for e in results["benchmarks"].values() if e["table"] == name}
    columns = [(g, c) for g in table["groups"] for c in g["columns"]]
    header = ["Model", *table.get("label_columns", [])]
    header += [f"{g['label']} {c['label']}".strip() for g, c in columns]
    decimals = table.get("decimals", 2)
    lines = [f"## {table['source']}: {table.get('title', name)}", "", _row(header), _row(["---"] * len(header))]
    for row in table["rows"]:
        cells = [f"**{row['model']}**" if row.get("nexus_o") else row["model"]]
        cells += [label or DASH for label in row.get("labels", [])]
        cells += [_fmt(row["values"].get(c["key"]), decimals) for _, c in columns]
        lines.append(_row(cells))
    cells = [f"**this run: {results['model']}**"] + [DASH] * len(table.get("label_columns", []))
    for _, c in columns:
        entry = ours.get(c["key"])
        cells.append(_fmt(entry["score"]) if entry and entry["status"] == "ok" else DASH)
    lines.append(_row(cells))
    notes = [f"{e['title']}: judge {e['judge']}; {e['normaliser']}." for e in ours.values() if e["status"] == "ok"]
    notes += [f"{e['title']}: {e['status']}: {e['reason']}." for e in ours.values() if e["status"] != "ok"]
    if table.get("footnote"):
        notes.append(table["footnote"])
    return lines + [""] + [f"*{n}*" for n in notes] + [""]


def render_suite_markdown(results: dict) -> str:
    """The whole suite.md."""
    paper = load_paper_results()
    settings = ", ".join(f"{k}={v}" for k, v in results["settings"].items())
    lines = [f"# Paper suite: {results['model']}", "",
             f"Created {results.get('created', DASH)}; data root {results['data_root']}; {settings}.",
             f"Paper figures: {paper['paper']}, as printed ({PAPER_RESULTS.name}).", "", "## Summary", "",
             _row(["benchmark", "paper table", "metric", "this run", "NEXUS-O (paper)", "items", "judge", "normaliser",
                   "status"]), _row(["---"] * 9)]
    lines += [_row(r) for r in summary_rows(results)] + [""]
    run_tables = {e["table"] for e in results["benchmarks"].values()}
    for name in TABLE_ORDER:
        if name in run_tables:
            lines += _paper_table(name, paper["tables"][name], results)
    lines += ["## Not run by this command", "", _row(["benchmark", "paper table", "reason"]), _row(["---"] * 3)]
    lines += [_row([e["title"], paper["tables"][e["table"]]["source"], e["reason"]]) for e in results["not_run"].values()]
    return "\n".join(lines) + "\n"


def write_suite_report(results: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write OUT/suite.json and OUT/suite.md (each replaced atomically); returns both paths."""
    return write_json_and_markdown(results, render_suite_markdown(results), out_dir, "suite")

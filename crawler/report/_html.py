"""The HTML run report: one static file with charts that opens offline.

Written at the end of every run by the run extension, and for any past run by
`python -m crawler.report [RUN_ID] [--out DIR]` (default: the latest run).
Charts are Plotly, with plotly.js embedded once in the file.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from pipelines.mongo import MongoSettings, close_databases, open_database


async def collect_report_data(db: Any, run_id: str) -> dict[str, Any]:
    """Everything the report shows, read from `crawl_runs` and this run's notes."""
    run = await db.crawl_runs.find_one({"_id": run_id})
    if run is None:
        raise LookupError(f"no crawl_runs record with _id {run_id!r}")
    match = {"crawl_run_id": run_id}
    per_day = await (
        await db.notes.aggregate(
            [
                {"$match": {**match, "published_at": {"$type": "date"}}},
                {
                    "$group": {
                        "_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$published_at"}},
                        "n": {"$sum": 1},
                    }
                },
                {"$sort": {"_id": 1}},
            ]
        )
    ).to_list()
    tags = await (
        await db.notes.aggregate(
            [
                {"$match": match},
                {"$unwind": "$tags"},
                {"$group": {"_id": "$tags", "n": {"$sum": 1}}},
                {"$sort": {"n": -1, "_id": 1}},
                {"$limit": 15},
            ]
        )
    ).to_list()
    statuses = await (
        await db.notes.aggregate(
            [
                {"$match": match},
                {"$group": {"_id": {"$ifNull": ["$enrichment.status", "none"]}, "n": {"$sum": 1}}},
                {"$sort": {"_id": 1}},
            ]
        )
    ).to_list()
    return {
        "run": run,
        "per_day": [(d["_id"], d["n"]) for d in per_day],
        "tags": [(d["_id"], d["n"]) for d in tags],
        "enrichment": [(str(d["_id"]), d["n"]) for d in statuses],
    }


def _bar(
    title: str, pairs: list[tuple[str, int]] | dict[str, int], horizontal: bool = False
) -> go.Figure:
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
    labels = [str(k) for k, _ in items]
    values = [v for _, v in items]
    bar = go.Bar(y=labels, x=values, orientation="h") if horizontal else go.Bar(x=labels, y=values)
    fig = go.Figure(bar)
    fig.update_layout(title=title, height=360, margin={"l": 40, "r": 20, "t": 50, "b": 40})
    # Labels are categories (days included): one readable bar each, no time-axis gaps.
    category_axis = fig.update_yaxes if horizontal else fig.update_xaxes
    category_axis(type="category")
    if horizontal:
        fig.update_yaxes(autorange="reversed")
    if not items:
        fig.add_annotation(text="none in this run", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font={"size": 16})  # fmt: skip
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return fig


def render_report(data: dict[str, Any]) -> str:
    """The report as one self-contained HTML document (pure: data in, text out)."""
    run = data["run"]
    gemini = run.get("gemini", {})
    figures = [
        _bar("Notes per day (published)", data["per_day"]),
        _bar("Top tags", data["tags"], horizontal=True),
        _bar("Enrichment status", data["enrichment"]),
        _bar("Gemini requests by model", gemini.get("requests_by_model", {})),
        _bar("Gemini requests by key fingerprint", gemini.get("requests_by_key", {})),
        _bar("Gemini 429s by class", gemini.get("http_429_by_class", {})),
        _bar("Errors by reason", run.get("errors_by_reason", {}), horizontal=True),
    ]
    charts = "\n".join(
        f'<div class="chart">{fig.to_html(full_html=False, include_plotlyjs=(i == 0))}</div>'
        for i, fig in enumerate(figures)
    )
    notes = run.get("notes", {})
    rows = [
        ("Run", run["_id"]),
        ("Spider", run.get("spider", "")),
        ("Arguments", ", ".join(f"{k}={v}" for k, v in run.get("args", {}).items())),
        ("Started", _fmt(run.get("started_at"))),
        ("Finished", _fmt(run.get("finished_at"))),
        ("Finish reason", run.get("finish_reason", "")),
        ("Exit status", run.get("exit_status", "")),
        (
            "Notes",
            f"{notes.get('scraped', 0)} (new {notes.get('new', 0)}, changed "
            f"{notes.get('changed', 0)}, unchanged {notes.get('unchanged', 0)})",
        ),
        ("Gemini tokens", f"in {gemini.get('tokens_in', 0)}, out {gemini.get('tokens_out', 0)}"),
    ]
    table = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>XHS crawl report {html.escape(run["_id"])}</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 16px; }}
th, td {{ text-align: left; padding: 4px 12px; border-bottom: 1px solid #ddd; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 12px; }}
</style></head>
<body><h1>Crawl report</h1>
<table>{table}</table>
<div class="grid">{charts}</div>
</body></html>
"""


def _fmt(value: Any) -> str:
    return (
        value.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(value, datetime) else str(value or "")
    )


def report_path(out_dir: Path, run_id: str) -> Path:
    return out_dir / f"run-{run_id}.html"  # run ids are generated, never page text


async def write_run_report(db: Any, run_id: str, out_dir: Path) -> Path:
    data = await collect_report_data(db, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = report_path(out_dir, run_id)
    path.write_text(render_report(data), encoding="utf-8")
    return path


async def _main(args: argparse.Namespace) -> int:
    from scrapy.utils.project import get_project_settings

    _, db = await open_database(MongoSettings.from_settings(get_project_settings()))
    try:
        run_id = args.run_id
        if run_id is None:
            latest = await db.crawl_runs.find_one({}, sort=[("started_at", -1)])
            if latest is None:
                print("no runs recorded yet", file=sys.stderr)
                return 1
            run_id = latest["_id"]
        path = await write_run_report(db, run_id, Path(args.out))
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await close_databases()
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the HTML report of a crawl run.")
    parser.add_argument("run_id", nargs="?", help="crawl_runs _id (default: the latest run)")
    parser.add_argument("--out", default="data/reports", help="output directory")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

"""The HTML run report: one small static file per run, charts that open offline.

Written at the end of every run by :class:`crawler.extensions.RunReport`, and for any
past run by ``python -m crawler.report [RUN_ID] [--out DIR]`` (default: the latest).

- plotly.js is not embedded: one copy of the installed plotly package's
  ``plotly.min.js`` sits beside the reports (:func:`ensure_plotly_js`, copied once),
  loaded by a relative ``<script src>``, so a report is tens of KB and draws with
  the network blocked.
- No inline script: each chart is a JSON data block that ``report.js`` (beside the
  reports too) draws, so the page also works under the web app's Content-Security-Policy
  (``script-src 'self'``). Charts take their grid cell's width (at 800 px and at
  1280–1920 px); count axes have integer ticks (:func:`count_axis`).
- The notes table links each title to its note URL (http(s) only) and shows the
  downloaded first image as a thumbnail by a path relative to the report.
- Everything shown is escaped; only generated run ids name files.
"""

from __future__ import annotations

import html
import math
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go

from crawler.report._data import collect_report_data

PLOTLY_JS = "plotly.min.js"
# Draws each chart from its JSON data block and keeps it at its cell's width (Plotly's
# "responsive" only follows the window; a grid cell also changes while the page loads).
REPORT_JS = "report.js"
REPORT_JS_SOURCE = Path(__file__).parent / "static" / REPORT_JS
CHART_HEIGHT = 340


def _copy_if_changed(source: Path, target: Path) -> Path:
    if not target.exists() or target.read_bytes() != source.read_bytes():
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return target


def ensure_plotly_js(out_dir: Path) -> Path:
    """``out_dir/plotly.min.js`` (from the installed plotly package) and ``report.js``
    beside it, copied when missing or different (another plotly version)."""
    _copy_if_changed(REPORT_JS_SOURCE, out_dir / REPORT_JS)
    return _copy_if_changed(Path(plotly.__file__).parent / "package_data" / PLOTLY_JS,
                            out_dir / PLOTLY_JS)  # fmt: skip


def figure_block(fig: go.Figure) -> str:
    """A chart cell: the figure as a JSON data block (never executed; ``<`` escaped so no
    text of a note can close the element) and the element report.js draws it into."""
    payload = fig.to_json().replace("<", "\\u003c")
    return (
        f'<div class="chart"><script type="application/json" class="figure">{payload}</script>'
        f'<div class="plot" style="height:{CHART_HEIGHT}px; width:100%"></div></div>'
    )


def nice_step(top: float, ticks: int = 6) -> int:
    """A whole tick step (1, 2, 5 × 10^k) giving at most about ``ticks`` ticks up to ``top``."""
    raw = max(top, 1) / ticks
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return max(1, int(factor * magnitude))
    return max(1, int(10 * magnitude))


def count_axis(values: list[int]) -> dict[str, Any]:
    """Axis settings for counts: from 0, whole-number ticks only."""
    return {"rangemode": "tozero", "tick0": 0, "dtick": nice_step(max(values, default=1)),
            "tickformat": ",d"}  # fmt: skip


def bar(
    title: str, pairs: list[tuple[str, int]] | dict[str, int], *, horizontal: bool = False
) -> go.Figure:
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
    labels = [str(k) for k, _ in items]
    values = [int(v) for _, v in items]
    trace = (
        go.Bar(y=labels, x=values, orientation="h") if horizontal else go.Bar(x=labels, y=values)
    )
    fig = go.Figure(trace)
    fig.update_layout(
        title=title, autosize=True, height=CHART_HEIGHT,
        margin={"l": 10, "r": 10, "t": 44, "b": 10},
    )  # fmt: skip
    counts, categories = (fig.update_xaxes, fig.update_yaxes) if horizontal else (
        fig.update_yaxes, fig.update_xaxes)  # fmt: skip
    counts(**count_axis(values))
    categories(type="category", automargin=True)
    if horizontal:
        fig.update_yaxes(autorange="reversed")
    if not items:
        fig.add_annotation(text="none in this run", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font={"size": 16})  # fmt: skip
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return fig


def _fmt(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value if value is not None else "")


def _link(url: Any, text: str) -> str:
    label = html.escape(text)
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(url, quote=True)}" rel="noreferrer">{label}</a>'
    return label


def _thumb(doc: dict[str, Any], images_rel: str | None) -> str:
    if images_rel is None:
        return ""
    for image in doc.get("images") or []:
        path = image.get("path")
        if image.get("status") == "ok" and isinstance(path, str) and ".." not in path.split("/"):
            src = html.escape(f"{images_rel}/{path}", quote=True)
            return f'<img src="{src}" alt="" loading="lazy" width="64" height="64">'
    return ""


def duration_and_throughput(run: dict[str, Any]) -> tuple[str, str]:
    started, finished = run.get("started_at"), run.get("finished_at")
    if not (isinstance(started, datetime) and isinstance(finished, datetime)):
        return "unknown", "unknown"
    seconds = max((finished - started).total_seconds(), 0.001)
    notes = (run.get("notes") or {}).get("scraped", 0)
    pages = (run.get("notes") or {}).get("pages", 0)
    images = (run.get("images") or {}).get("ok", 0)
    minutes = seconds / 60
    return (
        f"{seconds:.0f} s",
        f"{notes / minutes:.1f} notes/min, {pages / minutes:.1f} pages/min, "
        f"{images / minutes:.1f} images/min",
    )


def _notes_table(data: dict[str, Any], images_rel: str | None) -> str:
    rows = []
    for doc in data["notes"]:
        enrichment = doc.get("enrichment") or {}
        summary = str(((enrichment.get("result") or {}).get("summary")) or "")
        status = f"{enrichment.get('status', 'none')}/{enrichment.get('backend', '-')}"
        likes = (doc.get("interact") or {}).get("liked")
        rows.append(
            f'<tr data-note-id="{html.escape(str(doc["_id"]), quote=True)}">'
            f"<td>{_thumb(doc, images_rel)}</td>"
            f"<td>{_link(doc.get('url'), str(doc.get('title') or doc['_id']))}</td>"
            f"<td>{html.escape(str((doc.get('user') or {}).get('nickname') or ''))}</td>"
            f'<td class="num">{"" if likes is None else int(likes)}</td>'
            f"<td>{html.escape(status)}</td>"
            f"<td>{html.escape(summary[:200])}</td></tr>"
        )
    more = data["note_count"] - len(data["notes"])
    tail = (
        f"<p>… and {more} more notes (all of them: <code>python -m crawler.web</code> or "
        "<code>python -m crawler.export notes</code>).</p>"
        if more > 0
        else ""
    )
    head = "<tr><th></th><th>title</th><th>author</th><th>likes</th><th>enrichment</th><th>summary</th></tr>"
    body = "\n".join(rows) or '<tr><td colspan="6">no notes in this run</td></tr>'
    return (
        f'<table class="notes" id="notes"><thead>{head}</thead><tbody>{body}</tbody></table>{tail}'
    )


def _failures_table(failures: list[dict[str, Any]]) -> str:
    if not failures:
        return "<p>No failures.</p>"
    rows = "\n".join(
        f"<tr><td>{_link(f.get('url'), str(f.get('url', ''))[:200])}</td>"
        f"<td>{html.escape(str(f.get('reason', '')))}</td>"
        f"<td>{html.escape(str(f.get('message', ''))[:300])}</td></tr>"
        for f in failures
    )
    return (
        '<table class="failures" id="failures"><thead><tr><th>URL or input</th><th>reason</th>'
        f"<th>detail</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def render_report(data: dict[str, Any], *, images_rel: str | None = None) -> str:
    """The report as one HTML document (pure: data in, text out). ``images_rel``: the
    images store relative to the report's directory (None: no thumbnails)."""
    run = data["run"]
    gemini = run.get("gemini") or {}
    figures = [
        bar("Notes per day (published)", data["per_day"]),
        bar("Top tags", data["tags"], horizontal=True),
        bar("Enrichment status", data["enrichment"]),
        bar("Gemini requests by model", gemini.get("requests_by_model", {})),
        bar("Gemini requests by key fingerprint", gemini.get("requests_by_key", {})),
        bar("Gemini 429s by class", gemini.get("http_429_by_class", {})),
        bar("Errors by reason", run.get("errors_by_reason", {}), horizontal=True),
    ]
    charts = "\n".join(figure_block(fig) for fig in figures)
    notes = run.get("notes") or {}
    took, throughput = duration_and_throughput(run)
    rows = [
        ("Run", run["_id"]),
        ("Spider", run.get("spider", "")),
        ("Arguments", ", ".join(f"{k}={v}" for k, v in (run.get("args") or {}).items())),
        ("Started", _fmt(run.get("started_at"))),
        ("Finished", _fmt(run.get("finished_at"))),
        ("Duration", took),
        ("Throughput", throughput),
        ("Finish reason", run.get("finish_reason", "")),
        ("Exit status", run.get("exit_status", "")),
        (
            "Notes",
            f"{notes.get('scraped', 0)} (new {notes.get('new', 0)}, changed "
            f"{notes.get('changed', 0)}, unchanged {notes.get('unchanged', 0)})",
        ),
        ("Gemini tokens", f"in {gemini.get('tokens_in', 0)}, out {gemini.get('tokens_out', 0)}"),
    ]
    summary = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>XHS crawl report {html.escape(run["_id"])}</title>
<script src="{PLOTLY_JS}"></script>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 16px; max-width: 100%; }}
th, td {{ text-align: left; padding: 4px 10px; border-bottom: 1px solid #ddd; vertical-align: top; }}
td.num {{ text-align: right; }}
table.notes td:last-child {{ max-width: 40em; }}
.grid {{ display: grid; gap: 12px;
         grid-template-columns: repeat(auto-fill, minmax(min(100%, 520px), 1fr)); }}
.chart {{ min-width: 0; overflow: hidden; }}
</style></head>
<body><h1>Crawl report</h1>
<table class="summary">{summary}</table>
<div class="grid">{charts}</div>
<h2>Notes of this run ({data["note_count"]})</h2>
{_notes_table(data, images_rel)}
<h2>Failures ({len(data["failures"])})</h2>
{_failures_table(data["failures"])}
<script src="{REPORT_JS}"></script>
</body></html>
"""


def report_path(out_dir: Path, run_id: str) -> Path:
    return out_dir / f"run-{run_id}.html"  # run ids are generated, never page text


def images_relative(out_dir: Path, images_store: str | None) -> str | None:
    """The local images store as a path relative to the reports (None: remote or unset)."""
    if not images_store or "://" in images_store:
        return None
    return Path(os.path.relpath(Path(images_store).resolve(), out_dir.resolve())).as_posix()


async def write_run_report(
    db: Any, run_id: str, out_dir: Path, *, images_store: str | None = None
) -> Path:
    data = await collect_report_data(db, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_plotly_js(out_dir)
    path = report_path(out_dir, run_id)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_report(data, images_rel=images_relative(out_dir, images_store)),
                   encoding="utf-8")  # fmt: skip
    tmp.replace(path)
    return path

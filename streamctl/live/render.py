"""The live view's sections as HTML with inline SVG, from a snapshot (observer.Observer.snapshot).

One renderer for both pages: the live page swaps these sections in every few seconds; `report
--html` writes them once, with no script. Every string from the stack is escaped: categories and
brands are whatever clients posted.
"""

from __future__ import annotations

import html
import statistics
from typing import Any

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
RATE_COLOURS = {"accepted_per_s": "#59a14f", "rejected_per_s": "#e15759", "unavailable_per_s": "#f28e2b"}
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 250, 76, 12, 16, 34

e = html.escape


def clock(stamp: str) -> str:
    """'2026-11-27T10:01:00.000Z' -> '10:01:00' (the page says the times are UTC)."""
    return stamp[11:19] if len(stamp) >= 19 else stamp


def number(value: float, decimals: int = 0) -> str:
    return f"{value:,.{decimals}f}"


def compact(value: float) -> str:
    """An axis label that fits: 51,233.16 -> 51.2k."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _axis(peak: float) -> str:
    base = HEIGHT - BOTTOM
    return (f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" class="axis"/>'
            f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end" class="tick">{compact(peak)}</text>'
            f'<text x="{LEFT - 6}" y="{base}" text-anchor="end" class="tick">0</text>')


def _time_ticks(labels: list[tuple[float, str]]) -> str:
    if not labels:
        return ""
    picks = sorted({0, len(labels) // 2, len(labels) - 1})

    def anchor(i: int) -> str:  # the first and last labels stay inside the chart
        x = labels[i][0]
        return "start" if x - 30 < LEFT else "end" if x + 30 > WIDTH - RIGHT else "middle"

    return "".join(f'<text x="{labels[i][0]:.1f}" y="{HEIGHT - 12}" text-anchor="{anchor(i)}" class="tick">'
                   f'{e(labels[i][1])}</text>' for i in picks)


def legend(names: list[str]) -> str:
    return '<ul class="legend">' + "".join(
        f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>{e(n)}</li>'
        for i, n in enumerate(names)) + "</ul>"


def stacked_bars(chart_id: str, title: str, windows: dict[str, Any], group: str, measure: str, unit: str,
                 decimals: int) -> str:
    starts, ends, series = windows["starts"], windows["ends"], windows[group]
    if not starts:
        return (f'<h3>{e(title)}</h3><p class="empty" id="{chart_id}">No window in PostgreSQL yet: a window '
                f'shows here once it closes (window length + watermark delay after its first transaction).</p>')
    totals = [sum(s[measure][i] for s in series) for i in range(len(starts))]
    peak = max(totals) or 1
    slot = (WIDTH - LEFT - RIGHT) / len(starts)
    bar = min(56.0, slot * 0.72)
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<h3>{e(title)}</h3><svg id="{chart_id}" class="chart" role="img" aria-label="{e(title)}" '
             f'data-windows="{len(starts)}" data-last-window="{e(starts[-1])}" viewBox="0 0 {WIDTH} {HEIGHT}">',
             _axis(peak)]
    labels = []
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        x = LEFT + i * slot + (slot - bar) / 2
        y = float(HEIGHT - BOTTOM)
        for k, s in enumerate(series):
            value = s[measure][i]
            if value <= 0:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.5):.1f}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"><title>{e(s["name"])}, {clock(start)}-{clock(end)}: '
                         f'{number(value, decimals)} {e(unit)}</title></rect>')
        labels.append((x + bar / 2, clock(start)))
    parts += [_time_ticks(labels), "</svg>", legend([s["name"] for s in series])]
    if len(starts) == 1:
        parts.append(f'<p class="note">One window so far ({clock(starts[0])}-{clock(ends[0])} UTC): each window '
                     f'that closes adds a bar.</p>')
    else:
        parts.append(f'<p class="note">{len(starts)} windows, {clock(starts[0])} to {clock(ends[-1])} UTC; '
                     f'one bar per window, by its real bounds.</p>')
    return "".join(parts)


def rate_chart(series: list[dict[str, Any]]) -> str:
    if len(series) < 2:
        return ('<p class="empty" id="ingest-rates">No rates yet: the live view samples the producer\'s '
                'counters every second and draws the last five minutes.</p>')
    peak = max(max(p[k] for k in RATE_COLOURS) for p in series) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / (len(series) - 1)
    parts = [f'<svg id="ingest-rates" class="chart" role="img" aria-label="records per second at the API" '
             f'data-points="{len(series)}" viewBox="0 0 {WIDTH} {HEIGHT}">', _axis(peak)]
    for key, colour in RATE_COLOURS.items():
        points = " ".join(f"{LEFT + i * step:.1f},{TOP + plot_h * (1 - p[key] / peak):.1f}" for i, p in enumerate(series))
        parts.append(f'<polyline class="rate" data-series="{key}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}"/>')
    parts.append(_time_ticks([(LEFT + i * step, clock(p["t"])) for i, p in enumerate(series)]))
    parts.append("</svg>")
    parts.append('<ul class="legend">' + "".join(
        f'<li><span class="swatch" style="background:{c}"></span>{k.replace("_per_s", "")}/s</li>'
        for k, c in RATE_COLOURS.items()) + "</ul>")
    return "".join(parts)


def table(table_id: str, header: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty" id="{table_id}">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def ingest_section(snapshot: dict[str, Any]) -> str:
    ingest, kafka = snapshot["ingest"], snapshot["kafka"]
    latest = ingest["series"][-1] if ingest["series"] else None
    totals = ingest["totals"]
    figures = [["accepted (2xx)", number(totals["accepted"]) if totals else "-",
                number(latest["accepted_per_s"], 1) + "/s" if latest else "-"],
               ["rejected (4xx)", number(totals["rejected"]) if totals else "-",
                number(latest["rejected_per_s"], 1) + "/s" if latest else "-"],
               ["unavailable (503)", number(totals["unavailable"]) if totals else "-",
                number(latest["unavailable_per_s"], 1) + "/s" if latest else "-"]]
    lag_rows = [[e(g["group"]), e(g["topic"]), number(g["end_offsets"]), number(g["committed"]),
                 f'<b>{number(g["lag"])}</b>'] for g in kafka or []]
    return ('<section id="ingest-section"><h2>Ingest</h2>'
            + table("ingest-totals", ["records at the API", "since the producer started", "now"], figures, "")
            + rate_chart(ingest["series"])
            + "<h3>Kafka: end offsets and consumer lag</h3>"
            + table("kafka", ["group", "topic", "end offsets", "committed", "lag"], lag_rows,
                    "Kafka offsets not read yet" if kafka is None else "no consumer group yet")
            + "</section>")


def job_section(job: dict[str, Any] | None) -> str:
    if job is None:
        return '<section id="job-section"><h2>Flink job</h2><p class="empty" id="job">not read yet</p></section>'
    state = job["state"]
    rows = [["state", f'<span class="state state-{e(state.lower())}" id="job-state">{e(state)}</span>'],
            ["uptime", seconds(job["uptime_s"])], ["restarts", number(job["restarts"])],
            ["parallelism", number(job["parallelism"])],
            ["last checkpoint", seconds(job["last_checkpoint_age_s"]) + " ago" if job["last_checkpoint_age_s"]
             is not None else "none yet"],
            ["watermark behind wall clock", seconds(job["watermark_delay_s"])],
            ["lag (ingest not read yet)", seconds(job.get("lag_s")) + (
                ' <span class="state state-failing" id="job-falling-behind">falling behind</span>'
                if job.get("falling_behind") else "")]]
    return '<section id="job-section"><h2>Flink job</h2>' + table("job", ["", ""], rows, "") + "</section>"


def freshness_section(freshness: dict[str, Any]) -> str:
    windows = freshness["windows"]
    rows = [[clock(w["window_start"]) + "-" + clock(w["window_end"]), seconds(w["postgres_s"]),
             seconds(w["elasticsearch_s"])] for w in reversed(windows[-10:])]
    both = [max(w["postgres_s"], w["elasticsearch_s"]) for w in windows
            if w["postgres_s"] is not None and w["elasticsearch_s"] is not None]
    summary = ""
    if both:
        ordered = sorted(both)
        p95 = ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))]
        summary = (f'<p class="note">Both sinks, over {len(both)} window(s): median {statistics.median(both):.2f} s, '
                   f'p95 {p95:.2f} s.</p>')
    return ('<section id="freshness-section"><h2>Freshness</h2><p class="note">Seconds from a window\'s end '
            f'(wall clock) until its rows were visible, as the live view saw them (polled every '
            f'{freshness["resolution_s"]} s).</p>'
            + table("freshness", ["window (UTC)", "PostgreSQL", "Elasticsearch"], rows,
                    "No window observed yet: the live view times each window it saw transactions for.")
            + summary + "</section>")


def validation_section(validation: dict[str, Any], live: bool) -> str:
    latest = validation["latest"]
    parts = ['<section id="validation-section"><h2>Exactness</h2>']
    if latest is None:
        parts.append('<p id="validation" data-verdict="none">Not validated yet.</p>')
    else:
        verdict = latest["verdict"]
        parts.append(f'<p id="validation" data-verdict="{e(verdict)}" data-ran-at="{e(latest["ran_at"])}">'
                     f'<span class="verdict verdict-{e(verdict)}">'
                     f'{e(verdict.upper())}</span> {number(latest["transactions"])} transactions in '
                     f'{number(latest["windows"])} window keys; ran {e(latest["ran_at"])} from the '
                     f'{e(latest["source"])} in {latest["seconds"]} s</p>')
        rows = [[e(name), number(s["matched"]), number(s["missing"]), number(s["extra"]), number(s["different"]),
                 "exact" if s["exact"] else "<b>mismatch</b>"] for name, s in latest["sinks"].items()]
        parts.append(table("validation-sinks", ["sink", "matched", "missing", "extra", "different", ""], rows, ""))
        if latest["pending_windows"]:
            parts.append(f'<p class="note">{latest["pending_windows"]} window(s) still open were not judged.</p>')
        parts += [f'<p class="note">{e(reason)}</p>' for reason in latest["inconclusive"]]
    if validation.get("error"):
        parts.append(f'<p class="problem">{e(validation["error"])}</p>')
    if live:
        running = validation["running"]
        parts.append(f'<button id="run-validate" type="button"{" disabled" if running else ""}>'
                     f'{"validating..." if running else "Run validate"}</button>')
    else:
        parts.append('<p class="note">Run <code>streamctl validate</code> (or the live view\'s button) to judge '
                     'again.</p>')
    return "".join(parts) + "</section>"


def history_chart(index: int, series: dict[str, Any]) -> str:
    """One benchmark figure over its runs: a line through the runs, each run a dot with its value."""
    points = series["points"]
    latest = points[-1]["value"]
    title = f'{series["label"]}: {number(latest, 2)} {series["unit"]} ({series["better"]} is better)'
    if len(points) == 1:
        return (f'<div><h3>{e(title)}</h3><p class="note">One run so far ({e(points[0]["at"])}); each run adds '
                f'a point.</p></div>')
    values = [p["value"] for p in points]
    top, bottom = max(values), min(0.0, min(values))
    span = (top - bottom) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / (len(points) - 1)
    coords = [(LEFT + i * step, TOP + plot_h * (1 - (v - bottom) / span)) for i, v in enumerate(values)]
    parts = [f'<div><h3>{e(title)}</h3><svg id="bench-history-{index}" class="chart" role="img" aria-label="{e(title)}" '
             f'data-runs="{len(points)}" viewBox="0 0 {WIDTH} {HEIGHT}">', _axis(top),
             f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="2" points="'
             + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>']
    for (x, y), point in zip(coords, points, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{PALETTE[0]}"><title>{e(point["at"])}: '
                     f'{number(point["value"], 2)} {e(series["unit"])}</title></circle>')
    parts.append(_time_ticks([(x, p["at"][:16].replace("T", " ")) for (x, _), p in zip(coords, points, strict=True)]))
    return "".join(parts) + "</svg></div>"


def history_section(history: list[dict[str, Any]]) -> str:
    if not history:
        body = ('<p class="empty">No benchmark has run on this stack: <code>streamctl bench ingest|freshness|validate|'
                'startup|job</code> (or <code>make bench</code>) each leave their figures here.</p>')
    else:
        body = '<div class="history">' + "".join(history_chart(i, s) for i, s in enumerate(history)) + "</div>"
    return ('<section id="bench-history" class="wide"><h2>Benchmarks, run by run</h2>'
            '<p class="note">Each <code>streamctl bench</code> run on this stack, oldest first.</p>' + body + "</section>")


def render_sections(snapshot: dict[str, Any], live: bool) -> str:
    windows = snapshot["windows"]
    parts = []
    if snapshot["problems"]:
        parts.append('<section id="problems" class="problems">' + "".join(
            f'<p class="problem">{e(p)}</p>' for p in snapshot["problems"]) + "</section>")
    if windows is not None:
        totals = windows["totals"]
        parts.append(
            '<section id="totals" class="kpis">'
            f'<div><b>{number(totals["transactions"])}</b>transactions</div>'
            f'<div><b>{number(totals["items_sold"])}</b>items sold</div>'
            f'<div><b>{number(float(totals["revenue"]), 2)}</b>revenue</div>'
            f'<div><b>{number(totals["windows"])}</b>windows</div></section>')
        parts.append('<section id="windows-section"><h2>Windows</h2>'
                     + stacked_bars("revenue-by-category", "Revenue per window by category", windows, "by_category",
                                    "revenue", "revenue", 2)
                     + stacked_bars("transactions-by-payment-method", "Transactions per window by payment method",
                                    windows, "by_payment_method", "transactions", "transactions", 0)
                     + "</section>")
    else:
        parts.append('<section id="windows-section"><h2>Windows</h2><p class="empty">PostgreSQL not read yet.</p>'
                     "</section>")
    parts += [ingest_section(snapshot), job_section(snapshot["job"]), freshness_section(snapshot["freshness"]),
              validation_section(snapshot["validation"], live)]
    if "benchmarks" in snapshot:  # the report's: the live view does not re-read them every refresh
        parts.append(history_section(snapshot["benchmarks"]))
    return "".join(parts)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2330; background: #f4f5f7; }
header { padding: .8rem 1.2rem; background: #1d2330; color: #fff; display: flex; flex-wrap: wrap; gap: .3rem 1rem;
  align-items: baseline; justify-content: space-between; }
header h1 { font-size: 1.15rem; margin: 0; } header span { font-size: .85rem; color: #c8ccd4; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr)); gap: 1rem; padding: 1rem; }
section { background: #fff; border-radius: 6px; padding: .8rem 1rem; box-shadow: 0 1px 2px rgba(0,0,0,.08);
  min-width: 0; }
h2 { font-size: 1.05rem; margin: 0 0 .5rem; } h3 { font-size: .9rem; margin: .8rem 0 .3rem; color: #444; }
svg.chart { width: 100%; height: auto; display: block; }
.axis { stroke: #999; } .tick { font-size: 12px; fill: #555; }
.legend { list-style: none; padding: 0; margin: .3rem 0; display: flex; flex-wrap: wrap; gap: .2rem .9rem;
  font-size: .8rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -1px;
  border-radius: 2px; }
.kpis { display: flex; flex-wrap: wrap; gap: 1rem 2rem; grid-column: 1 / -1; }
.kpis b { display: block; font-size: 1.5rem; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
td, th { text-align: left; padding: .2rem .5rem .2rem 0; border-bottom: 1px solid #eee; }
.scroll { overflow-x: auto; }
.note, .empty { font-size: .85rem; color: #555; } .problem { color: #b3261e; font-size: .9rem; margin: .2rem 0; }
.problems, .wide { grid-column: 1 / -1; }
.history .tick { font-size: 22px; }
.history { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 380px), 1fr)); gap: 0 1.5rem; }
.verdict { font-weight: 700; padding: .1rem .45rem; border-radius: 4px; color: #fff; background: #777; }
.verdict-exact { background: #2e7d32; } .verdict-mismatch { background: #b3261e; }
.verdict-inconclusive { background: #b26a00; }
.state { font-weight: 700; } .state-running { color: #2e7d32; } .state-failing { color: #b3261e; }
@media (max-width: 600px) {  /* the charts scale down by about half: their labels must not */
  .tick { font-size: 22px; } main { padding: .5rem; gap: .5rem; } table { font-size: .8rem; } }
button { font: inherit; padding: .4rem .9rem; border-radius: 4px; border: 1px solid #1d2330; background: #1d2330;
  color: #fff; cursor: pointer; } button:disabled { opacity: .6; cursor: default; }
"""


def page(snapshot: dict[str, Any], live: bool, token: str = "") -> str:
    """The whole page: live (the sections refresh themselves, validate runs from a button) or a snapshot."""
    stack = e(snapshot["stack"])
    head_extra = (f'<meta name="streamctl-token" content="{e(token)}"><script src="/live.js" defer></script>'
                  if live else "")
    subtitle = (f'<span>updates every few seconds; times in UTC; last update <span id="updated">'
                f'{e(clock(snapshot["taken_at"]))}</span></span>' if live
                else f'<span>snapshot taken {e(snapshot["taken_at"])}; times in UTC</span>')
    title = "live view" if live else "report"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f'<title>streamctl {title}: {stack}</title><style>{STYLE}</style>{head_extra}</head><body>'
            f'<header><h1>streamctl {title}: stack {stack}</h1>{subtitle}</header>'
            f'<main id="sections">{render_sections(snapshot, live)}</main></body></html>\n')
